#pragma OPENCL FP_CONTRACT OFF
// hadamard.cl — MambaQuant-style online rotation: the normalized fast Walsh–Hadamard transform of
// token rows x[r, 0..C-1], C = 2^m <= SQ_HQ_CMAX, fused with per-token symmetric quantization
// (mamba_hadamard: mode 0 writes the rotated fp32 row, mode 1 writes codes + scale).
// Macros: SQ_HQ_WG (work-group size, 256 = the lanes of the canonical reduction), SQ_HQ_CMAX
// (local row capacity). Geometry never changes a value.
//
// Defined order, per row (one work-group per row):
//   y = x
//   for s = 0 .. m-1 (h = 2^s), every pair (j, j + h) with j mod 2h < h:
//       (y_j, y_{j+h}) = (y_j + y_{j+h}, y_j - y_{j+h})        (each one rounded op)
//   y_j = y_j * c,  c = rn(2^(-m/2)) (host constant; exact power of two for even m)
//   mode 0: out_j = y_j.
//   mode 1: if any y_j is NaN or ±inf: scale = NaN, codes 0 (spec §5.2's non-finite row);
//           else m_ = max_j |y_j| (canonical 256-lane reduction, spec §5.3; max is exact in any
//           order), s = m_ / qmax, q_j = s > 0 ? sat_rne(y_j / s, -qmax, qmax) : 0;
//           int8: codes[j] = q_j; int4: byte j/2, even j low nibble (spec §5.2 packing).
#include "mamba/hadamard_math.h"

__kernel __attribute__((reqd_work_group_size(SQ_HQ_WG, 1, 1))) void mamba_hadamard(
    __global const float* x, long x_off, int C, int m, float c, int mode, int bits8,
    __global float* out, __global uchar* codes, __global float* scales, __global int* counts) {
  __local float Y[SQ_HQ_CMAX];
  __local float PM[SQ_HQ_WG];
  __local int PF[SQ_HQ_WG];
  const int lid = (int)get_local_id(0);
  const long r = (long)get_group_id(0);
  __global const float* xr = x + x_off + r * C;
  for (int j = lid; j < C; j += SQ_HQ_WG) Y[j] = xr[j];
  for (int s = 0; s < m; ++s) {
    barrier(CLK_LOCAL_MEM_FENCE);
    const int h = 1 << s;
    for (int k = lid; k < C / 2; k += SQ_HQ_WG) {
      const int j = sq_hq_pair(k, h);
      const float a = Y[j], b = Y[j + h];
      Y[j] = a + b;
      Y[j + h] = a - b;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  float pm = 0.0f;
  int pf = 0;
  for (int j = lid; j < C; j += SQ_HQ_WG) {
    const float y = Y[j] * c;
    Y[j] = y;
    if (mode == 0) out[r * C + j] = y;
    if (sq_isnan(y) || sq_isinf(y)) pf = 1;
    const float a = sq_fabs(y);
    pm = a > pm ? a : pm;
  }
  // The reduction runs in both modes (no early return before a barrier); mode 0 ignores it.
  PM[lid] = pm;
  PF[lid] = pf;
  for (int stride = SQ_HQ_WG / 2; stride >= 1; stride /= 2) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < stride) {
      PM[lid] = PM[lid + stride] > PM[lid] ? PM[lid + stride] : PM[lid];
      PF[lid] = PF[lid] | PF[lid + stride];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const int qmax = bits8 ? 127 : 7;
  const int bad = PF[0];
  const float sc = bad ? as_float(0x7fc00000u) : sq_hq_scale(PM[0], qmax);
  if (mode == 0) return;
  if (lid == 0) {
    scales[r] = sc;
    counts[r] = 0;
  }
  if (bits8) {
    for (int j = lid; j < C; j += SQ_HQ_WG)
      codes[r * C + j] = bad ? (uchar)0 : (uchar)(sq_hq_code(Y[j], sc, qmax) & 0xff);
  } else {
    const int nb = (C + 1) / 2;
    for (int i = lid; i < nb; i += SQ_HQ_WG) {
      const int lo = bad ? 0 : sq_hq_code(Y[2 * i], sc, qmax);
      const int hi = (bad || 2 * i + 1 >= C) ? 0 : sq_hq_code(Y[2 * i + 1], sc, qmax);
      codes[r * nb + i] = (uchar)((lo & 0xf) | ((hi & 0xf) << 4));
    }
  }
}
