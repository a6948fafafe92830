// fp4_attention_p.h — the P quantization step of kernels_cl/nvfp4/fp4_attention.cl, in the order
// of that file's banner: for an active row (act), mu_new = m_new * c, Pt_j = sq_exp2_q(S_j * c -
// mu_new) * 2688 (invisible: 0) (sq_fp4_p_level1), quant16 of group q of row r -> P twice values
// (ptw), scale sP (psc) and L_q = ((float)sum tw * sP) * 0.5 (plsum); alpha = sq_exp2(mu_old -
// mu_new); m, mu_old advance. An inactive row stores zero codes, scale and sum (alpha stays 0).
// OpenCL C only; the macros expand inside the kernel's step loop and use its variables (r, q, S,
// m, m_new, mu_old, c, act, alpha, FP4_VIS, the local P arrays).
#ifndef SPARQ_NVFP4_FP4_ATTENTION_P_H
#define SPARQ_NVFP4_FP4_ATTENTION_P_H

// Speed forms (FP4_FORMS bits, SPARQ_TUNE_FP4 items; each gives the same bits, fp4_math.h):
// FP4_F_EXP (exp): sq_exp2_q_le0 / sq_exp2_le0 for the level-1 P and alpha (x <= 0: S <= m_new,
// mu_old <= mu_new as c > 0); FP4_F_DIV (div): the group scale through sq_fp4_div6;
// FP4_F_PCODE (pcode): twice values straight from the threshold compares (sq_fp4_twice_q).
#if FP4_FORMS & FP4_F_EXP
#define FP4_P_LEVEL1 sq_fp4_p_level1_le0
#define FP4_ALPHA sq_exp2_le0
#else
#define FP4_P_LEVEL1 sq_fp4_p_level1
#define FP4_ALPHA sq_exp2
#endif
#if FP4_FORMS & FP4_F_DIV
#define FP4_GROUP_SCALE sq_fp4_group_scale_q
#else
#define FP4_GROUP_SCALE sq_fp4_group_scale
#endif

#if FP4_FORMS & (FP4_F_PCODE | FP4_F_DIV)
// quant16 split into its steps (the same operations as sq_fp4_quant16 + sq_e2m1_twice).
#if FP4_FORMS & FP4_F_PCODE
#define FP4_P_CODES()                         \
  const float st = sq_fp4_twice_scale(sc);    \
  for (int e = 0; e < 16; ++e) {              \
    const int tw = sq_fp4_twice_q(pt[e], st); \
    ptw[r * 64 + 16 * q + e] = (char)tw;      \
    sum += tw;                                \
  }
#else
#define FP4_P_CODES()                                             \
  for (int e = 0; e < 16; ++e) {                                  \
    const int tw = sq_e2m1_twice(sq_fp4_element_code(pt[e], sc)); \
    ptw[r * 64 + 16 * q + e] = (char)tw;                          \
    sum += tw;                                                    \
  }
#endif
#define FP4_P_QUANT16()                                            \
  uint amax = 0u;                                                  \
  for (int e = 0; e < 16; ++e) amax = sq_absmax_bits(amax, pt[e]); \
  const uint sc = FP4_GROUP_SCALE(amax);                           \
  int sum = 0;                                                     \
  FP4_P_CODES()
#else
#define FP4_P_QUANT16()                                                                         \
  uchar bytes[8];                                                                               \
  const uint sc = sq_fp4_quant16(pt, bytes);                                                    \
  int sum = 0;                                                                                  \
  for (int k = 0; k < 8; ++k) {                                                                 \
    const int lo = sq_e2m1_twice(sq_fp4_lo(bytes[k])), hi = sq_e2m1_twice(sq_fp4_hi(bytes[k])); \
    ptw[r * 64 + 16 * q + 2 * k] = (char)lo;                                                    \
    ptw[r * 64 + 16 * q + 2 * k + 1] = (char)hi;                                                \
    sum += lo + hi;                                                                             \
  }
#endif

#define FP4_QUANTIZE_P()                                                  \
  if (act) {                                                              \
    const float mu_new = m_new * c;                                       \
    float pt[16];                                                         \
    for (int e = 0; e < 16; ++e)                                          \
      pt[e] = FP4_VIS(16 * q + e) ? FP4_P_LEVEL1(S[e], c, mu_new) : 0.0f; \
    FP4_P_QUANT16()                                                       \
    const float sp = sq_e4m3_decode(sc);                                  \
    psc[r * 4 + q] = sp;                                                  \
    plsum[r * 4 + q] = sq_fp4_p_group_sum(sum, sp);                       \
    alpha = FP4_ALPHA(mu_old - mu_new);                                   \
    m = m_new;                                                            \
    mu_old = mu_new;                                                      \
  } else {                                                                \
    for (int e = 0; e < 16; ++e) ptw[r * 64 + 16 * q + e] = 0;            \
    psc[r * 4 + q] = 0.0f;                                                \
    plsum[r * 4 + q] = 0.0f;                                              \
  }

// MMA path: the P.V lanes of row r read its alpha, mu (the chunk lse) and act from local memory.
#if FP4_MMA
#define FP4_SHARE_ROW_STEP() \
  if (q == 0) {              \
    alpha_l[r] = alpha;      \
    mu_l[r] = mu_old;        \
    act_l[r] = act;          \
  }
#else
#define FP4_SHARE_ROW_STEP()
#endif

#endif  // SPARQ_NVFP4_FP4_ATTENTION_P_H
