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

// --- fast P codes: sq_i8_code(x, s, 0) without a division per element --------------------------
// A speed form for kernels (sage8_mma.cl); the fallback keeps sq_i8_code (the definition). With
// rs = RN(1 / s) computed once per group, sq_i8_div_rcp is Markstein's correction
// q0 = RN(x * rs), e = fma(-q0, s, x), y = fma(e, rs, q0). Why sq_i8_code_p gives sq_i8_code's
// code for every x >= 0 of a group whose scale passes sq_i8_rcp_ok (|x| <= 127 * s * (1 + 2^-23),
// as x <= amax and s = RN(amax / 127)):
//  - s in [2^-60, 2^50]: the steps scale with s and x by powers of two while x / s >= 2^-2 (no
//    subnormal, no overflow), so s in [1, 2) covers them. There q0 has relative error < 2^-22,
//    y = RN(x/s + d) with |d| < 2^-45 x/s, so y is RD(x/s) or RU(x/s); the code is monotone in y,
//    so the codes differ only if x/s lies strictly between the floats prev(T_k) and T_k, T_k the
//    least y of code k + 1 (k = 0..126). Every such x for each of the 2^23 significands of s was
//    checked (1.06e9 pairs: same codes, and y == RN(x/s) in each). For x / s < 2^-2 both codes
//    are 0 (the absolute error of y stays below 2^-88 even where x is subnormal); from the last
//    threshold T_126 = 126.5 up both are 127 (|x| * rs < 2^118: no overflow).
//  - s == 0: rs = +inf, q0 = NaN or +inf, e = NaN, y = NaN: code 0, as sq_i8_code (s == 0).
//    s = +inf: rs = 0, e = fma(-q0, inf, x) = NaN (q0 == 0) or q0 = NaN: code 0 == code(x / inf).
//    s NaN: y NaN, code 0 == sq_i8_code's.
//  - Code tail: for lo = 0, t = y + 0.5f gives sq_i8_code's code for y < 0 as well (t <= 0.5
//    truncates to 0, negative t clamps to 0), and a NaN y fails t >= 0, so needs no own test.
// s in (0, 2^-60) or (2^50, inf) fails sq_i8_rcp_ok: there the caller divides (sq_i8_code).
// tests/common/fast_forms_test.cpp checks codes and quotients against the division.
// max(t, 0) with NaN -> 0 (a compare and a select, or one max instruction on GPUs); -0 stays -0
// and truncates to 0.
SQ_FN float sq_i8_max0_(float t) {
  return t >= 0.0f ? t : 0.0f;
}

SQ_FN int sq_i8_rcp_ok(float s) {
  const float lo = sq_as_float(0x21800000u), hi = sq_as_float(0x58800000u);  // 2^-60, 2^50
  return !((s > 0.0f && s < lo) || (s > hi && s < sq_as_float(0x7f800000u)));
}

// A group's scale and its guard for the fast codes: sq_i8_scale's RN(amax / 127) by the same
// correction with the constant RN(1 / 127) (checked for all 2^23 significands of amax; the steps
// scale by powers of two for amax in [2^-53, 2^50], and amax == 0 gives +0). sq_i8_fast_ok: amax
// is 0 or in [2^-53, 2^50], so the scale is 0 or in [2^-60, 2^43] and passes sq_i8_rcp_ok.
SQ_FN int sq_i8_fast_ok(uint amax_bits) {
  return amax_bits == 0u || amax_bits - 0x25000000u <= 0x58800000u - 0x25000000u;
}

SQ_FN float sq_i8_scale_rcp(uint amax_bits) {
  const float a = sq_as_float(amax_bits), r = sq_as_float(0x3C010204u);  // RN(1 / 127)
  const float q0 = a * r;
  return sq_fma(sq_fma(-q0, 127.0f, a), r, q0);
}

SQ_FN float sq_i8_div_rcp(float x, float s, float rs) {
  const float q0 = x * rs;
  return sq_fma(sq_fma(-q0, s, x), rs, q0);
}

// sq_i8_code_p for x in a group with sq_i8_fast_ok(amax), s = RN(amax / 127), 0 <= x <= amax:
// y = RN(x / s) <= 127 * (1 + 2^-22) and is not NaN, so t < 128 needs no clamp. For amax == 0
// (every x is +0) pass rs = 0: y = 0.
SQ_FN int sq_i8_code_pg(float x, float s, float rs) {
  return (int)(sq_i8_div_rcp(x, s, rs) + 0.5f);
}

SQ_FN int sq_i8_code_p(float x, float s, float rs) {
  float t = sq_i8_div_rcp(x, s, rs) + 0.5f;
  t = sq_i8_max0_(t);  // NaN -> 0
  t = t <= 127.0f ? t : 127.0f;
  return (int)t;
}

SQ_END_NAMESPACE

#endif  // SPARQ_QUANT_INT8_CODEC_H
