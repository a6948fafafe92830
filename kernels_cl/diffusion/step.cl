#pragma OPENCL FP_CONTRACT OFF
// step.cl — one fused diffusion sampler step (specs/diffusion_sampling.md §2), element-wise over
// n = B·S latent elements; element i is sample b = i / S, within-sample index j = i % S.
// Macros: SQ_SAMPLER (step_math.h: DDIM, EULER, DPM, FLOW, SCM, LCM).
//
// Defined arithmetic order, per element (every value fp32, each op rounded once):
//   1. m = widen(model[i]) (f32/f16/bf16, exact); CFG: u = widen(model[i]),
//      c = widen(model[n + i]), m = fma(g_b, c - u, u); guidance rescale (flag RESCALE):
//      m = rho[b] · m (rho from guide.cl). Dynamic thresholding (flag THRESH): thr[b] from
//      guide.cl is the sample's threshold (step_math.h sq_x0_post).
//   2. z (only when the step draws noise): external noise[i], else sq_randn(seed_b, j, step, tag)
//      (common/philox.h; tag STEP_NOISE, or CHURN for Euler churn).
//   3. (y, x0) = sq_step_<sampler>(coef_b, x[i], m, [m1 = hist[i]], z) (step_math.h).
//   4. stores: y -> y_out[i] (may alias x), x0 -> x0_out[i] and/or hist[i] (DPM history),
//      model_in_next[i] = RNE-narrow(flag SCALE_NEXT ? c_in_next · y : y).
//      x0_only (the dynamic-threshold pre-pass): only x0_out[i] = the x0 before clip/threshold.
// coef_b: the broadcast argument, or word block b of `coefs` (16 words per sample; word 11 is
// the sample's step index, the Philox step word).
// No reduction; launch geometry cannot change a value.
#include "common/convert.h"
#include "common/philox.h"
#include "diffusion/step_math.h"

typedef __global const uchar* gbytes;

static inline float load_any(gbytes base, long i, int dt) {
  if (dt == 0) return ((__global const float*)base)[i];
  const ushort h = ((__global const ushort*)base)[i];
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

static inline void store_any(__global uchar* base, long i, int dt, float v) {
  if (dt == 0)
    ((__global float*)base)[i] = v;
  else
    ((__global ushort*)base)[i] = dt == 1 ? sq_f32_to_f16_rne(v) : sq_f32_to_bf16_rne(v);
}

static inline SqStepCoef coef_of(uint16 bc, __global const uint* coefs, long b, int per_sample) {
  uint w[SQ_STEP_COEF_WORDS];
  if (per_sample) {
    for (int t = 0; t < SQ_STEP_COEF_WORDS; ++t) w[t] = coefs[b * 16 + t];
  } else {
    w[0] = bc.s0;
    w[1] = bc.s1;
    w[2] = bc.s2;
    w[3] = bc.s3;
    w[4] = bc.s4;
    w[5] = bc.s5;
    w[6] = bc.s6;
    w[7] = bc.s7;
    w[8] = bc.s8;
    w[9] = bc.s9;
    w[10] = bc.sa;
    w[11] = bc.sb;
    w[12] = bc.sc;
    w[13] = bc.sd;
  }
  SqStepCoef k;
  for (int t = 0; t < 8; ++t) k.c[t] = as_float(w[t]);
  k.guidance = as_float(w[8]);
  k.c_in_next = as_float(w[9]);
  k.flags = w[10];
  k.step = w[11];
  k.phi = as_float(w[12]);
  k.keep = as_float(w[13]);
  k.thr = 1.0f;
  return k;
}

__kernel void diffusion_step(__global float* y_out, long y_off, __global const float* x_in,
                             long x_off, gbytes model, long m_off, int m_dt, int cfg,
                             __global float* hist, long h_off, int use_hist, __global float* x0_out,
                             long x0_off, int want_x0, __global uchar* next, long nx_off,
                             int next_dt, int want_next, __global const float* noise, long nz_off,
                             int ext_noise, __global const uint* seeds, long sd_off, uint16 bc,
                             __global const uint* coefs, int per_sample, __global const float* rho,
                             __global const float* thr, int x0_only, long s, long n) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const long b = i / s, j = i - b * s;
  SqStepCoef k = coef_of(bc, coefs, b, per_sample);
  if ((k.flags & SQ_DF_THRESH) && !x0_only) k.thr = thr[b];
  float m = load_any(model, m_off + i, m_dt);
  if (cfg) m = sq_cfg(m, load_any(model, m_off + n + i, m_dt), k.guidance);
  if (k.flags & SQ_DF_RESCALE) m = rho[b] * m;
  float z = 0.0f;
  if (sq_step_draws_noise(k.flags)) {
    if (ext_noise)
      z = noise[nz_off + i];
    else
      z = sq_randn(seeds[sd_off + 2 * b], seeds[sd_off + 2 * b + 1], (ulong)j, k.step,
                   sq_step_noise_tag(k.flags));
  }
  const float x = x_in[x_off + i];
#if SQ_SAMPLER == SQ_SAMPLER_DDIM
  const SqStepOut o = sq_step_ddim(k, x, m, z);
#elif SQ_SAMPLER == SQ_SAMPLER_EULER
  const SqStepOut o = sq_step_euler(k, x, m, z);
#elif SQ_SAMPLER == SQ_SAMPLER_DPM
  const float m1 = (k.flags & SQ_DF_SECOND_ORDER) ? hist[h_off + i] : 0.0f;
  const SqStepOut o = sq_step_dpm(k, x, m, m1, z);
#elif SQ_SAMPLER == SQ_SAMPLER_FLOW
  const SqStepOut o = sq_step_flow(k, x, m, z);
#elif SQ_SAMPLER == SQ_SAMPLER_SCM
  const SqStepOut o = sq_step_scm(k, x, m, z);
#else
  const SqStepOut o = sq_step_lcm(k, x, m, z);
#endif
  if (x0_only) {
    x0_out[x0_off + i] = o.pre;
    return;
  }
  y_out[y_off + i] = o.y;
  if (use_hist) hist[h_off + i] = o.x0;
  if (want_x0) x0_out[x0_off + i] = o.x0;
  if (want_next)
    store_any(next, nx_off + i, next_dt, (k.flags & SQ_DF_SCALE_NEXT) ? k.c_in_next * o.y : o.y);
}
