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

// Level-1 P value of one unmasked key (§4.5): Pt = sq_exp2_q(S * c - mu_new) * R.
SQ_FN float sq_fp4_p_level1(float s, float c, float mu_new) {
  float x = s * c - mu_new;
  return sq_exp2_q(x) * SQ_FP4_R;
}

// Row sum of one dequantized P group (§4.6): ((float)(sum of twice values) * sP) * 0.5f.
SQ_FN float sq_fp4_p_group_sum(int tw_sum, float sp) {
  return ((float)tw_sum * sp) * 0.5f;
}

SQ_END_NAMESPACE

#endif  // SPARQ_NVFP4_FP4_MATH_H
