#pragma OPENCL FP_CONTRACT OFF
// permute.cl — MMInference row gather / scatter (specs/sparse_attention.md §7.1). Copies of
// 2- or 4-byte elements, no arithmetic: every executor gives the same bits, NaN payloads and
// signed zeros included. No macros.
//   gather  (inverse = 0): dst[b, h, n, e] = src[b, h, perm[b, g, n], e]
//   scatter (inverse = 1): dst[b, h, perm[b, g, n], e] = src[b, h, n, e]
// g = h / heads_per_group. perm is validated on the host (a bijection of 0..L-1 per (b, g)), so
// scatter writes never collide. dst is contiguous [B, H, L, D]; src has element strides
// (s_b, s_h, s_l) with D contiguous.
// Launch: global (D rounded up, L, B * H).

__kernel void permute_rows(__global const uchar* src, long s_off, long s_b, long s_h, long s_l,
                           __global uchar* dst, __global const int* perm, long p_off, long p_b,
                           long p_g, int heads, int heads_per_group, int len, int d, int elem_bytes,
                           int inverse) {
  const int e = get_global_id(0), n = get_global_id(1), bh = get_global_id(2);
  if (e >= d) return;
  const int b = bh / heads, h = bh % heads, g = h / heads_per_group;
  const long pi = perm[p_off + b * p_b + g * p_g + n];
  const long src_row = inverse ? n : pi, dst_row = inverse ? pi : n;
  const long from = s_off + b * s_b + h * s_h + src_row * s_l + e;
  const long to = (((long)b * heads + h) * len + dst_row) * d + e;
  if (elem_bytes == 4)
    ((__global uint*)dst)[to] = ((__global const uint*)src)[from];
  else
    ((__global ushort*)dst)[to] = ((__global const ushort*)src)[from];
}
