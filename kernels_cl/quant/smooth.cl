#pragma OPENCL FP_CONTRACT OFF
// smooth.cl — Q/K smoothing of the quantized attention paths (specs/fp4_attention.md §2.4),
// shared by Precision::int8 and Precision::nvfp4. Twin: fallback_cpu/quant/smooth.cpp.
//
// DEFINED ORDER
//   quant_block_mean: mean[b, h, blk, d] of rows [blk*R, min(blk*R + R, L)) of x[b, h, ., d]:
//     s = 0.0f; for r ascending: s = s + x[r][d];  mean = s * rn
//     with rn = fp32(1 / n) rounded on the host in double (n = rows of the block; R = 128 for
//     per-block Q smoothing, R = L for per-head Q smoothing and for the K mean).
//   quant_smooth_delta: delta[b, h, blk, j] for query head h, kv head hk = h / group:
//     ks_d = k[b, hk, j, d] - km[b, hk, d]   (ks_d = k[b, hk, j, d] when K smoothing is off)
//     acc = 0.0f; for d ascending: acc = acc + qm[b, h, blk, d] * ks_d   (product rounded, then
//     added: no fma);  delta = acc.
//   Inputs are f32/f16/bf16 storage (run-time code), widened exactly on load.
// Launch: quant_block_mean global (round_up(D, 64), nblk, B*H), local (64, 1, 1);
//         quant_smooth_delta global (round_up(Lk, 64), 1, B*Hq), local (64, 1, 1); D <= 128.
#include "attention/attention_common.h"

__kernel void quant_block_mean(gbytes x, long x_off, long x_sb, long x_sr, long x_sh, int x_dt,
                               int heads, int len, int dim, int block_rows, int nblk, float r_full,
                               float r_last, __global float* out) {
  const int d = get_global_id(0), blk = get_global_id(1), bh = get_global_id(2);
  if (d >= dim) return;
  const int b = bh / heads, h = bh % heads;
  const int r0 = blk * block_rows;
  const int r1 = min(len, r0 + block_rows);
  const long base = x_off + b * x_sb + h * x_sh + d;
  float s = 0.0f;
  for (int r = r0; r < r1; ++r) s = s + sq_att_load1(x, base + r * x_sr, x_dt);
  out[((long)bh * nblk + blk) * dim + d] = s * (r1 - r0 == block_rows ? r_full : r_last);
}

// One work-group per 64 keys of one (b, h): the 64 rows of K - km are staged once in local
// memory, then each work-item runs its key's chains for every query block of the range.
#define SMOOTH_KEYS 64
#define SMOOTH_DMAX 128
__kernel __attribute__((reqd_work_group_size(SMOOTH_KEYS, 1, 1))) void quant_smooth_delta(
    __global const float* qm, int qm_nblk, int blk0, int nblk, gbytes k, long k_off, long k_sb,
    long k_sr, long k_sh, int k_dt, __global const float* km, int has_km, int hq, int group, int lk,
    int dim, __global float* delta) {
  __local float ks[SMOOTH_KEYS * (SMOOTH_DMAX + 1)];
  const int lid = get_local_id(0), j0 = get_group_id(0) * SMOOTH_KEYS, bh = get_group_id(2);
  const int b = bh / hq, h = bh % hq, hk = h / group;
  __global const float* m = km + ((long)b * (hq / group) + hk) * dim;
  const long kb = k_off + b * k_sb + hk * k_sh;
  for (int x = lid; x < SMOOTH_KEYS * dim; x += SMOOTH_KEYS) {
    const int jj = x / dim, d = x % dim;
    float v = 0.0f;
    if (j0 + jj < lk) {
      v = sq_att_load1(k, kb + (long)(j0 + jj) * k_sr + d, k_dt);
      if (has_km) v = v - m[d];
    }
    ks[jj * (SMOOTH_DMAX + 1) + d] = v;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const int j = j0 + lid;
  __local const float* kr = ks + lid * (SMOOTH_DMAX + 1);
  for (int bl = 0; bl < nblk; ++bl) {
    __global const float* q = qm + ((long)bh * qm_nblk + blk0 + bl) * dim;
    float acc = 0.0f;
    for (int d = 0; d < dim; ++d) acc = acc + q[d] * kr[d];
    if (j < lk) delta[((long)bh * nblk + bl) * lk + j] = acc;
  }
}
