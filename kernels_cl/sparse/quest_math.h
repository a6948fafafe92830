// quest_math.h — the per-element arithmetic of Quest page-sparse decode (specs/sparse_attention.md
// §8), shared by kernels_cl/sparse/quest.cl and fallback_cpu/sparse/quest.cpp (OpenCL C 1.2 and
// C++20). docs/quest.md states the definitions; every executor computes exactly these.
//
// Metadata, per (page, kv head, d), over the page's valid tokens s ascending:
//   kmin = k[0][d]; for s >= 1: kmin = sq_mn(kmin, k[s][d])   (NaN-propagating, not fmin)
//   kmax = k[0][d]; for s >= 1: kmax = sq_mx(kmax, k[s][d])
// An append of tokens [from, valid) to a page continues the same fold from the stored entry, so
// the in-place update is the recomputation, bit for bit.
// Bound, per (query head h, page p): U = 0; for d ascending: U = U + mx(q[d]*kmin[d], q[d]*kmax[d])
// (each product rounded; plain +). kv_group sharing: B = 0; for the G heads ascending: B = B + U_h.
// Merge of two split states (m, l, acc): see sq_quest_merge_* below.
#ifndef SPARQ_SPARSE_QUEST_MATH_H
#define SPARQ_SPARSE_QUEST_MATH_H

#include "common/exact_math.h"
#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

SQ_FN float sq_quest_neg_inf(void) {
  return sq_as_float(0xff800000u);
}

// One term of the upper bound U (the max of the two rounded products).
SQ_FN float sq_quest_bound_term(float q, float kmin, float kmax) {
  return sq_mx(q * kmin, q * kmax);
}

// The §4 top-k order as one unsigned key: a smaller key comes first; equal keys are ordered by
// index ascending (the caller's tie rule). +inf first, finite scores descending (-0 == +0), then
// -inf, then NaN (any payload) last. Keys of distinct non-NaN values differ, so (key, index) is
// the strict total order of §4.
SQ_FN uint sq_quest_order_key(float s) {
  if (sq_isnan(s)) return 0xffffffffu;
  uint u = sq_as_uint(s);
  if (u == 0x80000000u) u = 0u;  // -0 == +0
  const uint ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~ascending;
}

// Merge of two split states (specs §8), the left fold's step (m1, l1, acc1) ⊕ (m2, l2, acc2):
//   m = mx(m1, m2); if m == -inf: the result is (-inf, 0, 0)
//   a1 = exp2(m1 - m); a2 = exp2(m2 - m)
//   l = fma(l1, a1, l2 * a2); acc[d] = fma(acc1[d], a1, acc2[d] * a2)
typedef struct SqQuestMerge {
  float m, a1, a2;
  int empty;
} SqQuestMerge;

SQ_FN SqQuestMerge sq_quest_merge_weights(float m1, float m2) {
  SqQuestMerge w;
  w.m = sq_mx(m1, m2);
  w.empty = w.m == sq_quest_neg_inf();
  w.a1 = w.empty ? 0.0f : sq_exp2(m1 - w.m);
  w.a2 = w.empty ? 0.0f : sq_exp2(m2 - w.m);
  return w;
}

// Applies the weights to l or to one acc[d] (0 for an empty result).
SQ_FN float sq_quest_merge_value(SqQuestMerge w, float x1, float x2) {
  return w.empty ? 0.0f : sq_fma(x1, w.a1, x2 * w.a2);
}

// Final output of a merged state: O = (l == 0) ? 0 : acc / l; lse2 = (l == 0) ? -inf : m + log2 l.
SQ_FN float sq_quest_out(float acc, float l) {
  return l == 0.0f ? 0.0f : acc / l;
}
SQ_FN float sq_quest_lse(float m, float l) {
  return l == 0.0f ? sq_quest_neg_inf() : m + sq_log2(l);
}

SQ_END_NAMESPACE

#endif  // SPARQ_SPARSE_QUEST_MATH_H
