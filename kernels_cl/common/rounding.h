// rounding.h — float -> integer rounding shared by every op (ARCHITECTURE §2).
//
// Why not rint/nearbyint: their C++ result follows the current rounding mode, and a plain cast
// of NaN or of an out-of-range float is undefined in C++ and device-specific in OpenCL. These
// helpers use integer operations on the bits only, so they give the same result on every device
// and in every floating-point environment. Compiles as OpenCL C 1.2 and as C++20 (prelude.h).
#ifndef SPARQ_COMMON_ROUNDING_H
#define SPARQ_COMMON_ROUNDING_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

// x rounded to the nearest integer, ties to even, as a float. Exact (no error).
// Special values: ±0 -> ±0; the sign is kept (-0.4 -> -0, -0.5 -> -0, 0.5 -> +0, 2.5 -> 2);
// |x| >= 2^23 (already integral), ±inf and NaN are returned unchanged.
SQ_FN float sq_round_rne(float x) {
  uint u = sq_as_uint(x);
  uint a = u & 0x7fffffffu;
  uint sign = u ^ a;
  if (a >= 0x4b000000u) return x;                               // |x| >= 2^23, inf, NaN
  if (a <= 0x3f000000u) return sq_as_float(sign);               // |x| <= 0.5 -> ±0
  if (a < 0x3f800000u) return sq_as_float(sign | 0x3f800000u);  // 0.5 < |x| < 1 -> ±1
  // 1 <= |x| < 2^23: the low (150 - biased exponent) bits are the fraction. The bit above them
  // is the units bit (for 1 <= |x| < 2 it is the exponent's LSB, 1, matching the implicit 1).
  uint one = 1u << (150u - (a >> 23));
  uint rem = a & (one - 1u);
  uint tie = one >> 1;
  a -= rem;
  if (rem > tie || (rem == tie && (a & one) != 0u)) a += one;  // a carry renormalizes
  return sq_as_float(sign | a);
}

// sq_round_rne as an int. Precondition: x finite and |x| < 2^31 (callers clamp first, e.g. with
// sq_to_int_sat_rne); the cast is then exact because the rounded value is an integer.
SQ_FN int sq_round_rne_int(float x) {
  return (int)sq_round_rne(x);
}

// Saturating round to int: NaN -> 0; x clamped as a float to [lo, hi], then rounded ties to
// even. Exact. Preconditions: lo <= hi and |lo|, |hi| <= 2^24 (so both are exact floats).
// ±inf saturate to hi / lo. Used for every quantization code.
SQ_FN int sq_to_int_sat_rne(float x, int lo, int hi) {
  if (sq_isnan(x)) return 0;
  return sq_round_rne_int(sq_clamp(x, (float)lo, (float)hi));
}

SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_ROUNDING_H
