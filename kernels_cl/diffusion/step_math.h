// step_math.h — the per-element arithmetic of every fused sampler step
// (specs/diffusion_sampling.md §2), shared by kernels_cl/diffusion/step.cl and
// fallback_cpu/diffusion/step.cpp, so both run the same source (prelude.h).
//
// Each function is one element: x (latent), m (model output after CFG), z (noise, read only when
// a noise flag is set), m1 (DPM history). Coefficients k.c[] are host floats (double, rounded
// once). Written order is evaluation order; `*` is mul, `fma` is fma, nothing is fused implicitly.
// A term that is absent (no noise, no history) is skipped by a flag, never multiplied by 0.
#ifndef SPARQ_DIFFUSION_STEP_MATH_H
#define SPARQ_DIFFUSION_STEP_MATH_H

#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

// Kernel variants (-DSQ_SAMPLER=...).
#define SQ_SAMPLER_DDIM 0
#define SQ_SAMPLER_EULER 1
#define SQ_SAMPLER_DPM 2
#define SQ_SAMPLER_FLOW 3
#define SQ_SAMPLER_SCM 4
#define SQ_SAMPLER_LCM 5

// Flags (StepCoeffs::flags).
#define SQ_DF_NOISE 1u          // the step's noise term is present (tag STEP_NOISE)
#define SQ_DF_CHURN 2u          // Euler churn: noise added to x before the step (tag CHURN)
#define SQ_DF_COPY_X0 4u        // y = x0 (DPM/flow/sCM terminal step)
#define SQ_DF_SECOND_ORDER 8u   // DPM-Solver++ 2M second-order update (reads m1)
#define SQ_DF_CLIP 16u          // clip_sample (any sampler): x0 = clamp(x0, -c7, c7)
#define SQ_DF_X0_IS_M 32u       // sample prediction: x0 = m
#define SQ_DF_EPS_IS_M 64u      // DDIM epsilon prediction: eps = m
#define SQ_DF_EPS_FROM_X0 128u  // DDIM: eps = fma(c3, x0, c2·x) (sample pred, clipped output)
#define SQ_DF_DIRECT 256u       // Euler/flow direct form: y = fma(c0, m, x), x0 = fma(c1, m, x)
#define SQ_DF_SCALE_NEXT 512u   // model_in_next = c_in_next · y (else y)
#define SQ_DF_RESCALE 1024u     // guidance rescale: m = rho_b · m after CFG (§2.7)
#define SQ_DF_THRESH 2048u      // dynamic thresholding: x0 = clamp(x0, -thr, thr) / thr (§2.8)
#define SQ_DF_X0_FORM 4096u     // flow Euler: y = fma(c5, x0, c4·x) (needed once x0 is clipped)

typedef struct {
  float c[8];
  float guidance;
  float c_in_next;
  uint flags;
  uint step;   // the Philox step word of this sample (its step index)
  float phi;   // guidance rescale phi (finalize kernel only)
  float keep;  // RN(1 - phi) (finalize kernel only)
  float thr;   // dynamic threshold s of this sample (set by the executor, not transported)
} SqStepCoef;

// Words of SqStepCoef that travel (broadcast argument or 16-word per-sample block).
#define SQ_STEP_COEF_WORDS 14

typedef struct {
  float y, x0;
  float pre;  // x0 before clip / threshold (the dynamic-threshold quantile's input)
} SqStepOut;

// §2.8, after the x0 prediction of every sampler: static clip to [-c7, c7], or (diffusers:
// thresholding takes precedence, the host never sets both) x0 = clamp(x0, -thr, thr) / thr.
SQ_FN float sq_x0_post(SqStepCoef k, float x0) {
  if (k.flags & SQ_DF_CLIP) x0 = sq_clamp(x0, -k.c[7], k.c[7]);
  if (k.flags & SQ_DF_THRESH) x0 = sq_clamp(x0, -k.thr, k.thr) / k.thr;
  return x0;
}

// The tag of the step's one noise draw.
SQ_FN uint sq_step_noise_tag(uint flags) {
  return (flags & SQ_DF_CHURN) ? 2u : 1u;
}
SQ_FN int sq_step_draws_noise(uint flags) {
  return (flags & (SQ_DF_NOISE | SQ_DF_CHURN)) != 0u;
}

// CFG: m = fma(g, c - u, u).
SQ_FN float sq_cfg(float u, float c, float g) {
  return sq_fma(g, c - u, u);
}

// DDIM (§2.1). c0, c1: x0 = fma(c1, m, c0·x); c2, c3: eps (v: fma(c3, x, c2·m); from x0:
// fma(c3, x0, c2·x)); c4 = sqrt(abar_prev); c5 = sqrt(1 - abar_prev - std²); c6 = std; c7 = clip.
SQ_FN SqStepOut sq_step_ddim(SqStepCoef k, float x, float m, float z) {
  SqStepOut o;
  float x0 = (k.flags & SQ_DF_X0_IS_M) ? m : sq_fma(k.c[1], m, k.c[0] * x);
  o.pre = x0;
  x0 = sq_x0_post(k, x0);
  float eps;
  if (k.flags & SQ_DF_EPS_FROM_X0)
    eps = sq_fma(k.c[3], x0, k.c[2] * x);
  else if (k.flags & SQ_DF_EPS_IS_M)
    eps = m;
  else
    eps = sq_fma(k.c[3], x, k.c[2] * m);
  float y = k.c[4] * x0;
  y = sq_fma(k.c[5], eps, y);
  if (k.flags & SQ_DF_NOISE) y = sq_fma(k.c[6], z, y);
  o.y = y;
  o.x0 = x0;
  return o;
}

// Euler and Euler ancestral (§2.2). Churn first: x = fma(c6, z, x). Direct (epsilon):
// y = fma(c0 = dt, m, x), x0 = fma(c1 = -sigma_hat, m, x). Otherwise x0 = fma(c3, m, c2·x) (or m),
// y = fma(c5, x0, c4·x). Ancestral noise last: y = fma(c6 = sigma_up, z, y).
SQ_FN SqStepOut sq_step_euler(SqStepCoef k, float x, float m, float z) {
  SqStepOut o;
  if (k.flags & SQ_DF_CHURN) x = sq_fma(k.c[6], z, x);
  float y, x0;
  if (k.flags & SQ_DF_DIRECT) {
    y = sq_fma(k.c[0], m, x);
    x0 = sq_fma(k.c[1], m, x);
    o.pre = x0;
  } else {
    x0 = (k.flags & SQ_DF_X0_IS_M) ? m : sq_fma(k.c[3], m, k.c[2] * x);
    o.pre = x0;
    x0 = sq_x0_post(k, x0);
    y = sq_fma(k.c[5], x0, k.c[4] * x);
  }
  if (k.flags & SQ_DF_NOISE) y = sq_fma(k.c[6], z, y);
  o.y = y;
  o.x0 = x0;
  return o;
}

// DPM-Solver++ 2M and 2M SDE (§2.3): x0 = fma(c1, m, c0·x); first order y = fma(c3, x0, c2·x);
// second order y = c2·x, y = fma(c3, x0, y), y = fma(c4, m1, y); SDE y = fma(c5, z, y).
SQ_FN SqStepOut sq_step_dpm(SqStepCoef k, float x, float m, float m1, float z) {
  SqStepOut o;
  o.pre = sq_fma(k.c[1], m, k.c[0] * x);
  const float x0 = sq_x0_post(k, o.pre);
  float y;
  if (k.flags & SQ_DF_COPY_X0) {
    y = x0;
  } else {
    y = k.c[2] * x;
    y = sq_fma(k.c[3], x0, y);
    if (k.flags & SQ_DF_SECOND_ORDER) y = sq_fma(k.c[4], m1, y);
    if (k.flags & SQ_DF_NOISE) y = sq_fma(k.c[5], z, y);
  }
  o.y = y;
  o.x0 = x0;
  return o;
}

// Flow-matching Euler (§2.4): y = fma(c0 = dt, v, x), x0 = fma(c1 = -s, v, x); stochastic:
// y = fma(c3 = s_next, z, c2·x0) with c2 = 1 - s_next (y = x0 at s_next = 0). With a clipped or
// thresholded x0 (X0_FORM): y = fma(c5 = 1 - s_next/s, x0, c4 = s_next/s · x).
SQ_FN SqStepOut sq_step_flow(SqStepCoef k, float x, float m, float z) {
  SqStepOut o;
  o.pre = sq_fma(k.c[1], m, x);
  const float x0 = sq_x0_post(k, o.pre);
  float y;
  if (k.flags & SQ_DF_NOISE)
    y = sq_fma(k.c[3], z, k.c[2] * x0);
  else if (k.flags & SQ_DF_COPY_X0)
    y = x0;
  else if (k.flags & SQ_DF_X0_FORM)
    y = sq_fma(k.c[5], x0, k.c[4] * x);
  else
    y = sq_fma(k.c[0], m, x);
  o.y = y;
  o.x0 = x0;
  return o;
}

// sCM / TrigFlow (§2.5): x0 = fma(c1 = K1, v, c0 = K0 · x); t > 0: y = fma(c3 = N1, z, c2 = N0 ·
// x0).
SQ_FN SqStepOut sq_step_scm(SqStepCoef k, float x, float m, float z) {
  SqStepOut o;
  o.pre = sq_fma(k.c[1], m, k.c[0] * x);
  const float x0 = sq_x0_post(k, o.pre);
  o.y = (k.flags & SQ_DF_NOISE) ? sq_fma(k.c[3], z, k.c[2] * x0) : x0;
  o.x0 = x0;
  return o;
}

// LCM (§2.6): x0 as DDIM (c0, c1; sample: m); clip / threshold; denoised
// d = fma(c2 = c_skip, x, c3 = c_out · x0); not last: y = fma(c5 = sqrt(1 - abar_prev), z,
// c4 = sqrt(abar_prev) · d); last: y = d. The x0 output is d (diffusers' `denoised`).
SQ_FN SqStepOut sq_step_lcm(SqStepCoef k, float x, float m, float z) {
  SqStepOut o;
  o.pre = (k.flags & SQ_DF_X0_IS_M) ? m : sq_fma(k.c[1], m, k.c[0] * x);
  const float x0 = sq_x0_post(k, o.pre);
  const float d = sq_fma(k.c[2], x, k.c[3] * x0);
  o.y = (k.flags & SQ_DF_NOISE) ? sq_fma(k.c[5], z, k.c[4] * d) : d;
  o.x0 = d;
  return o;
}

SQ_END_NAMESPACE

#endif  // SPARQ_DIFFUSION_STEP_MATH_H
