#pragma OPENCL FP_CONTRACT OFF
// outlier_quant.cl — OuroMamba-style dynamic outlier quantization of token rows x[b, l, :]
// (specs/mamba_scan.md §5): mamba_outlier_quantize and its inverse mamba_dequantize.
// No macros. One work-item per (b, refresh window) walks the window's rows in increasing l (a
// row needs the previous row's outlier list); one work-item per row dequantizes. Launch
// geometry never changes a value: all arithmetic is in mamba/outlier_quant_math.h.
//
// Defined order, per finite row (§5.4; a row holding NaN/±inf gets scale NaN, codes 0, no
// outliers):
//   v_j   = j in O_prev ? +0 : |x_j|;  m_in = rowmax(v)
//   gate  = static ? m_in > s_st * qmax : true  (K == 0: never)
//   mean  = rowsum(v) / C;  S2 = rowsum((v_j - mean)^2);  var = C > 1 ? S2 / (C - 1) : 0
//   thr   = fma(k_sigma, sqrt(var), mean);  candidates: j not in O_prev, v_j > thr
//   O     = O_prev + candidates, or the first K - |O_prev| candidates by (v desc, j asc)
//   s     = static ? s_st : rowmax(|x_j|, j not in O) / qmax
//   q_j   = s > 0 ? sat_rne(x_j / s, -qmax, qmax) : 0;  outliers in increasing j:
//           f32 as is | f16 rne | int8 sat_rne(x_j / so), so = max(rowmax_O |x|, 1e-8) / 127
// rowsum/rowmax: the canonical 256-lane reduction of §5.3 (lanes fold j, j+256, ..., then the
// fixed tree 128, 64, ..., 1).
// Dequantize: out_j = (float)q_j * s, then outlier slots overwrite (f16 widened exactly, int8
// (float)val * so).
#include "mamba/outlier_quant_math.h"

__kernel void mamba_outlier_quantize(__global const float* x, long x_off, long batch, long L,
                                     int C, int window, int bits8, int fmt, float k_sigma, int K,
                                     int static_scale, __global const float* st_scales,
                                     long st_off,
                                     __global uchar* codes, __global float* scales,
                                     __global int* counts, __global int* idx,
                                     __global float* val_f, __global ushort* val_h,
                                     __global uchar* val_b, __global float* oscale) {
  const long g = get_global_id(0);
  const long nwin = (L + window - 1) / window;
  if (g >= batch * nwin) return;
  const long b = g / nwin, w = g - b * nwin;
  const long l0 = w * window;
  const long l1 = l0 + window < L ? l0 + window : L;
  const long ncodes = bits8 ? (long)C : (long)(C + 1) / 2;
  for (long l = l0; l < l1; ++l) {
    const long r = b * L + l;
    const int first = l == l0;
    __global const int* pidx = first ? idx : idx + (r - 1) * K;
    const int pcnt = first ? 0 : counts[r - 1];
    sq_oq_row(x + x_off + r * C, C, pidx, pcnt, bits8, fmt, k_sigma, K, static_scale,
              static_scale ? st_scales[st_off + l] : 0.0f, codes + r * ncodes, scales + r, counts + r,
              idx + r * K, fmt == 0 ? val_f + r * K : val_f, fmt == 1 ? val_h + r * K : val_h,
              fmt == 2 ? val_b + r * K : val_b, fmt == 2 ? oscale + r : oscale);
  }
}

__kernel void mamba_dequantize(__global float* out, long rows, int C, __global const uchar* codes,
                               int bits8, __global const float* scales,
                               __global const int* counts, __global const int* idx, int K,
                               int fmt, __global const float* val_f,
                               __global const ushort* val_h, __global const uchar* val_b,
                               __global const float* oscale) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const long ncodes = bits8 ? (long)C : (long)(C + 1) / 2;
  sq_oq_dequant_row(out + r * C, C, codes + r * ncodes, bits8, scales[r], counts[r], idx + r * K,
                    fmt, fmt == 0 ? val_f + r * K : val_f, fmt == 1 ? val_h + r * K : val_h,
                    fmt == 2 ? val_b + r * K : val_b, fmt == 2 ? oscale[r] : 0.0f);
}
