// hadamard_math.h — the per-element arithmetic of sparq::mamba::hadamard_transform and
// hadamard_quantize (docs/mamba.md, "Rotation + quantize"), compiled by
// kernels_cl/mamba/hadamard.cl and by fallback_cpu/mamba/hadamard.cpp. The butterflies themselves
// are one rounded + and one rounded - each (written in both files in the same stage order).
#ifndef SPARQ_MAMBA_HADAMARD_MATH_H
#define SPARQ_MAMBA_HADAMARD_MATH_H

#include "common/exact_math.h"
#include "common/rounding.h"

SQ_BEGIN_NAMESPACE

// Stage s (h = 2^s) pairs element j with j + h inside blocks of 2h: pair k (0 <= k < C/2) is
// j = (k / h) * 2h + k % h.
SQ_FN int sq_hq_pair(int k, int h) {
  return (k / h) * (2 * h) + (k - (k / h) * h);
}

// Per-token scale (spec §5.4 step 6, no outliers): s = max_j |y_j| / qmax.
SQ_FN float sq_hq_scale(float m, int qmax) {
  return m / (float)qmax;
}

// Code of y (step 7): s > 0 ? sat_rne(y / s, -qmax, qmax) : 0.
SQ_FN int sq_hq_code(float y, float s, int qmax) {
  return (s > 0.0f) ? sq_to_int_sat_rne(y / s, -qmax, qmax) : 0;
}

SQ_END_NAMESPACE

#endif  // SPARQ_MAMBA_HADAMARD_MATH_H
