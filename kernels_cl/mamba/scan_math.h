// scan_math.h — the per-element arithmetic of the Mamba-1 selective scan (specs/mamba_scan.md
// §2.3), compiled by kernels_cl/mamba/selective_scan.cl and by its fallback twin, so both run
// the same operations in the same order. Every + - * / is one rounded fp32 operation; nothing is
// fused unless written sq_fma.
#ifndef SPARQ_MAMBA_SCAN_MATH_H
#define SPARQ_MAMBA_SCAN_MATH_H

#include "common/exact_math.h"

SQ_BEGIN_NAMESPACE

// sq_exp with the same result bits for every input (all 2^32 checked: docs/mamba.md, "Scan
// schedules"; a sampled sweep is the MambaScanFastExp test), written for GPU issue slots: q =
// RN-even(x/ln2) comes from the 1.5*2^23 shifter (y + M rounds to M + q, exact for |y| < 2^22,
// here |y| <= 151) instead of sq_round_rne's integer bit tests and two float<->int conversions,
// and 2^q is applied as 2^(q>>1) * 2^(q - (q>>1)) (any split into two normal powers gives the one
// rounding of p*2^q that sq_scale_pow2_ gives). Special values take sq_exp's branches.
SQ_FN float sq_scan_exp(float x) {
  if (!(x >= -104.0f && x <= 100.0f)) return sq_isnan(x) ? x : (x < 0.0f ? 0.0f : sq_inf_());
  const float shifter = 12582912.0f;             // 1.5 * 2^23
  const float y = x * sq_as_float(0x3FB8AA3Bu);  // 1/ln2, as sq_exp
  const float ym = y + shifter;                  // = shifter + RN-even(y)
  const float qf = ym - shifter;                 // exact
  const int q = (int)(sq_as_uint(ym) - 0x4B400000u);
  float s = sq_fma(-qf, sq_as_float(0x3F317200u), x);
  s = sq_fma(-qf, sq_as_float(0x35BFBE8Eu), s);
  float p = sq_as_float(0x39502BDAu);
  p = sq_fma(p, s, sq_as_float(0x3AB696C9u));
  p = sq_fma(p, s, sq_as_float(0x3C0888A6u));
  p = sq_fma(p, s, sq_as_float(0x3D2AAA7Au));
  p = sq_fma(p, s, sq_as_float(0x3E2AAAABu));
  p = sq_fma(p, s, 0.5f);
  const float s2 = s * s;
  float r = sq_fma(s2, p, s);
  r = 1.0f + r;
  const int k1 = q >> 1;  // arithmetic shift (C++20, OpenCL): floor(q / 2), in [-75, 72]
  return (r * sq_pow2i_(k1)) * sq_pow2i_(q - k1);
}

// SQ_SCAN_FEXP (kernel knob exp=1): the scan's exps (decay, softplus, silu) use sq_scan_exp, in
// softplus and silu written out with sq_softplus's / sq_silu's operations. The fallback never
// defines it: it keeps sq_exp, sq_softplus and sq_silu, the definition.
#if defined(SQ_SCAN_FEXP) && SQ_SCAN_FEXP
#define SQ_SCAN_EXP sq_scan_exp
SQ_FN float sq_scan_softplus_(float x) {
  if (x > 20.0f) return x;
  const float l = sq_log1p(sq_scan_exp(-sq_fabs(x)));
  return x > 0.0f ? x + l : l;
}
#define SQ_SCAN_SOFTPLUS sq_scan_softplus_
#define SQ_SCAN_SILU(z) ((z) / (1.0f + sq_scan_exp(-(z))))
#else
#define SQ_SCAN_EXP sq_exp
#define SQ_SCAN_SOFTPLUS sq_softplus
#define SQ_SCAN_SILU sq_silu
#endif

// dt of one (b, d, t): x = delta (+ bias, only when given: adding +0 would turn -0 into +0),
// then softplus (threshold 20, exact_math.h) when asked.
SQ_FN float sq_scan_dt(float delta, float bias, int has_bias, int softplus) {
  float x = delta;
  if (has_bias) x = x + bias;
  return softplus ? SQ_SCAN_SOFTPLUS(x) : x;
}

// One state step: h = fma(exp(dt * a), h, Bv * du) with dt*a and Bv*du rounded first.
SQ_FN float sq_scan_step(float h, float dt, float a, float bv, float du) {
  const float da = SQ_SCAN_EXP(dt * a);
  return sq_fma(da, h, bv * du);
}

// The start of the output chain: D * u when D is given, else +0 (so fma(h, C, +0) maps -0 to +0
// exactly as the spec says).
SQ_FN float sq_scan_acc0(float dskip, int has_d, float u) {
  return has_d ? dskip * u : 0.0f;
}

// The gate: y * silu(z) when z is given.
SQ_FN float sq_scan_gate(float y, float z, int has_z) {
  return has_z ? y * SQ_SCAN_SILU(z) : y;
}

SQ_END_NAMESPACE

#endif  // SPARQ_MAMBA_SCAN_MATH_H
