#pragma OPENCL FP_CONTRACT OFF
// quant_linear.cl — the two sparq kernels around CLBlast's SGEMM in sparq::mamba::quant_linear
// (W8A8 / W4A8 projection, docs/mamba.md). No macros.
//
// Defined result, per output (r, o):
//   acc = sum_k qx[r, k] * qw[o, k]        exact integer (|acc| <= K * 127 * 127 < 2^31)
//   out = ((float)acc * sx[r]) * sw[o]  (+ bias[o])          (qlinear_math.h)
// How the device gets acc exactly: mamba_ql_unpack widens the codes to integer-valued fp32
// matrices [rows, nchunks * Kc] (zero padded); CLBlast's SGEMM multiplies chunk c (columns
// [c*Kc, (c+1)*Kc), Kc <= 1024) into P[c, r, o]: every partial sum is an integer of magnitude
// <= 1024 * 127 * 127 < 2^24, hence exact in fp32 in any summation order or blocking; then
// mamba_ql_combine sums (int)P[c, r, o] over c in int32 (exact) and applies the epilogue.
#include "mamba/qlinear_math.h"

// dst[r, j] = j < K ? (float)code(r, j) : 0, for rows r < rows, j < Kp.
__kernel void mamba_ql_unpack(__global const uchar* codes, int bits8, long rows, long K, long Kp,
                              __global float* dst) {
  const long i = get_global_id(0);
  if (i >= rows * Kp) return;
  const long r = i / Kp, j = i - r * Kp;
  const long nb = bits8 ? K : (K + 1) / 2;
  dst[i] = j < K ? (float)sq_ql_code(codes + r * nb, bits8, (int)j) : 0.0f;
}

// out[r, o] = epilogue(sum_c (int)P[c, r, o]) for r < R, o < O.
__kernel void mamba_ql_combine(__global const float* P, int nchunks, long R, long O,
                               __global const float* sx, __global const float* sw,
                               __global const float* bias, int has_bias, __global float* out) {
  const long i = get_global_id(0);
  if (i >= R * O) return;
  const long r = i / O, o = i - r * O;
  int acc = 0;
  for (int c = 0; c < nchunks; ++c) acc += (int)P[(long)c * R * O + i];
  out[i] = sq_ql_epilogue(acc, sx[r], sw[o], has_bias, has_bias ? bias[o] : 0.0f);
}
