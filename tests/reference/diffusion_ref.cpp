// Float64 references of the diffusers step formulas; see diffusion_ref.h.
#include "reference/diffusion_ref.h"

#include <algorithm>
#include <cmath>

namespace sparq::test::ref {

using diffusion::Prediction;
using diffusion::Sampler;

namespace {

// The x0 post-processing of spec §2.8 in double: dynamic threshold thr (when the config
// thresholds; thr is the caller's per-sample quantile), else clip_sample.
double post(const diffusion::ScheduleConfig& c, double x0, double thr) {
  if (c.thresholding) return std::clamp(x0, -thr, thr) / thr;
  if (c.clip_sample) return std::clamp(x0, -c.clip_sample_range, c.clip_sample_range);
  return x0;
}

double ddim(const diffusion::Schedule& s, int i, double eta, double x, double m, double z,
            double* x0o, double thr) {
  const auto& c = s.config;
  const int t = static_cast<int>(s.timesteps[i]);
  const int prev = t - c.num_train_timesteps / s.num_steps;
  const double a = s.alphas_cumprod[t];
  const double ap =
      prev >= 0 ? s.alphas_cumprod[prev] : (c.set_alpha_to_one ? 1.0 : s.alphas_cumprod[0]);
  const double bt = 1 - a;
  double x0, eps;
  if (c.prediction == Prediction::Epsilon) {
    x0 = (x - std::sqrt(bt) * m) / std::sqrt(a);
    eps = m;
  } else if (c.prediction == Prediction::Sample) {
    x0 = m;
    eps = (x - std::sqrt(a) * x0) / std::sqrt(bt);
  } else {
    x0 = std::sqrt(a) * x - std::sqrt(bt) * m;
    eps = std::sqrt(a) * m + std::sqrt(bt) * x;
  }
  x0 = post(c, x0, thr);
  if ((c.clip_sample || c.thresholding) && c.use_clipped_model_output)
    eps = (x - std::sqrt(a) * x0) / std::sqrt(bt);
  const double var = (1 - ap) / bt * (1 - a / ap);
  const double sd = eta * std::sqrt(var);
  *x0o = x0;
  double y = std::sqrt(ap) * x0 + std::sqrt(1 - ap - sd * sd) * eps;
  if (eta > 0) y += sd * z;
  return y;
}

double euler(const diffusion::Schedule& s, int i, bool ancestral, double x, double m, double z,
             double* x0o, double thr) {
  const auto& c = s.config;
  const double sigma = s.sigmas[i], sn = s.sigmas[i + 1];
  double sh = sigma;
  if (!ancestral) {
    const double gamma = (c.s_tmin <= sigma && sigma <= c.s_tmax)
                             ? std::min(c.s_churn / s.num_steps, std::sqrt(2.0) - 1)
                             : 0.0;
    sh = sigma * (gamma + 1);
    if (gamma > 0) x = x + z * c.s_noise * std::sqrt(sh * sh - sigma * sigma);
  }
  double x0;
  if (c.prediction == Prediction::Epsilon)
    x0 = x - (ancestral ? sigma : sh) * m;
  else if (c.prediction == Prediction::Sample)
    x0 = m;
  else
    x0 = m * (-sigma / std::sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
  x0 = post(c, x0, thr);
  *x0o = x0;
  if (!ancestral) return x + (x - x0) / sh * (sn - sh);
  const double up = std::sqrt(sn * sn * (sigma * sigma - sn * sn) / (sigma * sigma));
  const double down = std::sqrt(sn * sn - up * up);
  return x + (x - x0) / sigma * (down - sigma) + z * up;
}

double dpm(const diffusion::Schedule& s, int i, bool sde, double x, double m, double m1, double z,
           double* x0o, double thr) {
  const auto& c = s.config;
  const bool flow = c.prediction == Prediction::Flow;
  auto at = [&](double sg, double* al, double* sv) {
    *al = flow ? 1 - sg : 1 / std::sqrt(sg * sg + 1);
    *sv = flow ? sg : sg * *al;
  };
  double a0, v0, at_, vt;
  at(s.sigmas[i], &a0, &v0);
  at(s.sigmas[i + 1], &at_, &vt);
  double x0 = c.prediction == Prediction::Epsilon ? (x - v0 * m) / a0
              : flow                              ? x - s.sigmas[i] * m
                                                  : a0 * x - v0 * m;
  x0 = post(c, x0, thr);
  *x0o = x0;
  if (s.sigmas[i + 1] == 0) return x0;
  const double lt = std::log(at_) - std::log(vt), l0 = std::log(a0) - std::log(v0);
  const double h = lt - l0;
  const int N = s.num_steps;
  const bool first = i == 0 || i == N - 1;
  double D1 = 0;
  if (!first) {
    double a1, v1;
    at(s.sigmas[i - 1], &a1, &v1);
    const double r0 = (l0 - (std::log(a1) - std::log(v1))) / h;
    D1 = (x0 - m1) / r0;
  }
  if (!sde)
    return vt / v0 * x - at_ * (std::exp(-h) - 1) * x0 - 0.5 * at_ * (std::exp(-h) - 1) * D1;
  return vt / v0 * std::exp(-h) * x + at_ * (1 - std::exp(-2 * h)) * x0 +
         0.5 * at_ * (1 - std::exp(-2 * h)) * D1 + vt * std::sqrt(1 - std::exp(-2 * h)) * z;
}

double scm(const diffusion::Schedule& s, int i, double x, double v, double z, double* x0o,
           double thr) {
  const double sd = s.config.sigma_data;
  const double a = s.sigmas[i], t = s.sigmas[i + 1];
  const double tau = std::sin(a) / (std::cos(a) + std::sin(a));
  const double ns = std::sqrt(tau * tau + (1 - tau) * (1 - tau));
  const double xin = x * ns / sd;
  const double F = sd * ((1 - 2 * tau) * xin + (1 - 2 * tau + 2 * tau * tau) * v) / ns;
  const double x0 = post(s.config, std::cos(a) * x - std::sin(a) * F, thr);
  *x0o = x0;
  return t > 0 ? std::cos(t) * x0 + std::sin(t) * sd * z : x0;
}

// scheduling_lcm.py step, written as diffusers does (denoised = c_out·x0 + c_skip·x).
double lcm(const diffusion::Schedule& s, int i, double x, double m, double z, double* x0o,
           double thr) {
  const auto& c = s.config;
  const int t = static_cast<int>(s.timesteps[i]);
  const double a = s.alphas_cumprod[t], bt = 1 - a;
  double x0 = c.prediction == Prediction::Epsilon  ? (x - std::sqrt(bt) * m) / std::sqrt(a)
              : c.prediction == Prediction::Sample ? m
                                                   : std::sqrt(a) * x - std::sqrt(bt) * m;
  x0 = post(c, x0, thr);
  const double st = t * c.timestep_scaling, sd2 = c.sigma_data * c.sigma_data;
  const double c_skip = sd2 / (st * st + sd2), c_out = st / std::sqrt(st * st + sd2);
  const double d = c_out * x0 + c_skip * x;
  *x0o = d;
  if (i + 1 == s.num_steps) return d;
  const double ap = s.alphas_cumprod[static_cast<int>(s.timesteps[i + 1])];
  return std::sqrt(ap) * d + std::sqrt(1 - ap) * z;
}

}  // namespace

double diffusion_step(const diffusion::Schedule& s, int i, float eta, double x, double m, double m1,
                      double z, double* x0, double thr) {
  switch (s.sampler) {
    case Sampler::DDIM:
      return ddim(s, i, eta, x, m, z, x0, thr);
    case Sampler::Euler:
    case Sampler::EulerAncestral:
      return euler(s, i, s.sampler == Sampler::EulerAncestral, x, m, z, x0, thr);
    case Sampler::DPMpp2M:
    case Sampler::DPMpp2MSDE:
      return dpm(s, i, s.sampler == Sampler::DPMpp2MSDE, x, m, m1, z, x0, thr);
    case Sampler::FlowEuler: {
      const double sg = s.sigmas[i], sn = s.sigmas[i + 1];
      *x0 = post(s.config, x - sg * m, thr);
      if (s.config.stochastic_sampling) return (1 - sn) * *x0 + sn * z;
      if (s.config.clip_sample || s.config.thresholding) return x + (sn - sg) * (x - *x0) / sg;
      return x + (sn - sg) * m;
    }
    case Sampler::SCM:
      return scm(s, i, x, m, z, x0, thr);
    case Sampler::LCM:
      return lcm(s, i, x, m, z, x0, thr);
  }
  return 0;
}

double toy_model(double x, long j, int step) {
  return std::tanh(x) * (0.5 + 0.01 * step) + 0.1 * std::sin(0.001 * static_cast<double>(j));
}

}  // namespace sparq::test::ref
