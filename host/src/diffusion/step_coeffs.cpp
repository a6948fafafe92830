// step_coeffs: the per-step scalars of every sampler (specs/diffusion_sampling.md §2, §6.1),
// computed from the schedule in double and rounded once to float. The slot meaning of c[] is the
// one kernels_cl/diffusion/step_math.h reads.
#include <cmath>

#include "diffusion/step_math.h"
#include "diffusion_common.h"
#include "sparq/diffusion.h"

namespace sparq::diffusion {

namespace {

constexpr const char* kOp = "step_coeffs";

float f(double v) {
  return static_cast<float>(v);
}

void ddim(const Schedule& s, int i, float eta, StepCoeffs& k) {
  const auto& c = s.config;
  const int T = c.num_train_timesteps;
  const int t = static_cast<int>(s.timesteps[static_cast<std::size_t>(i)]);
  const int prev = t - T / s.num_steps;  // diffusers' rule, also for linspace / trailing
  const double a = s.alphas_cumprod[static_cast<std::size_t>(t)];
  const double ap = prev >= 0 ? s.alphas_cumprod[static_cast<std::size_t>(prev)]
                              : (c.set_alpha_to_one ? 1.0 : s.alphas_cumprod[0]);
  const double bt = 1 - a;
  const double var = ((1 - ap) / bt) * (1 - a / ap);
  const double sd = eta * std::sqrt(var);
  const double from_x0[2] = {1 / std::sqrt(bt), -std::sqrt(a) / std::sqrt(bt)};
  switch (c.prediction) {
    case Prediction::Epsilon:
    case Prediction::Flow:  // unreachable: make_schedule refuses flow for DDIM
      k.c[0] = f(1 / std::sqrt(a));
      k.c[1] = f(-std::sqrt(bt) / std::sqrt(a));
      k.flags |= SQ_DF_EPS_IS_M;
      break;
    case Prediction::VPrediction:
      k.c[0] = f(std::sqrt(a));
      k.c[1] = f(-std::sqrt(bt));
      k.c[2] = f(std::sqrt(a));
      k.c[3] = f(std::sqrt(bt));
      break;
    case Prediction::Sample:
      k.flags |= SQ_DF_X0_IS_M | SQ_DF_EPS_FROM_X0;
      k.c[2] = f(from_x0[0]);
      k.c[3] = f(from_x0[1]);
      break;
  }
  if ((c.clip_sample || c.thresholding) && c.use_clipped_model_output) {
    k.flags = (k.flags & ~SQ_DF_EPS_IS_M) | SQ_DF_EPS_FROM_X0;
    k.c[2] = f(from_x0[0]);
    k.c[3] = f(from_x0[1]);
  }
  k.c[4] = f(std::sqrt(ap));
  k.c[5] = f(std::sqrt(1 - ap - sd * sd));
  if (sd > 0) {
    k.flags |= SQ_DF_NOISE;
    k.c[6] = f(sd);
  }
}

// Euler / Euler ancestral: x0 of v / sample prediction at sigma, update between x and x0.
void euler(const Schedule& s, int i, bool ancestral, StepCoeffs& k) {
  const auto& c = s.config;
  const double sigma = s.sigmas[static_cast<std::size_t>(i)];
  const double sn = s.sigmas[static_cast<std::size_t>(i) + 1];
  double sh = sigma, target = sn;
  if (ancestral) {
    const double up = std::sqrt(sn * sn * (sigma * sigma - sn * sn) / (sigma * sigma));
    target = std::sqrt(sn * sn - up * up);  // sigma_down
    if (up > 0) {
      k.flags |= SQ_DF_NOISE;
      k.c[6] = f(up);
    }
  } else {
    const double gamma = (c.s_tmin <= sigma && sigma <= c.s_tmax)
                             ? std::min(c.s_churn / s.num_steps, std::sqrt(2.0) - 1)
                             : 0.0;
    sh = sigma * (gamma + 1);
    if (gamma > 0) {
      k.flags |= SQ_DF_CHURN;
      k.c[6] = f(c.s_noise * std::sqrt(sh * sh - sigma * sigma));
    }
  }
  const bool x0_post = c.clip_sample || c.thresholding;
  if (c.prediction == Prediction::Epsilon && !x0_post) {
    k.flags |= SQ_DF_DIRECT;
    k.c[0] = f(target - sh);
    k.c[1] = f(-sh);
  } else {
    if (c.prediction == Prediction::Sample) {
      k.flags |= SQ_DF_X0_IS_M;
    } else if (c.prediction == Prediction::Epsilon) {  // x0 = fma(-sh, m, 1·x): the direct x0
      k.c[2] = 1.0f;
      k.c[3] = f(-sh);
    } else {
      k.c[2] = f(1 / (sigma * sigma + 1));
      k.c[3] = f(-sigma / std::sqrt(sigma * sigma + 1));
    }
    k.c[4] = f(target / sh);
    k.c[5] = f(1 - target / sh);
  }
  k.flags |= SQ_DF_SCALE_NEXT;
  k.c_in_next = f(1 / std::sqrt(sn * sn + 1));
}

void dpm(const Schedule& s, int i, bool sde, StepCoeffs& k) {
  const auto& c = s.config;
  const bool flow = c.prediction == Prediction::Flow;
  auto alpha = [&](double sg) { return flow ? 1 - sg : 1 / std::sqrt(sg * sg + 1); };
  auto svp = [&](double sg) { return flow ? sg : sg / std::sqrt(sg * sg + 1); };
  auto lambda = [&](double sg) { return flow ? std::log(1 - sg) - std::log(sg) : -std::log(sg); };
  const double s0 = s.sigmas[static_cast<std::size_t>(i)];
  const double tn = s.sigmas[static_cast<std::size_t>(i) + 1];
  if (c.prediction == Prediction::VPrediction) {
    k.c[0] = f(alpha(s0));
    k.c[1] = f(-svp(s0));
  } else {
    k.c[0] = f(flow ? 1.0 : 1 / alpha(s0));
    k.c[1] = f(flow ? -s0 : -svp(s0) / alpha(s0));
  }
  if (tn == 0) {  // h = +inf: the update is exactly x0 (never evaluate inf·0)
    k.flags |= SQ_DF_COPY_X0;
    return;
  }
  const int N = s.num_steps;
  const bool lower_final = i == N - 1 && (c.euler_at_final || (c.lower_order_final && N < 15) ||
                                          c.final_sigmas == FinalSigmas::Zero);
  const double h = lambda(tn) - lambda(s0);
  const double A = sde ? svp(tn) / svp(s0) * std::exp(-h) : svp(tn) / svp(s0);
  const double Bc = sde ? -alpha(tn) * std::expm1(-2 * h) : -alpha(tn) * std::expm1(-h);
  k.c[2] = f(A);
  if (i == 0 || lower_final) {
    k.c[3] = f(Bc);
  } else {
    const double s1 = s.sigmas[static_cast<std::size_t>(i) - 1];
    const double r0 = (lambda(s0) - lambda(s1)) / h;
    const double E = 0.5 * Bc / r0;
    k.flags |= SQ_DF_SECOND_ORDER;
    k.c[3] = f(Bc + E);
    k.c[4] = f(-E);
  }
  if (sde) {
    k.flags |= SQ_DF_NOISE;
    k.c[5] = f(svp(tn) * std::sqrt(-std::expm1(-2 * h)));
  }
}

void flow_euler(const Schedule& s, int i, StepCoeffs& k) {
  const double sg = s.sigmas[static_cast<std::size_t>(i)];
  const double sn = s.sigmas[static_cast<std::size_t>(i) + 1];
  k.c[0] = f(sn - sg);
  k.c[1] = f(-sg);
  if (s.config.stochastic_sampling) {
    if (sn > 0) {
      k.flags |= SQ_DF_NOISE;
      k.c[2] = f(1 - sn);
      k.c[3] = f(sn);
    } else {
      k.flags |= SQ_DF_COPY_X0;
    }
  } else if (s.config.clip_sample || s.config.thresholding) {
    // y from the clipped x0: x + (sn - s)·(x - x0)/s = (sn/s)·x + (1 - sn/s)·x0.
    if (sn > 0) {
      k.flags |= SQ_DF_X0_FORM;
      k.c[4] = f(sn / sg);
      k.c[5] = f(1 - sn / sg);
    } else {
      k.flags |= SQ_DF_COPY_X0;
    }
  }
}

// LCM (scheduling_lcm.py): x0 as DDIM, boundary-condition scalings at the current timestep,
// re-noise to the next timestep of the table (none at the last step).
void lcm(const Schedule& s, int i, StepCoeffs& k) {
  const auto& c = s.config;
  const int N = s.num_steps;
  const auto t = static_cast<std::size_t>(s.timesteps[static_cast<std::size_t>(i)]);
  const double a = s.alphas_cumprod[t], bt = 1 - a;
  switch (c.prediction) {
    case Prediction::Epsilon:
    case Prediction::Flow:  // unreachable: make_schedule refuses flow for LCM
      k.c[0] = f(1 / std::sqrt(a));
      k.c[1] = f(-std::sqrt(bt) / std::sqrt(a));
      break;
    case Prediction::VPrediction:
      k.c[0] = f(std::sqrt(a));
      k.c[1] = f(-std::sqrt(bt));
      break;
    case Prediction::Sample:
      k.flags |= SQ_DF_X0_IS_M;
      break;
  }
  const double st = static_cast<double>(t) * c.timestep_scaling, sd2 = c.sigma_data * c.sigma_data;
  k.c[2] = f(sd2 / (st * st + sd2));
  k.c[3] = f(st / std::sqrt(st * st + sd2));
  if (i + 1 < N) {
    const auto prev = static_cast<std::size_t>(s.timesteps[static_cast<std::size_t>(i) + 1]);
    const double ap = s.alphas_cumprod[prev];
    k.flags |= SQ_DF_NOISE;
    k.c[4] = f(std::sqrt(ap));
    k.c[5] = f(std::sqrt(1 - ap));
  }
}

void scm(const Schedule& s, int i, StepCoeffs& k) {
  const double sd = s.config.sigma_data;
  const double a = s.sigmas[static_cast<std::size_t>(i)];
  const double t = s.sigmas[static_cast<std::size_t>(i) + 1];
  const double tau = detail_diffusion::trigflow_tau(a);
  const double ns = detail_diffusion::trigflow_norm(a);
  k.c[0] = f(std::cos(a) - std::sin(a) * (1 - 2 * tau));
  k.c[1] = f(-std::sin(a) * sd * (1 - 2 * tau + 2 * tau * tau) / ns);
  if (t > 0) {
    k.flags |= SQ_DF_NOISE;
    k.c[2] = f(std::cos(t));
    k.c[3] = f(sd * std::sin(t));
  }
  k.flags |= SQ_DF_SCALE_NEXT;
  k.c_in_next = f(detail_diffusion::trigflow_norm(t) / sd);
}

}  // namespace

bool StepCoeffs::draws_noise() const {
  return sparq::cl_common::sq_step_draws_noise(flags) != 0;
}

StepCoeffs step_coeffs(const Schedule& s, int step, const StepOptions& o) {
  detail_diffusion::check_step(kOp, s, step);
  detail_diffusion::require(kOp, std::isfinite(o.eta) && o.eta >= 0 && o.eta <= 1,
                            "eta must be in [0, 1], got {}", o.eta);
  detail_diffusion::require(kOp, std::isfinite(o.guidance_scale),
                            "guidance_scale must be finite, got {}", o.guidance_scale);
  detail_diffusion::require(kOp, o.eta == 0 || s.sampler == Sampler::DDIM,
                            "eta applies to DDIM only");
  detail_diffusion::require(
      kOp, std::isfinite(o.guidance_rescale) && o.guidance_rescale >= 0 && o.guidance_rescale <= 1,
      "guidance_rescale must be in [0, 1], got {}", o.guidance_rescale);
  detail_diffusion::require(kOp, o.guidance_rescale == 0 || o.cfg,
                            "guidance_rescale needs cfg (the cond output's std)");
  StepCoeffs k;
  k.sampler = s.sampler;
  k.step = step;
  k.cfg = o.cfg;
  k.guidance = o.guidance_scale;
  switch (s.sampler) {
    case Sampler::DDIM:
      ddim(s, step, o.eta, k);
      break;
    case Sampler::Euler:
    case Sampler::EulerAncestral:
      euler(s, step, s.sampler == Sampler::EulerAncestral, k);
      break;
    case Sampler::DPMpp2M:
    case Sampler::DPMpp2MSDE:
      dpm(s, step, s.sampler == Sampler::DPMpp2MSDE, k);
      break;
    case Sampler::FlowEuler:
      flow_euler(s, step, k);
      break;
    case Sampler::SCM:
      scm(s, step, k);
      break;
    case Sampler::LCM:
      lcm(s, step, k);
      break;
  }
  // x0 post-processing (§2.8), every sampler; thresholding takes precedence as in diffusers.
  const auto& c = s.config;
  if (c.thresholding) {
    k.flags |= SQ_DF_THRESH;
    k.threshold_ratio = f(c.dynamic_thresholding_ratio);
    k.sample_max_value = f(c.sample_max_value);
  } else if (c.clip_sample) {
    k.flags |= SQ_DF_CLIP;
    k.c[7] = f(c.clip_sample_range);
  }
  if (o.guidance_rescale > 0) {
    k.flags |= SQ_DF_RESCALE;
    k.guidance_rescale = o.guidance_rescale;
  }
  return k;
}

}  // namespace sparq::diffusion
