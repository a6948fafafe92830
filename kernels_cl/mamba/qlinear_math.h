// qlinear_math.h — the arithmetic of sparq::mamba::quant_linear (W8A8 / W4A8 projection) shared by
// kernels_cl/mamba/quant_linear.cl and fallback_cpu/mamba/quant_linear.cpp: code decoding and the
// dequantizing epilogue. The integer dot product itself is exact (every partial sum an integer
// below 2^24 in fp32, the chunk sums combined in int32), so its summation order is free.
#ifndef SPARQ_MAMBA_QLINEAR_MATH_H
#define SPARQ_MAMBA_QLINEAR_MATH_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

// Code j of a row: int8 (two's complement byte) or int4 (byte j/2, even j low nibble).
SQ_FN int sq_ql_code(SQ_GLOBAL const uchar* row, int bits8, int j) {
  if (bits8) {
    const int b = row[j];
    return b >= 128 ? b - 256 : b;
  }
  const int n = (row[j / 2] >> ((j & 1) * 4)) & 0xf;
  return n >= 8 ? n - 16 : n;
}

// out = ((float)acc * sx) * sw, then + bias when given: (float)acc rounds to nearest even
// (exact while |acc| <= 2^24), each product one rounding.
SQ_FN float sq_ql_epilogue(int acc, float sx, float sw, int has_bias, float bias) {
  float y = (float)acc;
  y = y * sx;
  y = y * sw;
  if (has_bias) y = y + bias;
  return y;
}

SQ_END_NAMESPACE

#endif  // SPARQ_MAMBA_QLINEAR_MATH_H
