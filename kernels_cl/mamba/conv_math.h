// conv_math.h — shared pieces of the causal depthwise conv1d (kernels_cl/mamba/causal_conv1d.cl
// and its fallback twin): the sequence lookup of varlen packing and the output's gate.
#ifndef SPARQ_MAMBA_CONV_MATH_H
#define SPARQ_MAMBA_CONV_MATH_H

#include "common/exact_math.h"

#ifdef __OPENCL_C_VERSION__
typedef long sq_mamba_i64;
#else
#include <cstdint>
typedef std::int64_t sq_mamba_i64;
#endif

SQ_BEGIN_NAMESPACE

// The sequence holding time t of a packed batch: the largest s < nseq with cu[s] <= t (empty
// sequences, cu[s] == cu[s+1], are skipped by construction). cu is validated by the host.
SQ_FN int sq_seq_of(SQ_CONST_GLOBAL int* cu, int nseq, sq_mamba_i64 t) {
  int lo = 0, hi = nseq - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if ((sq_mamba_i64)cu[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// out = silu(acc) when asked (exact_math.h), else acc.
SQ_FN float sq_conv_act(float acc, int silu) {
  return silu ? sq_silu(acc) : acc;
}

SQ_END_NAMESPACE

#endif  // SPARQ_MAMBA_CONV_MATH_H
