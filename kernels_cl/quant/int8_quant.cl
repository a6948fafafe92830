#pragma OPENCL FP_CONTRACT OFF
// int8_quant.cl — the int8 quantizers of Precision::int8 (specs/fp4_attention.md §5), with the
// codec of quant/int8_codec.h. Twin: fallback_cpu/quant/int8_quant.cpp.
//
// DEFINED ORDER
//   quant_int8_blocks (Q per block of 128 rows, K per block of 64 tokens, all D of the block):
//     v = x[r][d]; if a mean is given: v = v - mean[b, h, r / mean_rows, d]; v = v * mult
//     (mult = c for Q, 1.0f for K: an exact identity); amax = absmax of v over the block's valid
//     rows; s = amax / 127; code = sq_i8_code(v, s, -127). codes int8 [B, H, L, D], scales f32
//     [B, H, ceil(L / block_rows)].
//   quant_int8_v (V per channel per 16-token group, transposed): for channel d and tokens
//     [16g, 16g + 16): amax over tokens < Lk; s = amax / 127; code = sq_i8_code(v, s, -127),
//     tokens >= Lk get code 0. codes int8 [B, H, D, Lk64] (token innermost, Lk64 = Lk rounded up
//     to 64), scales f32 [B, H, D, Lk64 / 16].
//   The amax reduction is a max of uint bit patterns: any order gives the same value.
// Launch: quant_int8_blocks global (256, nblk, B*H), local (256, 1, 1);
//         quant_int8_v global (round_up(D, 64), Lk64 / 16, B*H), local (64, 1, 1).
#include "attention/attention_common.h"
#include "quant/int8_codec.h"

#define QB_WG 256

static inline float quant_block_value(gbytes x, long row_base, int x_dt, int d,
                                      __global const float* mean, int has_mean, float mult) {
  float v = sq_att_load1(x, row_base + d, x_dt);
  if (has_mean) v = v - mean[d];
  return v * mult;
}

__kernel __attribute__((reqd_work_group_size(QB_WG, 1, 1))) void quant_int8_blocks(
    gbytes x, long x_off, long x_sb, long x_sr, long x_sh, int x_dt,  //
    __global const float* mean, int has_mean, int mean_rows, int mean_nblk, float mult, int heads,
    int len, int dim, int block_rows, __global char* codes, __global float* scales) {
  __local uint red[QB_WG];
  const int lid = get_local_id(0), blk = get_group_id(1), bh = get_group_id(2);
  const int b = bh / heads, h = bh % heads;
  const int r0 = blk * block_rows;
  const int n = min(block_rows, len - r0) * dim;
  const long xb = x_off + b * x_sb + h * x_sh;
  __global const float* mb = mean + (long)bh * mean_nblk * dim;
  uint amax = 0;
  for (int e = lid; e < n; e += QB_WG) {
    const int r = r0 + e / dim, d = e % dim;
    const float v = quant_block_value(x, xb + r * x_sr, x_dt, d,
                                      mb + (has_mean ? (r / mean_rows) * dim : 0), has_mean, mult);
    amax = max(amax, sq_i8_absbits(v));
  }
  red[lid] = amax;
  for (int w = QB_WG / 2; w > 0; w >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < w) red[lid] = max(red[lid], red[lid + w]);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const float s = sq_i8_scale(red[0]);
  __global char* out = codes + ((long)bh * len + r0) * dim;
  for (int e = lid; e < n; e += QB_WG) {
    const int r = r0 + e / dim, d = e % dim;
    const float v = quant_block_value(x, xb + r * x_sr, x_dt, d,
                                      mb + (has_mean ? (r / mean_rows) * dim : 0), has_mean, mult);
    out[e] = (char)sq_i8_code(v, s, -127.0f);
  }
  if (lid == 0) scales[(long)bh * get_num_groups(1) + blk] = s;
}

__kernel void quant_int8_v(gbytes v, long v_off, long v_sb, long v_sr, long v_sh, int v_dt,
                           int heads, int len, int dim, int len64, __global char* codes,
                           __global float* scales) {
  const int d = get_global_id(0), g = get_global_id(1), bh = get_global_id(2);
  if (d >= dim) return;
  const int b = bh / heads, h = bh % heads;
  const long base = v_off + b * v_sb + h * v_sh + d;
  const int j0 = 16 * g;
  float x[16];
  uint amax = 0;
  for (int u = 0; u < 16; ++u) {
    const int j = j0 + u;
    x[u] = j < len ? sq_att_load1(v, base + j * v_sr, v_dt) : 0.0f;
    if (j < len) amax = max(amax, sq_i8_absbits(x[u]));
  }
  const float s = sq_i8_scale(amax);
  char16 c;
  c.s0 = (char)sq_i8_code(x[0], s, -127.0f);
  c.s1 = (char)sq_i8_code(x[1], s, -127.0f);
  c.s2 = (char)sq_i8_code(x[2], s, -127.0f);
  c.s3 = (char)sq_i8_code(x[3], s, -127.0f);
  c.s4 = (char)sq_i8_code(x[4], s, -127.0f);
  c.s5 = (char)sq_i8_code(x[5], s, -127.0f);
  c.s6 = (char)sq_i8_code(x[6], s, -127.0f);
  c.s7 = (char)sq_i8_code(x[7], s, -127.0f);
  c.s8 = (char)sq_i8_code(x[8], s, -127.0f);
  c.s9 = (char)sq_i8_code(x[9], s, -127.0f);
  c.sa = (char)sq_i8_code(x[10], s, -127.0f);
  c.sb = (char)sq_i8_code(x[11], s, -127.0f);
  c.sc = (char)sq_i8_code(x[12], s, -127.0f);
  c.sd = (char)sq_i8_code(x[13], s, -127.0f);
  c.se = (char)sq_i8_code(x[14], s, -127.0f);
  c.sf = (char)sq_i8_code(x[15], s, -127.0f);
  vstore16(c, 0, codes + ((long)bh * dim + d) * len64 + j0);
  scales[((long)bh * dim + d) * (len64 / 16) + g] = s;
}
