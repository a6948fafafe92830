// outlier_quant_math.h — the per-row arithmetic of sparq::mamba::outlier_quantize and dequantize
// (specs/mamba_scan.md §5), compiled by kernels_cl/mamba/outlier_quant.cl and by its fallback
// twin fallback_cpu/mamba/outlier_quant.cpp. Every value comes from these functions, so the
// device and the fallback agree bit for bit.
#ifndef SPARQ_MAMBA_OUTLIER_QUANT_MATH_H
#define SPARQ_MAMBA_OUTLIER_QUANT_MATH_H

#include "common/convert.h"
#include "common/exact_math.h"
#include "common/rounding.h"

SQ_BEGIN_NAMESPACE

#define SQ_OQ_W 256

// Canonical row reduction (§5.3): 256 lane partials, lane j folds v_j, v_{j+256}, ... in
// increasing index order from +0, then the fixed tree stride = 128, 64, ..., 1. The values are
// produced by sq_oq_value(mode, ...), evaluated per index:
//   mode 0: v_j           = in_prev ? +0 : |x_j|
//   mode 1: w_j           = (in_prev || in_new) ? +0 : |x_j|        (final inliers)
//   mode 2: u_j           = (in_prev || in_new) ? |x_j| : +0        (final outliers)
//   mode 3: (v_j - mean)^2  (square rounded)
// op 0: sum, op 1: max written a > b ? a : b.

// Membership of j in the previous row's outlier list (ascending, cnt entries): binary search.
SQ_FN int sq_oq_in_list(SQ_GLOBAL const int* idx, int cnt, int j) {
  int lo = 0, hi = cnt - 1;
  while (lo <= hi) {
    const int mid = (lo + hi) / 2;
    const int v = idx[mid];
    if (v == j) return 1;
    if (v < j)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return 0;
}

// Candidate selection state: a candidate j (not in the previous list, v_j > thr, detecting) is
// a new outlier iff take_all, or (v_j, j) ranks at or before the last picked (cv, cj) in the
// order "decreasing v, ties by increasing j".
typedef struct {
  int detect, take_all, any;
  float thr, cv;
  int cj;
} sq_oq_sel;

SQ_FN int sq_oq_is_cand(const sq_oq_sel* s, float v, int in_prev) {
  return s->detect && !in_prev && v > s->thr;
}
SQ_FN int sq_oq_is_new(const sq_oq_sel* s, float v, int j, int in_prev) {
  if (!sq_oq_is_cand(s, v, in_prev)) return 0;
  if (s->take_all) return 1;
  return s->any && (v > s->cv || (v == s->cv && j <= s->cj));
}

SQ_FN float sq_oq_value(int mode, SQ_GLOBAL const float* x, SQ_GLOBAL const int* pidx, int pcnt,
                        const sq_oq_sel* s, float mean, int j) {
  const int in_prev = sq_oq_in_list(pidx, pcnt, j);
  const float a = sq_fabs(x[j]);
  const float v = in_prev ? 0.0f : a;
  if (mode == 0) return v;
  if (mode == 3) {
    const float d = v - mean;
    return d * d;
  }
  const int out = in_prev || sq_oq_is_new(s, v, j, in_prev);
  if (mode == 1) return out ? 0.0f : a;
  return out ? a : 0.0f;
}

SQ_FN float sq_oq_reduce(int mode, int op, SQ_GLOBAL const float* x, int C,
                         SQ_GLOBAL const int* pidx, int pcnt, const sq_oq_sel* s, float mean) {
  float p[SQ_OQ_W];
  for (int l = 0; l < SQ_OQ_W; ++l) {
    float acc = 0.0f;
    for (int j = l; j < C; j += SQ_OQ_W) {
      const float v = sq_oq_value(mode, x, pidx, pcnt, s, mean, j);
      acc = op ? (v > acc ? v : acc) : acc + v;
    }
    p[l] = acc;
  }
  for (int stride = SQ_OQ_W / 2; stride >= 1; stride /= 2)
    for (int l = 0; l < stride; ++l)
      p[l] = op ? (p[l + stride] > p[l] ? p[l + stride] : p[l]) : p[l] + p[l + stride];
  return p[0];
}

// One token row (§5.4). x: the row's C values; pidx/pcnt: the previous row's list (pcnt = 0 at a
// window start). Writes codes (int4: ceil(C/2) bytes, int8: C bytes), *scale, *count, the K
// slots of idx and of val (fmt 0: f32 val_f, 1: f16 bits val_h, 2: int8 val_b) and, for fmt 2,
// *oscale. static_scale: s_st > 0 is the calibrated scale, else s_st is ignored.
SQ_FN void sq_oq_row(SQ_GLOBAL const float* x, int C, SQ_GLOBAL const int* pidx, int pcnt,
                     int bits8, int fmt, float k_sigma, int K, int static_scale, float s_st,
                     SQ_GLOBAL uchar* codes, SQ_GLOBAL float* scale, SQ_GLOBAL int* count,
                     SQ_GLOBAL int* idx, SQ_GLOBAL float* val_f, SQ_GLOBAL ushort* val_h,
                     SQ_GLOBAL uchar* val_b, SQ_GLOBAL float* oscale) {
  const int qmax = bits8 ? 127 : 7;
  const int ncodes = bits8 ? C : (C + 1) / 2;
  for (int k = 0; k < K; ++k) {
    idx[k] = -1;
    if (fmt == 0) val_f[k] = 0.0f;
    if (fmt == 1) val_h[k] = (ushort)0;
    if (fmt == 2) val_b[k] = (uchar)0;
  }
  for (int i = 0; i < ncodes; ++i) codes[i] = (uchar)0;
  int finite = 1;
  for (int j = 0; j < C; ++j)
    if (sq_isnan(x[j]) || sq_isinf(x[j])) finite = 0;
  if (!finite) {  // §5.2: NaN scale, codes 0, no outliers (the next row carries nothing)
    *scale = sq_as_float(0x7fc00000u);
    *count = 0;
    if (fmt == 2) *oscale = sq_as_float(0x7fc00000u);
    return;
  }
  sq_oq_sel s;
  s.detect = 0;
  s.take_all = 1;
  s.any = 0;
  s.thr = 0.0f;
  s.cv = 0.0f;
  s.cj = 0;
  const float m_in = sq_oq_reduce(1, 1, x, C, pidx, pcnt, &s, 0.0f);  // mode 1 == v before detect
  s.detect = static_scale ? (m_in > s_st * (float)qmax) : 1;
  if (K == 0) s.detect = 0;
  if (s.detect) {
    const float S1 = sq_oq_reduce(0, 0, x, C, pidx, pcnt, &s, 0.0f);
    const float mean = S1 / (float)C;
    const float S2 = sq_oq_reduce(3, 0, x, C, pidx, pcnt, &s, mean);
    const float var = (C > 1) ? S2 / (float)(C - 1) : 0.0f;
    s.thr = sq_fma(k_sigma, sq_sqrt(var), mean);
    int ncand = 0;
    for (int j = 0; j < C; ++j) {
      const int ip = sq_oq_in_list(pidx, pcnt, j);
      if (sq_oq_is_cand(&s, ip ? 0.0f : sq_fabs(x[j]), ip)) ++ncand;
    }
    if (pcnt + ncand > K) {
      // Pick K - pcnt candidates by decreasing v, ties by increasing j: each pick is the best
      // candidate ranking strictly after the previous pick.
      s.take_all = 0;
      for (int n = 0; n < K - pcnt; ++n) {
        int bj = -1;
        float bv = 0.0f;
        for (int j = 0; j < C; ++j) {
          const int ip = sq_oq_in_list(pidx, pcnt, j);
          const float v = ip ? 0.0f : sq_fabs(x[j]);
          if (!sq_oq_is_cand(&s, v, ip)) continue;
          if (s.any && !(v < s.cv || (v == s.cv && j > s.cj))) continue;  // already picked
          if (bj < 0 || v > bv) {
            bj = j;
            bv = v;
          }
        }
        s.cv = bv;
        s.cj = bj;
        s.any = 1;
      }
    }
  }
  const float m = sq_oq_reduce(1, 1, x, C, pidx, pcnt, &s, 0.0f);
  const float sc = static_scale ? s_st : m / (float)qmax;
  *scale = sc;
  int cnt = 0;
  for (int j = 0; j < C; ++j) {
    const int ip = sq_oq_in_list(pidx, pcnt, j);
    const int out = ip || sq_oq_is_new(&s, ip ? 0.0f : sq_fabs(x[j]), j, ip);
    if (out) {
      idx[cnt++] = j;
      continue;
    }
    const int q = (sc > 0.0f) ? sq_to_int_sat_rne(x[j] / sc, -qmax, qmax) : 0;
    if (bits8)
      codes[j] = (uchar)(q & 0xff);
    else
      codes[j / 2] = (uchar)(codes[j / 2] | (uchar)((q & 0xf) << ((j & 1) * 4)));
  }
  *count = cnt;
  float so = 0.0f;
  if (fmt == 2) {
    const float mo = sq_oq_reduce(2, 1, x, C, pidx, pcnt, &s, 0.0f);
    so = (mo > 1e-8f ? mo : 1e-8f) / 127.0f;
    *oscale = so;
  }
  for (int k = 0; k < cnt; ++k) {
    const float xv = x[idx[k]];
    if (fmt == 0) val_f[k] = xv;
    if (fmt == 1) val_h[k] = sq_f32_to_f16_rne(xv);
    if (fmt == 2) val_b[k] = (uchar)(sq_to_int_sat_rne(xv / so, -127, 127) & 0xff);
  }
}

// Dequantization of one row (§5.5): (float)q_j * s everywhere, then the outliers overwrite.
SQ_FN int sq_oq_code(SQ_GLOBAL const uchar* codes, int bits8, int j) {
  if (bits8) {
    const int b = codes[j];
    return b >= 128 ? b - 256 : b;
  }
  const int n = (codes[j / 2] >> ((j & 1) * 4)) & 0xf;
  return n >= 8 ? n - 16 : n;
}

// Outlier slot k's value: f32 as stored, f16 widened exactly, int8 (float)val * so.
SQ_FN float sq_oq_outlier_value(int fmt, SQ_GLOBAL const float* val_f,
                                SQ_GLOBAL const ushort* val_h, SQ_GLOBAL const uchar* val_b,
                                float so, int k) {
  if (fmt == 0) return val_f[k];
  if (fmt == 1) return sq_f16_to_f32(val_h[k]);
  return (float)(val_b[k] >= 128 ? (int)val_b[k] - 256 : (int)val_b[k]) * so;
}

SQ_FN void sq_oq_dequant_row(SQ_GLOBAL float* out, int C, SQ_GLOBAL const uchar* codes, int bits8,
                             float sc, int cnt, SQ_GLOBAL const int* idx, int fmt,
                             SQ_GLOBAL const float* val_f, SQ_GLOBAL const ushort* val_h,
                             SQ_GLOBAL const uchar* val_b, float so) {
  for (int j = 0; j < C; ++j) out[j] = (float)sq_oq_code(codes, bits8, j) * sc;
  for (int k = 0; k < cnt; ++k) out[idx[k]] = sq_oq_outlier_value(fmt, val_f, val_h, val_b, so, k);
}

// One element j of a quantized row (§5.5) for readers that dequantize inside (selective_scan_q):
// the outlier value if j is in the row's list (binary search; the list must be strictly
// ascending, which the host checks), else (float)q_j * s — the value sq_oq_dequant_row writes.
SQ_FN float sq_oq_dequant_at(SQ_GLOBAL const uchar* codes, int bits8, float sc, int cnt,
                             SQ_GLOBAL const int* idx, int fmt, SQ_GLOBAL const float* val_f,
                             SQ_GLOBAL const ushort* val_h, SQ_GLOBAL const uchar* val_b, float so,
                             int j) {
  int lo = 0, hi = cnt - 1;
  while (lo <= hi) {
    const int mid = (lo + hi) / 2;
    const int v = idx[mid];
    if (v == j) return sq_oq_outlier_value(fmt, val_f, val_h, val_b, so, mid);
    if (v < j)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return (float)sq_oq_code(codes, bits8, j) * sc;
}

SQ_END_NAMESPACE

#endif  // SPARQ_MAMBA_OUTLIER_QUANT_MATH_H
