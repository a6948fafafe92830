#pragma OPENCL FP_CONTRACT OFF
// vertical_slash.cl — MInference's vertical-slash index builder (specs/sparse_attention.md §5.2),
// five kernels run in order by host/src/sparse/vertical_slash.cpp; fallback twin:
// fallback_cpu/sparse/vertical_slash.cpp. Macros: HEAD_DIM (64 or 128).
//
// Defined order, per query head (b, h), KV head h / G, probe rows r < nl = min(64, Lq) at
// positions qpos(r) = Lk - nl + r (the last nl queries; off = Lk - Lq):
//   q'[d]     = q[Lq - nl + r][d] * c                     (c = fp32(sm_scale * log2 e), one
//   rounding) x[r][j]   = j <= qpos(r) ? dot(q', k_j) : -INF       dot: acc = fma(q'[d], k_j[d],
//   acc), d asc. m[r]      = mx over j of x[r][j]                      (exact, any order)
//   part[r][c]= sum_{j in [64c, 64c+64) ∩ [0, Lk)} sq_exp2(x[r][j] - m[r])   sequential, from +0
//   Z[r]      = sum over c ascending of part[r][c]       sequential, from +0
//   p[r][j]   = sq_exp2(x[r][j] - m[r]) / Z[r]
// Per index head hi (= h, or the KV head with IndexSharing::kv_group, whose G query heads are
// summed first: P[r][j] = ((0 + p_h0[r][j]) + p_h1[r][j]) + ..., heads ascending):
//   v[j]  = sum over r ascending of P[r][j]                              (from +0)
//   sl[t] = sum over r ascending with qpos(r) - t >= 0 of P[r][qpos(r) - t]  (from +0)
//   v[j] = +INF for j < forced_cols; sl[t] = +INF for t < forced_diags.
// Top-V of v and top-S of sl by the §4 order (builder_math.h sq_topk_key; radix select,
// exact), each list sorted ascending; then per (b, hi, qb) sq_sb_vs_convert.
//
// Work split (never changes a chain): vs_probe: a 64-row x 64-key tile per work-group, 256
// work-items each owning 4 rows x 4 keys, d staged through local memory 32 at a time in
// ascending order; tile maxima per (row, key tile) for the softmax. vs_softmax: one work-group
// per (pair, row); partial sums one chain per work-item per chunk; Z by every work-item (same
// chain), stored by one. vs_sums: one work-item per (index pair, j). vs_topk: one work-group per
// list (radix select over the order key, then an index-ordered compaction). vs_convert: one
// work-item per (b, hi, qb).
#include "attention/attention_common.h"
#include "sparse/builder_math.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#define DH HEAD_DIM
#define PB 64  // probe rows / keys per tile
#define DS 32  // d per local slice
#define DSP (DS + 1)

// Scores of probe rows x[pair][r][j] (row stride xs) and tile maxima tmax[pair][r][kt] (row
// stride nkt). Launch: local (256), global (256 * nkt, npairs); pair p = pair0 + group(1) is
// query head (b, h) = (p / hq, p % hq).
__kernel __attribute__((reqd_work_group_size(256, 1, 1))) void sparse_vs_probe(
    gbytes q, long q_off, long q_sb, long q_sh, long q_sr, int q_dt,  //
    gbytes k, long k_off, long k_sb, long k_sh, long k_sr, int k_dt,  //
    int hq, int group, int lq, int lk, int nl, long pair0, float c,   //
    __global float* x, long xs, __global float* tmax, int nkt) {
  __local float qs[PB * DSP];
  __local float ks[PB * DSP];
  __local float pm[PB * 16];
  const int lid = get_local_id(0);
  const int ty = lid >> 4, tx = lid & 15;
  const int kt = get_group_id(0);
  const long p = pair0 + get_group_id(1);
  const long b = p / hq;
  const int h = (int)(p % hq);
  const long qrow = q_off + b * q_sb + h * q_sh + (long)(lq - nl) * q_sr;
  const long krow = k_off + b * k_sb + (h / group) * k_sh + (long)kt * PB * k_sr;
  float acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int u = 0; u < 4; ++u) acc[i][u] = 0.0f;
  for (int d0 = 0; d0 < DH; d0 += DS) {
    for (int e = lid; e < PB * DS; e += 256) {
      const int r = e / DS, d = e % DS;
      qs[r * DSP + d] = r < nl ? sq_att_load1(q, qrow + (long)r * q_sr + d0 + d, q_dt) * c : 0.0f;
      ks[r * DSP + d] =
          kt * PB + r < lk ? sq_att_load1(k, krow + (long)r * k_sr + d0 + d, k_dt) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int d = 0; d < DS; ++d) {
      float a[4], bk[4];
      for (int i = 0; i < 4; ++i) a[i] = qs[(ty + 16 * i) * DSP + d];
      for (int u = 0; u < 4; ++u) bk[u] = ks[(tx + 16 * u) * DSP + d];
      for (int i = 0; i < 4; ++i)
        for (int u = 0; u < 4; ++u) acc[i][u] = fma(a[i], bk[u], acc[i][u]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  __global float* xp = x + (long)get_group_id(1) * PB * xs;
  for (int i = 0; i < 4; ++i) {
    const int r = ty + 16 * i;
    const int qpos = lk - nl + r;
    float rm = sq_sb_neg_inf();
    for (int u = 0; u < 4; ++u) {
      const int j = kt * PB + tx + 16 * u;
      const float s = j <= qpos ? acc[i][u] : sq_sb_neg_inf();
      if (r < nl && j < lk) xp[(long)r * xs + j] = s;
      if (j < lk) rm = sq_mx(rm, s);
    }
    pm[r * 16 + tx] = rm;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const int row = lid & 63;
  float m = sq_sb_neg_inf();
  for (int t = 0; t < 16; ++t) m = sq_mx(m, pm[row * 16 + t]);
  if (lid < PB && row < nl) tmax[((long)get_group_id(1) * PB + row) * nkt + kt] = m;
}

// Row max m, chunk partials and Z of one probe row. Launch: local (64), global (64 * nl, npairs).
__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void sparse_vs_softmax(
    __global const float* x, long xs, __global const float* tmax, int nkt, int lk,
    __global float* part, __global float* mz) {
  __local float lm[64];
  const int lid = get_local_id(0);
  const int r = get_group_id(0);
  const long pr = (long)get_group_id(1) * PB + r;
  __global const float* xr = x + pr * xs;
  float m = sq_sb_neg_inf();
  for (int t = lid; t < nkt; t += 64) m = sq_mx(m, tmax[pr * nkt + t]);
  lm[lid] = m;
  barrier(CLK_LOCAL_MEM_FENCE);
  m = sq_sb_neg_inf();
  for (int t = 0; t < 64; ++t) m = sq_mx(m, lm[t]);
  for (int cidx = lid; cidx < nkt; cidx += 64) {
    float s = 0.0f;
    const int j1 = cidx * PB + PB < lk ? cidx * PB + PB : lk;
    for (int j = cidx * PB; j < j1; ++j) s = s + sq_exp2(xr[j] - m);
    part[pr * nkt + cidx] = s;
  }
  barrier(CLK_GLOBAL_MEM_FENCE);
  float z = 0.0f;
  for (int cidx = 0; cidx < nkt; ++cidx) z = z + part[pr * nkt + cidx];
  if (lid == 0) {
    mz[2 * pr] = m;
    mz[2 * pr + 1] = z;
  }
}

// Vertical and slash scores of index pair ip = ip0 + group(1) (local pair ipl = group(1)); its
// query heads are the local pairs ipl * gi .. ipl * gi + gi - 1. Launch: global (lk rounded up,
// npairs / gi).
__kernel void sparse_vs_sums(__global const float* x, long xs, __global const float* mz, int gi,
                             int lk, int nl, int forced_cols, int forced_diags, long ip0,
                             __global float* vs, __global float* sl) {
  const int j = get_global_id(0);
  const long ipl = get_global_id(1);
  if (j >= lk) return;
  float v = 0.0f, s = 0.0f;
  for (int r = 0; r < nl; ++r) {
    const int jj = lk - nl + r - j;  // the key of distance t = j on row r
    float pv = 0.0f, ps = 0.0f;
    for (int g = 0; g < gi; ++g) {
      const long pr = (ipl * gi + g) * PB + r;
      const float m = mz[2 * pr], z = mz[2 * pr + 1];
      pv = pv + sq_sb_prob(x[pr * xs + j], m, z);
      if (jj >= 0) ps = ps + sq_sb_prob(x[pr * xs + jj], m, z);
    }
    v = v + pv;
    if (jj >= 0) s = s + ps;
  }
  const long ip = ip0 + ipl;
  vs[ip * lk + j] = j < forced_cols ? sq_sb_pos_inf() : v;
  sl[ip * lk + j] = j < forced_diags ? sq_sb_pos_inf() : s;
}

// Top-k of each row of score[row][0..n) by the §4 order, written ascending to
// list[row][0..k) (k <= n). Launch: local (256), global (256 * rows). Radix select on the order
// key: 4 passes of 8 bits find the key T of the k-th element and how many elements equal to T
// are taken (the lowest indices); then each work-item compacts one contiguous index range.
__kernel __attribute__((reqd_work_group_size(256, 1, 1))) void sparse_vs_topk(
    __global const float* score, int n, int k, __global int* list, int list_stride) {
  __local int hist[256];
  __local int cnt_gt[256];
  __local int cnt_eq[256];
  const int lid = get_local_id(0);
  const long row = get_group_id(0);
  __global const float* sc = score + row * n;
  uint prefix = 0u, mask = 0u;
  int remaining = k > 0 ? k : 1;
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    hist[lid] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = lid; i < n; i += 256) {
      const uint key = sq_topk_key(sc[i]);
      if ((key & mask) == prefix) atomic_inc(&hist[(key >> shift) & 255u]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int above = 0, bin = 0;
    for (int bb = 255; bb >= 0; --bb) {
      const int hb = hist[bb];
      if (above + hb >= remaining) {
        bin = bb;
        break;
      }
      above += hb;
    }
    remaining -= above;
    prefix |= (uint)bin << shift;
    mask |= 255u << shift;
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (k <= 0) remaining = 0;
  const uint thr = k > 0 ? prefix : 0xffffffffu;
  const int chunk = (n + 255) / 256;
  const int i0 = lid * chunk < n ? lid * chunk : n;
  const int i1 = i0 + chunk < n ? i0 + chunk : n;
  int gt = 0, eq = 0;
  for (int i = i0; i < i1; ++i) {
    const uint key = sq_topk_key(sc[i]);
    gt += key > thr;
    eq += key == thr;
  }
  cnt_gt[lid] = gt;
  cnt_eq[lid] = eq;
  barrier(CLK_LOCAL_MEM_FENCE);
  int out = 0, eq_before = 0;
  for (int l = 0; l < lid; ++l) {
    const int take = remaining - eq_before;
    out += cnt_gt[l] + (take <= 0 ? 0 : (take < cnt_eq[l] ? take : cnt_eq[l]));
    eq_before += cnt_eq[l];
  }
  int take = remaining - eq_before;
  __global int* dst = list + row * list_stride;
  for (int i = i0; i < i1; ++i) {
    const uint key = sq_topk_key(sc[i]);
    const int sel = key > thr || (key == thr && take > 0);
    if (key == thr) take -= 1;
    if (sel) dst[out++] = i;
  }
}

// Index of (b, hi, qb). Launch: global (nqb rounded up, B * Hi).
__kernel void sparse_vs_convert(__global const int* vlist, int nv, __global const int* slist,
                                int ns, int nqb, int lq, int lk, __global int* tile_start,
                                int max_tiles, __global int* tile_count, __global int* col_index,
                                int max_cols, __global int* col_count) {
  const int qb = get_global_id(0);
  const long bh = get_global_id(1);
  if (qb >= nqb) return;
  const int off = lk - lq;
  const int p0 = off + PB * qb;
  const int end = off + (PB * qb + PB < lq ? PB * qb + PB : lq);
  const long r = bh * nqb + qb;
  sq_sb_vs_convert(vlist + bh * nv, nv, slist + bh * ns, ns, p0, end, lk,
                   tile_start + r * max_tiles, max_tiles, tile_count + r, col_index + r * max_cols,
                   max_cols, col_count + r);
}
