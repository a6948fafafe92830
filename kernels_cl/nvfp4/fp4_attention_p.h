// fp4_attention_p.h — the P quantization step of kernels_cl/nvfp4/fp4_attention.cl, in the order
// of that file's banner: for an active row (act), mu_new = m_new * c, Pt_j = sq_exp2_q(S_j * c -
// mu_new) * 2688 (invisible: 0) (sq_fp4_p_level1), quant16 of group q of row r -> P twice values
// (ptw), scale sP (psc) and L_q = ((float)sum tw * sP) * 0.5 (plsum); alpha = sq_exp2(mu_old -
// mu_new); m, mu_old advance. An inactive row stores zero codes, scale and sum (alpha stays 0).
// OpenCL C only; the macros expand inside the kernel's step loop and use its variables (r, q, S,
// m, m_new, mu_old, c, act, alpha, FP4_VIS, the local P arrays).
#ifndef SPARQ_NVFP4_FP4_ATTENTION_P_H
#define SPARQ_NVFP4_FP4_ATTENTION_P_H

#define FP4_QUANTIZE_P()                                                                          \
  if (act) {                                                                                      \
    const float mu_new = m_new * c;                                                               \
    float pt[16];                                                                                 \
    for (int e = 0; e < 16; ++e)                                                                  \
      pt[e] = FP4_VIS(16 * q + e) ? sq_fp4_p_level1(S[e], c, mu_new) : 0.0f;                      \
    uchar bytes[8];                                                                               \
    const uint sc = sq_fp4_quant16(pt, bytes);                                                    \
    int sum = 0;                                                                                  \
    for (int k = 0; k < 8; ++k) {                                                                 \
      const int lo = sq_e2m1_twice(sq_fp4_lo(bytes[k])), hi = sq_e2m1_twice(sq_fp4_hi(bytes[k])); \
      ptw[r * 64 + 16 * q + 2 * k] = (char)lo;                                                    \
      ptw[r * 64 + 16 * q + 2 * k + 1] = (char)hi;                                                \
      sum += lo + hi;                                                                             \
    }                                                                                             \
    const float sp = sq_e4m3_decode(sc);                                                          \
    psc[r * 4 + q] = sp;                                                                          \
    plsum[r * 4 + q] = sq_fp4_p_group_sum(sum, sp);                                               \
    alpha = sq_exp2(mu_old - mu_new);                                                             \
    m = m_new;                                                                                    \
    mu_old = mu_new;                                                                              \
  } else {                                                                                        \
    for (int e = 0; e < 16; ++e) ptw[r * 64 + 16 * q + e] = 0;                                    \
    psc[r * 4 + q] = 0.0f;                                                                        \
    plsum[r * 4 + q] = 0.0f;                                                                      \
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
