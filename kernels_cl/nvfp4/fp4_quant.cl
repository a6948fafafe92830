#pragma OPENCL FP_CONTRACT OFF
// fp4_quant.cl — NVFP4 quantizers (specs/fp4_attention.md §2.2-§2.5).
//   fp4_quantize_rows:   groups of 16 consecutive elements of a row (Q/K layout), optionally of
//                        (x - mean[row block]) for smoothing (§2.4): each element is one fp32
//                        subtraction, then quant16.
//   fp4_quantize_tokens: groups of 16 consecutive tokens of one channel, written transposed
//                        [B, H, D, Lk64/2] with tokens >= L read as 0 (padding codes/scales 0).
// Mirror: fallback_cpu/nvfp4/fp4_quant.cpp. No macros consumed.
// Defined arithmetic order: quant16 of common/codecs.h + nvfp4/fp4_math.h per group (absmax on
// bits is order-free; every code depends only on its element and the group's scale). One
// work-item per group: the launch shape cannot change any byte.
#include "nvfp4/fp4_math.h"

// x: [BH, L, D] fp32 contiguous (element offset x_off); mean: [BH, nblk, D] fp32 when
// mean_rows > 0 (row i uses block i / mean_rows), unused when 0.
__kernel void fp4_quantize_rows(__global const float* x, long x_off, __global const float* mean,
                                int mean_rows, int nblk, long bh_count, int L, int D,
                                __global uchar* codes, __global uchar* scales) {
  const long gid = (long)get_global_id(0);
  const int G = D / SQ_FP4_GROUP;
  const long rows = bh_count * (long)L;
  if (gid >= rows * G) return;
  const long row = gid / G;
  const int g = (int)(gid - row * G);
  const long bh = row / L;
  const int i = (int)(row - bh * L);
  __global const float* src = x + x_off + row * D + g * SQ_FP4_GROUP;
  float v[SQ_FP4_GROUP];
  if (mean_rows > 0) {
    __global const float* mu = mean + (bh * nblk + i / mean_rows) * D + g * SQ_FP4_GROUP;
    for (int t = 0; t < SQ_FP4_GROUP; ++t) v[t] = src[t] - mu[t];
  } else {
    for (int t = 0; t < SQ_FP4_GROUP; ++t) v[t] = src[t];
  }
  uchar b[SQ_FP4_GROUP / 2];
  scales[gid] = (uchar)sq_fp4_quant16(v, b);
  for (int k = 0; k < SQ_FP4_GROUP / 2; ++k) codes[gid * (SQ_FP4_GROUP / 2) + k] = b[k];
}

// x: [BH, L, D] fp32 contiguous; codes [BH, D, L64/2], scales [BH, D, L64/16].
__kernel void fp4_quantize_tokens(__global const float* x, long x_off, long bh_count, int L,
                                  int L64, int D, __global uchar* codes, __global uchar* scales) {
  const long gid = (long)get_global_id(0);
  const int ntg = L64 / SQ_FP4_GROUP;
  if (gid >= bh_count * ntg * D) return;
  const int d = (int)(gid % D);
  const long rest = gid / D;
  const int tg = (int)(rest % ntg);
  const long bh = rest / ntg;
  float v[SQ_FP4_GROUP];
  for (int t = 0; t < SQ_FP4_GROUP; ++t) {
    const int tok = tg * SQ_FP4_GROUP + t;
    v[t] = tok < L ? x[x_off + (bh * L + tok) * D + d] : 0.0f;
  }
  uchar b[SQ_FP4_GROUP / 2];
  const long grp = (bh * D + d) * ntg + tg;
  scales[grp] = (uchar)sq_fp4_quant16(v, b);
  for (int k = 0; k < SQ_FP4_GROUP / 2; ++k) codes[grp * (SQ_FP4_GROUP / 2) + k] = b[k];
}
