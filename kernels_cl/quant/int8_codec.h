// int8_codec.h — the int8 codec of the quantized attention path (specs/fp4_attention.md §5),
// shared by kernels_cl/quant/int8_quant.cl, kernels_cl/attention/sage8.cl and their fallbacks
// (OpenCL C 1.2 and C++20, prelude.h).
//
// absmax (§1.5): max over the group of (bits(x) & 0x7FFFFFFF) as uint32, reinterpreted as float.
//   Exact, order-free, NaN-propagating (NaN patterns exceed 0x7F800000).
// scale    s = amax / 127.0f                      (correctly rounded division)
// code     q = clamp(round_half_away(x / s), lo, 127), lo = -127 (Q, K, V) or 0 (P), where
//   y = x / s (correctly rounded); t = y + (y >= 0 ? 0.5f : -0.5f) (one fp32 rounding, as the
//   Triton code of SageAttention); t clamped to [lo, 127] as a float, then truncated toward 0.
//   s == 0 (amax == 0, or amax / 127 underflows to 0) and a NaN quotient give 0. Consequences:
//   a NaN or Inf in a group gives a NaN/Inf scale and zero codes, so the NaN reaches every score
//   or output that uses the group's scale.
#ifndef SPARQ_QUANT_INT8_CODEC_H
#define SPARQ_QUANT_INT8_CODEC_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

SQ_FN uint sq_i8_absbits(float x) {
  return sq_as_uint(x) & 0x7fffffffu;
}

SQ_FN float sq_i8_scale(uint amax_bits) {
  return sq_as_float(amax_bits) / 127.0f;
}

SQ_FN int sq_i8_code(float x, float s, float lo) {
  if (s == 0.0f) return 0;
  float y = x / s;
  if (sq_isnan(y)) return 0;
  float t = y + (y >= 0.0f ? 0.5f : -0.5f);
  t = sq_clamp(t, lo, 127.0f);
  return (int)t;  // |t| <= 127: truncation toward zero is exact and defined
}

SQ_END_NAMESPACE

#endif  // SPARQ_QUANT_INT8_CODEC_H
