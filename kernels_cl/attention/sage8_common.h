// sage8_common.h — the per-element arithmetic of Precision::int8 attention (SageAttention 1/2
// style, specs/fp4_attention.md §5), shared by kernels_cl/attention/sage8.cl (portable integer
// path and NVIDIA mma.sync path) and fallback_cpu/attention/sage8.cpp.
//
// THE DEFINITION (docs/quantized_attention.md explains it). Inputs are the int8 tensors of
// kernels_cl/quant/int8_quant.cl: q8 (c folded in, scale sq per 128-row block), k8 (scale sk
// per 64-token block), v8 (scale sv per channel per 16-token group), and delta (Q smoothing).
// Per query row i of (b, h), kv head hk = h / (Hq / Hkv), visible(i, j) = j < Lk && (!causal ||
// j <= i + Lk - Lq). The keys are cut into chunks [4096c, 4096c + 4096) (attention_common.h's
// SQ_ATT_CHUNK, ARCHITECTURE §2). Each chunk starts from a fresh state m = -inf, l = 0, O[.] = 0
// and walks its key tiles n = [64n, 64n + 64) in ascending order; a tile in which row i sees no
// key is skipped for it (state unchanged). The tile step:
//   I_j   = sum_d q8[i][d] * k8[j][d]                   int32, exact (any order)
//   S2_j  = ((float)I_j * sq) * sk;  with Q smoothing: S2_j = fma(delta[blk(i)][j], c, S2_j)
//   m_new = mx(m, mx over visible j of S2_j)             (max is exact: any order)
//   if m_new == -inf: skip the tile
//   P_j   = visible ? sq_exp2_q(S2_j - m_new) : 0
//   group g (keys 16g..16g+15 of the tile): sP_g = absmax(P) / 127; p8 = sq_i8_code(P, sP_g, 0)
//   U_g[d] = sP_g == 0 ? 0 : ((float)(sum_t p8_t * v8[d][t]) * sP_g) * sv[d][g]   (int exact)
//   L_g    = (float)(sum_t p8_t) * sP_g
//   Ot[d] = ((U_0 + U_1) + U_2) + U_3;  Lt = ((L_0 + L_1) + L_2) + L_3
//   alpha = sq_exp2(m - m_new);  O[d] = fma(O[d], alpha, Ot[d]);  l = fma(l, alpha, Lt);  m = m_new
// Chunk result C: o_c[d] = l == 0 ? 0 : O[d] / l (correctly rounded), lse_c = l == 0 ? -inf :
// m + sq_log2(l) (m is in log2 units). The chunks are merged left to right (chunk 0 first) into R
// (starts empty) by attention_common.h's sq_att_merge_* (merge_states' formula); out = R's o (0
// for a row that sees no key). With one chunk (Lk <= 4096) out[d] = l == 0 ? 0 : O[d] / l
// exactly. NaN propagates (a NaN score makes m NaN, then lse_c and the merge NaN).
#ifndef SPARQ_ATTENTION_SAGE8_COMMON_H
#define SPARQ_ATTENTION_SAGE8_COMMON_H

#include "common/exact_math.h"
#include "common/prelude.h"
#include "quant/int8_codec.h"

SQ_BEGIN_NAMESPACE

// (float)i for |i| < 2^22, as an integer add and one exact fp32 subtraction: 0x4B400000 is
// 1.5 * 2^23, whose ulp is 1, so bits(1.5 * 2^23) + i is the float 1.5 * 2^23 + i exactly, and
// subtracting 1.5 * 2^23 is exact (i = 0 gives +0, as (float)0). Same bits as the conversion
// instruction, which GPUs run at a fraction of the fp32 rate. Every caller is in range:
// QK dots |i| <= 128 * 127^2 = 2064512, P.V dots |i| <= 16 * 127^2, code sums <= 16 * 127.
SQ_FN float sq_s8_i2f(int i) {
  return sq_as_float((uint)i + 0x4B400000u) - 12582912.0f;
}

SQ_FN float sq_s8_score(int dot, float sq, float sk) {
  return (sq_s8_i2f(dot) * sq) * sk;
}

SQ_FN float sq_s8_score_delta(float s2, float delta, float c) {
  return sq_fma(delta, c, s2);
}

SQ_FN float sq_s8_pv_term(int dot, float sp, float sv) {
  return sp == 0.0f ? 0.0f : (sq_s8_i2f(dot) * sp) * sv;
}

SQ_FN float sq_s8_row_term(int psum, float sp) {
  return sq_s8_i2f(psum) * sp;
}

SQ_FN float sq_s8_out(float o, float l) {
  return l == 0.0f ? 0.0f : o / l;
}

SQ_END_NAMESPACE

#endif  // SPARQ_ATTENTION_SAGE8_COMMON_H
