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
//
// Launch (speed only, diffusion/quad_launch.h): one work-item owns the
// within-sample elements j = 4q .. min(4q + 4, s) - 1, so the four values of one Philox call
// (common/philox.h sq_randn4) are drawn once, and no 64-bit division is needed. SQ_VEC4 (host:
// s % 4 == 0 and every element offset % 4 == 0) moves whole quads with 16-byte (8-byte for 16-bit
// data) loads and stores; the scalar path moves the same values one by one.
#include "common/convert.h"
#include "common/philox.h"
#include "diffusion/quad_launch.h"
#include "diffusion/step_math.h"

typedef __global const uchar* gbytes;

#ifndef SQ_VEC4
#define SQ_VEC4 0
#endif

// Quad loads/stores: nl = number of valid lanes (4 except a sample's last, partial quad, which
// only the scalar path has). Lanes >= nl are left untouched / not stored.
static inline void load4_f32(__global const float* p, int nl, float* v) {
#if SQ_VEC4
  const float4 t = *(__global const float4*)p;
  v[0] = t.s0;
  v[1] = t.s1;
  v[2] = t.s2;
  v[3] = t.s3;
#else
#pragma unroll
  for (int l = 0; l < 4; ++l)
    if (l < nl) v[l] = p[l];
#endif
}

static inline void store4_f32(__global float* p, int nl, const float* v) {
#if SQ_VEC4
  *(__global float4*)p = (float4)(v[0], v[1], v[2], v[3]);
#else
#pragma unroll
  for (int l = 0; l < 4; ++l)
    if (l < nl) p[l] = v[l];
#endif
}

static inline float widen16(ushort h, int dt) {
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

static inline ushort narrow16(float v, int dt) {
  return dt == 1 ? sq_f32_to_f16_rne(v) : sq_f32_to_bf16_rne(v);
}

// Elements i .. i+nl-1 of a tensor of dtype dt (0 f32, 1 f16, 2 bf16), widened exactly.
static inline void load4_any(gbytes base, long i, int dt, int nl, float* v) {
  if (dt == 0) {
    load4_f32((__global const float*)base + i, nl, v);
    return;
  }
  __global const ushort* p = (__global const ushort*)base + i;
#if SQ_VEC4
  const ushort4 t = *(__global const ushort4*)p;
  v[0] = widen16(t.s0, dt);
  v[1] = widen16(t.s1, dt);
  v[2] = widen16(t.s2, dt);
  v[3] = widen16(t.s3, dt);
#else
#pragma unroll
  for (int l = 0; l < 4; ++l)
    if (l < nl) v[l] = widen16(p[l], dt);
#endif
}

static inline void store4_any(__global uchar* base, long i, int dt, int nl, const float* v) {
  if (dt == 0) {
    store4_f32((__global float*)base + i, nl, v);
    return;
  }
  __global ushort* p = (__global ushort*)base + i;
#if SQ_VEC4
  *(__global ushort4*)p =
      (ushort4)(narrow16(v[0], dt), narrow16(v[1], dt), narrow16(v[2], dt), narrow16(v[3], dt));
#else
#pragma unroll
  for (int l = 0; l < 4; ++l)
    if (l < nl) p[l] = narrow16(v[l], dt);
#endif
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
                             __global const float* thr, int x0_only, long s, long n, uint gps) {
  long b, q0;
  sq_quad_base(gps, &b, &q0);
  SqStepCoef k = coef_of(bc, coefs, b, per_sample);
  if ((k.flags & SQ_DF_THRESH) && !x0_only) k.thr = thr[b];
  for (int u = 0; u < SQ_QPT; ++u) {
    const long q = q0 + u * (long)get_local_size(0);
    const int nl = sq_quad_lanes(s, q);
    if (nl == 0) return;
    const long i = b * s + 4 * q;
    float m[4] = {0.0f, 0.0f, 0.0f, 0.0f}, c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float x[4] = {0.0f, 0.0f, 0.0f, 0.0f}, z[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    load4_any(model, m_off + i, m_dt, nl, m);
    if (cfg) load4_any(model, m_off + n + i, m_dt, nl, c);
    load4_f32(x_in + x_off + i, nl, x);
    if (sq_step_draws_noise(k.flags)) {
      if (ext_noise)
        load4_f32(noise + nz_off + i, nl, z);
      else
        sq_randn4(seeds[sd_off + 2 * b], seeds[sd_off + 2 * b + 1], (ulong)q, k.step,
                  sq_step_noise_tag(k.flags), z);
    }
#if SQ_SAMPLER == SQ_SAMPLER_DPM
    float m1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (k.flags & SQ_DF_SECOND_ORDER) load4_f32(hist + h_off + i, nl, m1);
#endif
    const float r = (k.flags & SQ_DF_RESCALE) ? rho[b] : 1.0f;
    float y[4], x0[4], pre[4], nx[4];
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      float ml = m[l];
      if (cfg) ml = sq_cfg(ml, c[l], k.guidance);
      if (k.flags & SQ_DF_RESCALE) ml = r * ml;
#if SQ_SAMPLER == SQ_SAMPLER_DDIM
      const SqStepOut o = sq_step_ddim(k, x[l], ml, z[l]);
#elif SQ_SAMPLER == SQ_SAMPLER_EULER
      const SqStepOut o = sq_step_euler(k, x[l], ml, z[l]);
#elif SQ_SAMPLER == SQ_SAMPLER_DPM
      const SqStepOut o = sq_step_dpm(k, x[l], ml, m1[l], z[l]);
#elif SQ_SAMPLER == SQ_SAMPLER_FLOW
      const SqStepOut o = sq_step_flow(k, x[l], ml, z[l]);
#elif SQ_SAMPLER == SQ_SAMPLER_SCM
      const SqStepOut o = sq_step_scm(k, x[l], ml, z[l]);
#else
      const SqStepOut o = sq_step_lcm(k, x[l], ml, z[l]);
#endif
      y[l] = o.y;
      x0[l] = o.x0;
      pre[l] = o.pre;
      nx[l] = (k.flags & SQ_DF_SCALE_NEXT) ? k.c_in_next * o.y : o.y;
    }
    if (x0_only) {
      store4_f32(x0_out + x0_off + i, nl, pre);
      continue;
    }
    store4_f32(y_out + y_off + i, nl, y);
    if (use_hist) store4_f32(hist + h_off + i, nl, x0);
    if (want_x0) store4_f32(x0_out + x0_off + i, nl, x0);
    if (want_next) store4_any(next, nx_off + i, next_dt, nl, nx);
  }
}
