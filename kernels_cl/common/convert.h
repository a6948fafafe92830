// convert.h — exact storage conversions between fp32 and fp16 / bf16, shared by every op.
//
// Integer bit operations only: no cl_khr_fp16 (NVIDIA does not advertise it), no vload_half
// rounding-mode dependence, no float arithmetic, so every device and the fallback agree.
// Widening (fp16/bf16 -> fp32) is exact; narrowing rounds to nearest, ties to even.
// Compiles as OpenCL C 1.2 and as C++20 (prelude.h).
#ifndef SPARQ_COMMON_CONVERT_H
#define SPARQ_COMMON_CONVERT_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

// IEEE binary16 -> binary32, exact. Subnormal halves become normal floats; ±0, ±inf kept; NaN
// keeps its sign and payload (shifted into the float's high mantissa bits, so it stays quiet or
// signalling as it was).
SQ_FN float sq_f16_to_f32(ushort h) {
  uint sign = ((uint)h & 0x8000u) << 16;
  uint e = ((uint)h >> 10) & 0x1fu;
  uint m = (uint)h & 0x3ffu;
  if (e == 0x1fu) return sq_as_float(sign | 0x7f800000u | (m << 13));  // inf, NaN
  if (e != 0u) return sq_as_float(sign | ((e + 112u) << 23) | (m << 13));
  if (m == 0u) return sq_as_float(sign);  // ±0
  // Subnormal: m * 2^-24. Shift the leading 1 of m to bit 10 (the implicit bit).
  uint shift = sq_clz(m) - 21u;  // 1..10
  return sq_as_float(sign | ((113u - shift) << 23) | (((m << shift) & 0x3ffu) << 13));
}

// bfloat16 -> binary32, exact (bf16 is the high half of a float).
SQ_FN float sq_bf16_to_f32(ushort h) {
  return sq_as_float((uint)h << 16);
}

// binary32 -> binary16, round to nearest, ties to even. |x| >= 65520 (halfway to 2^16) -> ±inf;
// results below 2^-14 become subnormal halves (|x| <= 2^-25 -> ±0); NaN -> 0x7e00 with the sign
// kept (canonical quiet NaN, payload dropped). Exact when x is representable.
SQ_FN ushort sq_f32_to_f16_rne(float x) {
  uint u = sq_as_uint(x);
  uint sign = (u >> 16) & 0x8000u;
  uint a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (ushort)(sign | 0x7e00u);   // NaN
  if (a >= 0x477ff000u) return (ushort)(sign | 0x7c00u);  // >= 65520 rounds to inf; inf
  if (a >= 0x38800000u) {                                 // >= 2^-14: a normal half
    uint r = a - 0x38000000u;                             // rebias exponent 127 -> 15
    r += 0xfffu + ((r >> 13) & 1u);                       // ties to even on the 13 dropped bits
    return (ushort)(sign | (r >> 13));                    // a carry renormalizes (up to 0x7bff)
  }
  if (a <= 0x33000000u) return (ushort)sign;  // <= 2^-25: 0 (2^-25 is a tie, even is 0)
  // Subnormal half: the value in units of 2^-24 is mant * 2^(e - 126), e = biased exponent in
  // [102, 112], so drop (126 - e) bits in [14, 24] of the 24-bit significand.
  uint mant = (a & 0x7fffffu) | 0x800000u;
  uint drop = 126u - (a >> 23);
  uint q = mant >> drop;
  uint rem = mant & ((1u << drop) - 1u);
  uint tie = 1u << (drop - 1u);
  if (rem > tie || (rem == tie && (q & 1u) != 0u)) q += 1u;  // may reach 0x400, the least normal
  return (ushort)(sign | q);
}

// binary32 -> bfloat16, round to nearest, ties to even. Overflow rounds to ±inf (by the carry
// into the exponent); subnormals round like any other value; NaN -> 0x7fc0 with the sign kept
// (a quiet NaN even when the payload would have been truncated away).
SQ_FN ushort sq_f32_to_bf16_rne(float x) {
  uint u = sq_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)(((u >> 16) & 0x8000u) | 0x7fc0u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (ushort)(u >> 16);
}

SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_CONVERT_H
