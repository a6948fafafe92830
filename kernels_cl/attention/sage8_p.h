// sage8_p.h — the softmax step and P quantization of kernels_cl/attention/sage8.cl, in the order
// of attention/sage8_common.h: the row's tile max over its visible keys (m_new = mx(m, mt); a row
// that sees no key of the step, or whose m_new is -inf, skips it: alpha 1, P 0), alpha =
// sq_exp2(m - m_new), P = sq_exp2_q(S2 - m_new) for visible keys (else 0), per 16-key group the
// int8 scale sP, the codes and the row-sum term; m advances. Row `own` (work-items lid and lid +
// 64 hold identical copies), groups 2 side, 2 side + 1. OpenCL C only; the macros expand inside
// the kernel's step loop (one block) and use its variables (own, side, j0, own_end or qpl, sbuf,
// m_own, alpha_l, skip_l, pq, spl, lgl).
#ifndef SPARQ_ATTENTION_SAGE8_P_H
#define SPARQ_ATTENTION_SAGE8_P_H

// The row max of the step (declares mt, m_new, skip) and which keys of it the row sees.
#if SAGE8_SPARSE
#define SAGE8_ROW_MAX()                    \
  const int qp = qpl[own];                 \
  float mt = sq_att_neg_inf();             \
  int any = 0;                             \
  for (int jj = 0; jj < BN; ++jj)          \
    if (SAGE8_VIS(jj, qp)) {               \
      any = 1;                             \
      mt = sq_mx(mt, sbuf[own * SW + jj]); \
    }                                      \
  const float m_new = sq_mx(m_own, mt);    \
  const bool skip = !any || m_new == sq_att_neg_inf()
#define SAGE8_PVIS(jj) SAGE8_VIS(jj, qp)
#else
#define SAGE8_ROW_MAX()                                                \
  const int ve = min(own_end - j0, BN);                                \
  float mt = sq_att_neg_inf();                                         \
  for (int jj = 0; jj < ve; ++jj) mt = sq_mx(mt, sbuf[own * SW + jj]); \
  const float m_new = sq_mx(m_own, mt);                                \
  const bool skip = ve <= 0 || m_new == sq_att_neg_inf()
#define SAGE8_PVIS(jj) ((jj) < ve)
#endif

// alpha and skip published by side 0; P of groups 2 side, 2 side + 1 quantized; m advances.
#define SAGE8_QUANTIZE_P()                                                              \
  if (side == 0) {                                                                      \
    alpha_l[own] = skip ? 1.0f : sq_exp2(m_own - m_new);                                \
    skip_l[own] = skip;                                                                 \
  }                                                                                     \
  for (int gi = 0; gi < 2; ++gi) {                                                      \
    const int gr = 2 * side + gi;                                                       \
    float p[16];                                                                        \
    uint amax = 0;                                                                      \
    for (int u = 0; u < 16; ++u) {                                                      \
      const int jj = 16 * gr + u;                                                       \
      p[u] = (!skip && SAGE8_PVIS(jj)) ? sq_exp2_q(sbuf[own * SW + jj] - m_new) : 0.0f; \
      amax = max(amax, sq_i8_absbits(p[u]));                                            \
    }                                                                                   \
    const float sp = sq_i8_scale(amax);                                                 \
    int psum = 0;                                                                       \
    for (int x = 0; x < 4; ++x) {                                                       \
      uint word = 0;                                                                    \
      for (int e = 0; e < 4; ++e) {                                                     \
        const int code = sq_i8_code(p[4 * x + e], sp, 0.0f);                            \
        psum += code;                                                                   \
        word |= (uint)code << (8 * e);                                                  \
      }                                                                                 \
      pq[own * VW + 4 * gr + x] = word;                                                 \
    }                                                                                   \
    spl[own * 4 + gr] = sp;                                                             \
    lgl[own * 4 + gr] = sq_s8_row_term(psum, sp);                                       \
  }                                                                                     \
  if (!skip) m_own = m_new

#endif  // SPARQ_ATTENTION_SAGE8_P_H
