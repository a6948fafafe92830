// scan_math.h — the per-element arithmetic of the Mamba-1 selective scan (specs/mamba_scan.md
// §2.3), compiled by kernels_cl/mamba/selective_scan.cl and by its fallback twin, so both run
// the same operations in the same order. Every + - * / is one rounded fp32 operation; nothing is
// fused unless written sq_fma.
#ifndef SPARQ_MAMBA_SCAN_MATH_H
#define SPARQ_MAMBA_SCAN_MATH_H

#include "common/exact_math.h"

SQ_BEGIN_NAMESPACE

// dt of one (b, d, t): x = delta (+ bias, only when given: adding +0 would turn -0 into +0),
// then softplus (threshold 20, exact_math.h) when asked.
SQ_FN float sq_scan_dt(float delta, float bias, int has_bias, int softplus) {
  float x = delta;
  if (has_bias) x = x + bias;
  return softplus ? sq_softplus(x) : x;
}

// One state step: h = fma(exp(dt * a), h, Bv * du) with dt*a and Bv*du rounded first.
SQ_FN float sq_scan_step(float h, float dt, float a, float bv, float du) {
  const float da = sq_exp(dt * a);
  return sq_fma(da, h, bv * du);
}

// The start of the output chain: D * u when D is given, else +0 (so fma(h, C, +0) maps -0 to +0
// exactly as the spec says).
SQ_FN float sq_scan_acc0(float dskip, int has_d, float u) {
  return has_d ? dskip * u : 0.0f;
}

// The gate: y * silu(z) when z is given.
SQ_FN float sq_scan_gate(float y, float z, int has_z) {
  return has_z ? y * sq_silu(z) : y;
}

SQ_END_NAMESPACE

#endif  // SPARQ_MAMBA_SCAN_MATH_H
