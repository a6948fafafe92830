// guide_math.h — the per-sample reductions of guidance rescale and dynamic thresholding
// (specs/diffusion_sampling.md §2.7, §2.8, §6.4), shared by kernels_cl/diffusion/guide.cl and
// fallback_cpu/diffusion/guide.cpp.
//
// Guidance rescale statistics (§6.4 tree). Per sample of S elements, chunk q covers elements
// [1024·q, 1024·q + 1024). Lane t (0..255) of a chunk sums its elements e = 1024·q + t + 256·r,
// r = 0..3, e < S, in that order from +0, four sums at once:
//   Sc = Sc + c,  Sc2 = fma(c, c, Sc2),  Sm = Sm + m,  Sm2 = fma(m, m, Sm2)
// with u, c the widened uncond / cond outputs and m = fma(g, c - u, u) (the step's CFG).
// Then p[t] = p[t] + p[t + w] for w = 128, 64, ..., 1 gives the chunk's four partials. The
// chunk partials, padded with +0 chunks to P = the next power of two >= ceil(S / 1024), are
// reduced by the same halving tree (w = P/2 ... 1) in the finalize kernel.
//
// Dynamic threshold quantile: the order statistics of the bit patterns of |x0| (monotone for
// non-negative floats; NaN patterns sort above +inf), ranks lo = floor(p·(S−1)) and
// hi = ceil(p·(S−1)) (host, double), found exactly by a 3-digit radix select (11, 11, 9 bits of
// the 31-bit pattern) with integer counts, so any grid gives the same values.
#ifndef SPARQ_DIFFUSION_GUIDE_MATH_H
#define SPARQ_DIFFUSION_GUIDE_MATH_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

#define SQ_RS_CHUNK 1024
#define SQ_RS_LANES 256
#define SQ_TH_BINS 2048

// Guidance rescale factor of one sample from its reduced sums (§2.7):
// var = max(S2 − (S1·S1)·rn, 0)·rn1 (rn = RN(1/S), rn1 = RN(1/(S−1)), host floats), sd = sqrt(var),
// rho = fma(phi, sd_c / sd_m, keep) with keep = RN(1 − phi).
SQ_FN float sq_rescale_var(float s1, float s2, float rn, float rn1) {
  return sq_mx(s2 - (s1 * s1) * rn, 0.0f) * rn1;
}
SQ_FN float sq_rescale_rho(float s1c, float s2c, float s1m, float s2m, float rn, float rn1,
                           float phi, float keep) {
  const float sd_c = sq_sqrt(sq_rescale_var(s1c, s2c, rn, rn1));
  const float sd_m = sq_sqrt(sq_rescale_var(s1m, s2m, rn, rn1));
  return sq_fma(phi, sd_c / sd_m, keep);
}

// Radix digit d (0, 1, 2) of a 31-bit |x| pattern, and the bits above it.
SQ_FN uint sq_th_digit(uint bits, int d) {
  return d == 0 ? (bits >> 20) : d == 1 ? ((bits >> 9) & 0x7FFu) : (bits & 0x1FFu);
}
SQ_FN uint sq_th_shift(int d) {
  return d == 0 ? 20u : d == 1 ? 9u : 0u;
}
SQ_FN uint sq_th_above(uint bits, int d) {
  return d == 0 ? 0u : (bits >> (d == 1 ? 20u : 9u));
}

// The threshold from the two order statistics: s = fma(frac, hi − lo, lo), clamped to
// [1, sample_max] (clamp passes NaN through).
SQ_FN float sq_th_scale(float lo, float hi, float frac, float smax) {
  return sq_clamp(sq_fma(frac, hi - lo, lo), 1.0f, smax);
}

SQ_END_NAMESPACE

#endif  // SPARQ_DIFFUSION_GUIDE_MATH_H
