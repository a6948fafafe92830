// sim_math.h — the 32-lane dot-product order of the MoDM retrieval ops
// (specs/diffusion_sampling.md §4.2), shared by kernels_cl/diffusion/sim.cl and
// fallback_cpu/diffusion/sim.cpp. Lane l accumulates fma(a[d], b[d], p_l) for d = l, l+32, ...
// ascending, from +0 (no padded terms: a lane past D stays +0); then p_l = p_l + p_{l+16} for
// l < 16, then 8, 4, 2, 1.
#ifndef SPARQ_DIFFUSION_SIM_MATH_H
#define SPARQ_DIFFUSION_SIM_MATH_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

SQ_FN float sq_lane_tree32(float* p) {
  for (int w = 16; w >= 1; w >>= 1)
    for (int l = 0; l < w; ++l) p[l] = p[l] + p[l + w];
  return p[0];
}

// Selection order: a higher score wins, equal scores -> the smaller index; NaN never wins.
// Associative and commutative, so any reduction tree gives the same answer.
SQ_FN int sq_top1_better(float s, int i, float best_s, int best_i) {
  if (sq_isnan(s)) return 0;
  if (best_i < 0) return 1;
  return s > best_s || (s == best_s && i < best_i);
}

// sim_topk: insert (s, i) into a list of k best entries kept in selection order (best first;
// empty slots have index -1 and lose to every candidate). The order is a strict total order on
// (score, index) for non-NaN scores, so the k best of any partition, merged, are the k best.
SQ_FN void sq_topk_insert(float* ls, int* li, int k, float s, int i) {
  if (!sq_top1_better(s, i, ls[k - 1], li[k - 1])) return;
  int p = k - 1;
  while (p > 0 && sq_top1_better(s, i, ls[p - 1], li[p - 1])) {
    ls[p] = ls[p - 1];
    li[p] = li[p - 1];
    --p;
  }
  ls[p] = s;
  li[p] = i;
}

SQ_END_NAMESPACE

#endif  // SPARQ_DIFFUSION_SIM_MATH_H
