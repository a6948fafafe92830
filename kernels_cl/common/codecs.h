// codecs.h — microscaling number formats (specs/fp4_attention.md §1): FP4 E2M1, FP8 E4M3 (OCP
// E4M3FN), UE8M0, int8/int4 helpers and the nibble packing of FP4 tensors. Integer and bit
// operations only (plus the exact products and the one correctly rounded division the spec
// names), so the device kernels and the CPU fallback produce the same codes on every device.
// Compiles as OpenCL C 1.2 and as C++20 (prelude.h).
//
// Codes are passed as uint (low 4 or 8 bits used). "twice" values: 2 * value of an E2M1 code,
// the small integers {0, ±1, ±2, ±3, ±4, ±6, ±8, ±12} that make FP4 group products exact int dots.
#ifndef SPARQ_COMMON_CODECS_H
#define SPARQ_COMMON_CODECS_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

// --- FP4 E2M1 (§1.1) -----------------------------------------------------------------------------
// b3 sign, b2b1 exponent (bias 1), b0 mantissa; no Inf/NaN. Magnitudes 0 .5 1 1.5 2 3 4 6.

// |2 * value| of the 3-bit magnitude code m (0..7): 0 1 2 3 4 6 8 12, one nibble each.
SQ_FN int sq_e2m1_twice_mag(uint m) {
  return (int)((0xC8643210u >> ((m & 7u) * 4u)) & 15u);
}

// 2 * value of an E2M1 code as a signed integer in [-12, 12] (-0, code 0x8, gives 0).
SQ_FN int sq_e2m1_twice(uint code) {
  int t = sq_e2m1_twice_mag(code);
  return (code & 8u) ? -t : t;
}

// Value of an E2M1 code (exact); 0x8 decodes to -0.0f.
SQ_FN float sq_e2m1_decode(uint code) {
  float v = (float)sq_e2m1_twice_mag(code) * 0.5f;
  return sq_as_float(sq_as_uint(v) | ((code & 8u) << 28));
}

// RNE of y to E2M1 with satfinite (|y| > 5 -> 6, also ±Inf); the sign of y is kept also when the
// magnitude rounds to 0 (-0.1 -> 0x8). Midpoints go to the even code. NaN must not reach it.
SQ_FN uint sq_e2m1_rne(float y) {
  uint b = sq_as_uint(y);
  uint a = b & 0x7FFFFFFFu;
  uint m = (uint)(a > 0x3E800000u) + (uint)(a >= 0x3F400000u) + (uint)(a > 0x3FA00000u) +
           (uint)(a >= 0x3FE00000u) + (uint)(a > 0x40200000u) + (uint)(a >= 0x40600000u) +
           (uint)(a > 0x40A00000u);
  return ((b >> 28) & 8u) | m;
}

// RNE of the exact real x / s to E2M1 (satfinite, sign of x kept), s > 0 a decoded E4M3 scale.
// Division-free: each threshold t of sq_e2m1_rne becomes the fp32 product t * s, which is exact
// (t has <= 3 significant bits, s <= 4; s >= 2^-9 so no underflow). |x| must not be NaN.
SQ_FN uint sq_e2m1_rne_q(float x, float s) {
  uint b = sq_as_uint(x);
  float a = sq_as_float(b & 0x7FFFFFFFu);
  uint m = (uint)(a > 0.25f * s) + (uint)(a >= 0.75f * s) + (uint)(a > 1.25f * s) +
           (uint)(a >= 1.75f * s) + (uint)(a > 2.5f * s) + (uint)(a >= 3.5f * s) +
           (uint)(a > 5.0f * s);
  return ((b >> 28) & 8u) | m;
}

// --- FP8 E4M3, OCP E4M3FN (§1.2) ----------------------------------------------------------------
// b7 sign, b6..b3 exponent (bias 7), b2..b0 mantissa; 0x7F/0xFF NaN, no Inf, max 0x7E = 448.

// Value of an E4M3 code (exact). NaN codes give the quiet NaN 0x7FC00000; 0x80 gives -0.0f.
SQ_FN float sq_e4m3_decode(uint code) {
  uint s = (code & 0x80u) << 24;
  uint e = (code >> 3) & 15u;
  uint m = code & 7u;
  if (e == 15u && m == 7u) return sq_as_float(0x7FC00000u);
  if (e == 0u) return sq_as_float(sq_as_uint((float)m * sq_as_float(0x3B000000u)) | s);
  return sq_as_float(s | ((e + 120u) << 23) | (m << 20));
}

// RNE of x to E4M3 with satfinite (|x| >= 448 incl. Inf -> ±448), NaN -> s|0x7F. Integer only.
SQ_FN uint sq_e4m3_rne(float x) {
  uint b = sq_as_uint(x);
  uint s = (b >> 24) & 0x80u;
  uint a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return s | 0x7Fu;
  if (a >= 0x43E00000u) return s | 0x7Eu;
  if (a >= 0x3C800000u) {  // normal result; a mantissa carry bumps the exponent correctly
    uint r = (a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;
    return s | (r - 960u);
  }
  if ((a >> 23) == 0u) return s;  // fp32 zero or subnormal: far below half of 2^-9
  // Subnormal target, units of 2^-9: M * 2^(E - 14) with M the 24-bit significand.
  int e = (int)(a >> 23) - 127;
  uint mant = (a & 0x7FFFFFu) | 0x800000u;
  int sh = 14 - e;  // >= 21
  if (sh >= 25) return s;
  uint k = (mant + (1u << (sh - 1)) - 1u + ((mant >> sh) & 1u)) >> sh;  // 0..8 (8 = min normal)
  return s | k;
}

// The NVFP4 group scale code: RNE of the exact real amax / 6 (amax >= 0). The fp32 quotient is
// correctly rounded and cannot land on an E4M3 midpoint unless the real quotient does, so this
// is one rounding. amax < 6 * 2^-10 -> 0x00; amax >= 2592 -> 0x7E (448).
SQ_FN uint sq_e4m3_scale(float amax) {
  return sq_e4m3_rne(amax / 6.0f);
}

// --- UE8M0 (§1.3, MXFP4 scales; documented, not used by the attention path) ----------------------
// Unsigned exponent: value 2^(c - 127); 0xFF is NaN; no zero, no sign.
SQ_FN float sq_ue8m0_decode(uint code) {
  code &= 0xFFu;
  if (code == 0xFFu) return sq_as_float(0x7FC00000u);
  if (code == 0u) return sq_as_float(0x00400000u);  // 2^-127 (an fp32 subnormal)
  return sq_as_float(code << 23);
}

// The OCP MX scale of a group: 2^(floor(log2(amax)) - 2) taken from the fp32 exponent field,
// c = biased exponent - 2 (no rounding). amax NaN/Inf -> 0xFF; results below 2^-127 (amax = 0,
// subnormal amax, or exponent field < 2) clamp to c = 0 [sparq choice where §1.3 is silent].
SQ_FN uint sq_ue8m0_scale(float amax) {
  uint a = sq_as_uint(amax) & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return 0xFFu;
  uint e = a >> 23;
  return e >= 2u ? e - 2u : 0u;
}

// --- Group absmax (§1.5) -------------------------------------------------------------------------
// The running absmax of a group as uint bits: max over t of bits(x_t) & 0x7FFFFFFF. Exact,
// order-free, NaN patterns exceed 0x7F800000 and so propagate. Start from 0u.
SQ_FN uint sq_absmax_bits(uint acc, float x) {
  uint a = sq_as_uint(x) & 0x7FFFFFFFu;
  return a > acc ? a : acc;
}

// --- NVFP4 group quantization quant16 (§2.3), split into its two per-element steps -------------
// Step 1 (per group): scale code from the group's absmax bits: Inf/NaN amax -> 0x7F (NaN scale,
// all codes 0), else sq_e4m3_scale(amax).
SQ_FN uint sq_fp4_group_scale(uint amax_bits) {
  if (amax_bits >= 0x7F800000u) return 0x7Fu;
  return sq_e4m3_scale(sq_as_float(amax_bits));
}

// Step 2 (per element): the E2M1 code of x in a group of scale code `scale_code`. NaN scale ->
// 0; zero scale -> the sign of x alone (0x0 or 0x8, both decode to zero); else sq_e2m1_rne_q.
SQ_FN uint sq_fp4_element_code(float x, uint scale_code) {
  if ((scale_code & 0x7Fu) == 0x7Fu) return 0u;
  if (scale_code == 0u) return (sq_as_uint(x) >> 28) & 8u;
  return sq_e2m1_rne_q(x, sq_e4m3_decode(scale_code));
}

// --- Packing (§1.4) ------------------------------------------------------------------------------
// Two FP4 codes per byte: element 2k in the low nibble, element 2k+1 in the high nibble.
SQ_FN uint sq_fp4_pack2(uint lo, uint hi) {
  return (lo & 15u) | ((hi & 15u) << 4);
}
SQ_FN uint sq_fp4_lo(uint byte) {
  return byte & 15u;
}
SQ_FN uint sq_fp4_hi(uint byte) {
  return (byte >> 4) & 15u;
}

// --- int8 / int4 ---------------------------------------------------------------------------------
// round_half_away as SageAttention's Triton quantizer writes it (specs/fp4_attention.md §5):
// (int)(y + (y >= 0 ? 0.5f : -0.5f)) in fp32, including its double rounding in y + 0.5f, with y
// first clamped as a float to [lo, hi] (|lo|, |hi| <= 2^24; NaN -> 0) so the cast is defined.
// Clamping first gives the same integer as rounding then clamping.
SQ_FN int sq_round_half_away_sat(float y, int lo, int hi) {
  if (sq_isnan(y)) return 0;
  float c = sq_clamp(y, (float)lo, (float)hi);
  return (int)(c + (c >= 0.0f ? 0.5f : -0.5f));
}

// int4 two's-complement nibbles, two per byte, element 2k in the low nibble (as FP4).
SQ_FN uint sq_int4_pack2(int lo, int hi) {
  return ((uint)lo & 15u) | (((uint)hi & 15u) << 4);
}
SQ_FN int sq_int4_lo(uint byte) {
  return (int)((byte & 15u) ^ 8u) - 8;  // sign-extend
}
SQ_FN int sq_int4_hi(uint byte) {
  return (int)(((byte >> 4) & 15u) ^ 8u) - 8;
}
// int8 stored as a byte (two's complement) -> int.
SQ_FN int sq_int8_from_byte(uint byte) {
  return (int)((byte & 255u) ^ 128u) - 128;
}

SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_CODECS_H
