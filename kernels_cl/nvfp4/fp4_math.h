// fp4_math.h — the per-group and per-element steps of NVFP4 quantization and FP4 attention
// (specs/fp4_attention.md §2.3, §3, §4.5, §4.6), shared by kernels_cl/nvfp4/*.cl and
// fallback_cpu/nvfp4/*.cpp so both run the same operations. Compiles as OpenCL C 1.2 and C++20.
#ifndef SPARQ_NVFP4_FP4_MATH_H
#define SPARQ_NVFP4_FP4_MATH_H

#include "common/codecs.h"
#include "common/exact_math.h"
#include "common/prelude.h"

#define SQ_FP4_GROUP 16
#define SQ_FP4_TILE 64     // keys per tile (§4.1, part of the semantics)
#define SQ_FP4_QBLOCK 128  // query rows per smoothing block (§2.4)
#define SQ_FP4_R 2688.0f   // 448 * 6, level-1 factor of P (§4.5)

SQ_BEGIN_NAMESPACE

// quant16 (§2.3) of x[0..15] (private array): 8 packed bytes (element 2k low nibble) into
// bytes[0..7]; returns the E4M3 scale code.
SQ_FN uint sq_fp4_quant16(const float* x, uchar* bytes) {
  uint amax = 0u;
  for (int t = 0; t < SQ_FP4_GROUP; ++t) amax = sq_absmax_bits(amax, x[t]);
  uint sc = sq_fp4_group_scale(amax);
  for (int k = 0; k < SQ_FP4_GROUP / 2; ++k)
    bytes[k] = (uchar)sq_fp4_pack2(sq_fp4_element_code(x[2 * k], sc),
                                   sq_fp4_element_code(x[2 * k + 1], sc));
  return sc;
}

// The fp32 value of one exact 16-group product (§3): I = sum of twice-value products (exact
// int32), sa/sb decoded E4M3 scales. +0 when either scale is 0 (so a flushed or masked group
// contributes nothing, even against a NaN scale).
SQ_FN float sq_fp4_group_term(int prod_sum, float sa, float sb) {
  if (sa == 0.0f || sb == 0.0f) return 0.0f;
  return (((float)prod_sum * sa) * sb) * 0.25f;
}

// sq_fp4_group_term with I given as its exact float fi = (float)I (the same operations).
SQ_FN float sq_fp4_group_term_f(float fi, float sa, float sb) {
  if (sa == 0.0f || sb == 0.0f) return 0.0f;
  return ((fi * sa) * sb) * 0.25f;
}

// sq_fp4_group_term_f without the zero-scale test (item sflag): the same value wherever neither
// scale is ±0, and for sa == +0 with fi == +0 and sb > 0 (a P group of scale 0 has only zero
// codes): (+0 * +0) * sb * 0.25 = +0.
SQ_FN float sq_fp4_group_term_n(float fi, float sa, float sb) {
  return ((fi * sa) * sb) * 0.25f;
}

// The same term with the factor 0.25 folded into one scale, a4 = sa * 0.25 or b4 = sb * 0.25
// (item fold): (fi * a) * b. Every product here and in the definition is exact (§3: at most 20
// significant bits, results in [2^-20, 2^29] or 0; a4 >= 2^-11 is normal), so both give the
// real product; zero signs are the xor of the operands' signs either way, NaN stays NaN.
SQ_FN float sq_fp4_group_term_fold(float fi, float a, float b) {
  if (a == 0.0f || b == 0.0f) return 0.0f;
  return (fi * a) * b;
}
SQ_FN float sq_fp4_group_term_fold_n(float fi, float a, float b) {
  return (fi * a) * b;
}

// Level-1 P value of one unmasked key (§4.5): Pt = sq_exp2_q(S * c - mu_new) * R.
SQ_FN float sq_fp4_p_level1(float s, float c, float mu_new) {
  float x = s * c - mu_new;
  return sq_exp2_q(x) * SQ_FP4_R;
}

// Row sum of one dequantized P group (§4.6): ((float)(sum of twice values) * sP) * 0.5f.
SQ_FN float sq_fp4_p_group_sum(int tw_sum, float sp) {
  return ((float)tw_sum * sp) * 0.5f;
}

// --- Speed forms of the P quantization (SPARQ_TUNE_FP4 items; docs/quantized_attention.md) -------
// Each equals the literal step it stands for bit for bit on its stated domain;
// tests/common/fast_forms_test.cpp FastForms.Fp4* check them (dense boundary sweeps; the
// exhaustive runs are recorded there).

// RN(a / 6) for finite a >= 0 without a division (item div): q0 = RN(a * r), r = RN(1/6); the
// remainder a - 6 q0 is exact in the fma, and one Markstein correction step rounds correctly.
// Checked against a / 6.0f for every finite a >= 0 (all 2^31 - 2^23 patterns, once).
SQ_FN float sq_fp4_div6(float a) {
  const float r = sq_as_float(0x3E2AAAABu);  // RN(1/6)
  const float q0 = a * r;
  return sq_fma(sq_fma(-6.0f, q0, a), r, q0);
}

// sq_fp4_group_scale(amax_bits) through sq_fp4_div6 (the same code for every amax_bits).
SQ_FN uint sq_fp4_group_scale_q(uint amax_bits) {
  if (amax_bits >= 0x7F800000u) return 0x7Fu;
  return sq_e4m3_rne(sq_fp4_div6(sq_as_float(amax_bits)));
}

// The threshold scale of sq_fp4_twice_q for a group of scale code sc: its decoded scale, +inf
// for sc == 0 (every element's code is then 0 or 0x8, twice value 0), NaN for the NaN code.
SQ_FN float sq_fp4_twice_scale(uint sc) {
  return sc == 0u ? sq_as_float(0x7F800000u) : sq_e4m3_decode(sc);
}

// sq_e2m1_twice(sq_fp4_element_code(a, sc)) for a >= +0 (or -0, or NaN; P values), s =
// sq_fp4_twice_scale(sc) (item pcode): the twice value straight from sq_e2m1_rne_q's seven
// exact threshold compares, weighted by the steps of the twice table 0 1 2 3 4 6 8 12; no code,
// nibble table or sign. A NaN a, or the NaN scale, fails every compare: 0 (the literal's code 0).
SQ_FN int sq_fp4_twice_q(float a, float s) {
  return (int)(a > 0.25f * s) + (int)(a >= 0.75f * s) + (int)(a > 1.25f * s) +
         (int)(a >= 1.75f * s) + 2 * ((int)(a > 2.5f * s) + (int)(a >= 3.5f * s)) +
         4 * (int)(a > 5.0f * s);
}

// sq_fp4_p_level1 for S <= m_new (so x = S * c - mu_new <= 0 with c > 0, or NaN), through
// sq_exp2_q_le0 (item exp): the same bits.
SQ_FN float sq_fp4_p_level1_le0(float s, float c, float mu_new) {
  float x = s * c - mu_new;
  return sq_exp2_q_le0(x) * SQ_FP4_R;
}

SQ_END_NAMESPACE

#endif  // SPARQ_NVFP4_FP4_MATH_H
