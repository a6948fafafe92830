// Fallback twin of kernels_cl/diffusion/step.cl: the same defined order, element by element
// (load/CFG, noise, the shared sq_step_<sampler> of step_math.h, stores).
#include <cstring>

#include "common/convert.h"
#include "common/philox.h"
#include "diffusion_fallback.h"

namespace sparq::fallback::diffusion {

namespace {

using namespace sparq::cl_common;

float load_any(const std::byte* base, std::int64_t i, int dt) {
  if (dt == 0) {
    float v;
    std::memcpy(&v, base + i * 4, 4);
    return v;
  }
  std::uint16_t h;
  std::memcpy(&h, base + i * 2, 2);
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

void store_any(std::byte* base, std::int64_t i, int dt, float v) {
  if (dt == 0) {
    std::memcpy(base + i * 4, &v, 4);
    return;
  }
  const std::uint16_t h = dt == 1 ? sq_f32_to_f16_rne(v) : sq_f32_to_bf16_rne(v);
  std::memcpy(base + i * 2, &h, 2);
}

void element(const StepProblem& p, std::int64_t i) {
  const std::int64_t b = i / p.s, j = i - b * p.s;
  SqStepCoef k = p.coefs[p.per_sample ? b : 0];
  if ((k.flags & SQ_DF_THRESH) && !p.x0_only) k.thr = p.thr[b];
  float m = load_any(p.model, i, p.model_dtype);
  if (p.cfg) m = sq_cfg(m, load_any(p.model, p.n + i, p.model_dtype), k.guidance);
  if (k.flags & SQ_DF_RESCALE) m = p.rho[b] * m;
  float z = 0.0f;
  if (sq_step_draws_noise(k.flags)) {
    if (p.noise)
      z = p.noise[i];
    else
      z = sq_randn(p.seeds[2 * b], p.seeds[2 * b + 1], static_cast<ulong>(j), k.step,
                   sq_step_noise_tag(k.flags));
  }
  const float x = p.x[i];
  SqStepOut o;
  switch (p.sampler) {
    case SQ_SAMPLER_DDIM:
      o = sq_step_ddim(k, x, m, z);
      break;
    case SQ_SAMPLER_EULER:
      o = sq_step_euler(k, x, m, z);
      break;
    case SQ_SAMPLER_DPM:
      o = sq_step_dpm(k, x, m, (k.flags & SQ_DF_SECOND_ORDER) ? p.history[i] : 0.0f, z);
      break;
    case SQ_SAMPLER_FLOW:
      o = sq_step_flow(k, x, m, z);
      break;
    case SQ_SAMPLER_SCM:
      o = sq_step_scm(k, x, m, z);
      break;
    default:
      o = sq_step_lcm(k, x, m, z);
      break;
  }
  if (p.x0_only) {
    p.x0_out[i] = o.pre;
    return;
  }
  p.y[i] = o.y;
  if (p.history) p.history[i] = o.x0;
  if (p.x0_out) p.x0_out[i] = o.x0;
  if (p.next)
    store_any(p.next, i, p.next_dtype, (k.flags & SQ_DF_SCALE_NEXT) ? k.c_in_next * o.y : o.y);
}

}  // namespace

void step(const StepProblem& p) {
  parallel_chunks(p.n, 1 << 16, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) element(p, i);
  });
}

}  // namespace sparq::fallback::diffusion
