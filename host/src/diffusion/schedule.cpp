// Host schedule tables (specs/diffusion_sampling.md §1): betas, alphas_cumprod, timestep
// spacings, sigmas (with Karras), flow-matching shift, TrigFlow angles. All double, following
// the diffusers scheduler code named in each function; host-only, so libm is fine here.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "diffusion_common.h"
#include "errors.h"
#include "sparq/diffusion.h"

namespace sparq::diffusion {

namespace {

constexpr const char* kOp = "make_schedule";

// numpy round: half to even.
double round_half_even(double x) {
  const double r = std::round(x);
  if (std::fabs(x - std::trunc(x)) == 0.5) return 2.0 * std::round(x / 2.0);
  return r;
}

// numpy linspace(a, b, n): a + i·step, last element exactly b.
std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  if (n == 1) {
    v[0] = a;
    return v;
  }
  const double step = (b - a) / (n - 1);
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = a + i * step;
  v.back() = b;
  return v;
}

// numpy interp(x, arange(len(table)), table).
double interp_index(double x, const std::vector<double>& table) {
  if (x <= 0) return table.front();
  const double last = static_cast<double>(table.size() - 1);
  if (x >= last) return table.back();
  const auto lo = static_cast<std::size_t>(std::floor(x));
  const double w = x - static_cast<double>(lo);
  return table[lo] + w * (table[lo + 1] - table[lo]);
}

// diffusers _sigma_to_t: log-sigma interpolation over the training sigma table.
double sigma_to_t(double sigma, const std::vector<double>& log_sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  const int n = static_cast<int>(log_sigmas.size());
  int low = 0;
  for (int i = 0; i < n; ++i)
    if (log_sigma - log_sigmas[static_cast<std::size_t>(i)] >= 0) low = i;
  low = std::min(low, n - 2);
  const double lo = log_sigmas[static_cast<std::size_t>(low)];
  const double hi = log_sigmas[static_cast<std::size_t>(low + 1)];
  const double w = std::clamp((lo - log_sigma) / (lo - hi), 0.0, 1.0);
  return (1 - w) * low + w * (low + 1);
}

// EDM (Karras et al. 2022) sigmas, rho = 7, between the first (max) and last (min) of `in`.
std::vector<double> karras(const std::vector<double>& in, int n) {
  const double smin = in.back(), smax = in.front(), rho = 7.0;
  const double a = std::pow(smax, 1 / rho), b = std::pow(smin, 1 / rho);
  std::vector<double> out(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) {
    const double ramp = n == 1 ? 0.0 : static_cast<double>(k) / (n - 1);
    out[static_cast<std::size_t>(k)] = std::pow(a + ramp * (b - a), rho);
  }
  return out;
}

std::vector<double> sigma_table(const std::vector<double>& abar) {
  std::vector<double> s(abar.size());
  for (std::size_t i = 0; i < abar.size(); ++i) s[i] = std::sqrt((1 - abar[i]) / abar[i]);
  return s;
}

// Integer timestep spacings (DDIM, DPM-Solver with n_points = N + 1 and the last dropped).
std::vector<double> int_timesteps(Spacing sp, int T, int N, int offset, bool dpm) {
  std::vector<double> t;
  if (sp == Spacing::Linspace) {
    auto v = linspace(0, T - 1, dpm ? N + 1 : N);
    for (auto it = v.rbegin(); it != v.rend(); ++it) t.push_back(round_half_even(*it));
  } else if (sp == Spacing::Leading) {
    const int pts = dpm ? N + 1 : N;
    const int ratio = T / pts;
    for (int k = pts - 1; k >= 0; --k) t.push_back(static_cast<double>(k * ratio + offset));
  } else {
    const double ratio = static_cast<double>(T) / N;
    for (int k = 0; k < N; ++k) t.push_back(round_half_even(T - k * ratio) - 1);
  }
  t.resize(static_cast<std::size_t>(N));
  return t;
}

// Euler keeps linspace timesteps fractional (diffusers computes them in float32; double here).
std::vector<double> euler_timesteps(Spacing sp, int T, int N, int offset) {
  if (sp != Spacing::Linspace) return int_timesteps(sp, T, N, offset, false);
  auto v = linspace(0, T - 1, N);
  std::reverse(v.begin(), v.end());
  return v;
}

double flow_shift(const ScheduleConfig& c, double s) {
  if (c.use_dynamic_shifting) {
    const double x = 1 / s - 1;
    return c.time_shift == TimeShift::Exponential ? std::exp(c.mu) / (std::exp(c.mu) + x)
                                                  : c.mu / (c.mu + x);
  }
  return c.shift * s / (1 + (c.shift - 1) * s);
}

void validate_config(Sampler sampler, const ScheduleConfig& c, int N) {
  using detail_diffusion::require;
  require(kOp, c.num_train_timesteps >= 2 && c.num_train_timesteps <= 100000,
          "num_train_timesteps must be in [2, 100000], got {}", c.num_train_timesteps);
  require(kOp, N >= 1 && N <= c.num_train_timesteps,
          "num_steps must be in [1, num_train_timesteps = {}], got {}", c.num_train_timesteps, N);
  require(kOp,
          std::isfinite(c.beta_start) && std::isfinite(c.beta_end) && c.beta_start > 0 &&
              c.beta_end < 1 && c.beta_start <= c.beta_end,
          "beta_start / beta_end must satisfy 0 < beta_start <= beta_end < 1, got {} / {}",
          c.beta_start, c.beta_end);
  require(kOp, c.steps_offset >= 0 && c.steps_offset < c.num_train_timesteps,
          "steps_offset must be in [0, T), got {}", c.steps_offset);
  require(kOp, std::isfinite(c.clip_sample_range) && c.clip_sample_range > 0,
          "clip_sample_range must be finite and > 0, got {}", c.clip_sample_range);
  require(kOp, std::isfinite(c.shift) && c.shift > 0, "shift must be finite and > 0, got {}",
          c.shift);
  require(kOp, std::isfinite(c.mu), "mu must be finite, got {}", c.mu);
  require(kOp, c.shift_terminal >= 0 && c.shift_terminal < 1,
          "shift_terminal must be in [0, 1), got {}", c.shift_terminal);
  require(kOp,
          std::isfinite(c.s_churn) && c.s_churn >= 0 && std::isfinite(c.s_noise) &&
              !std::isnan(c.s_tmin) && !std::isnan(c.s_tmax),
          "s_churn must be finite >= 0, s_noise finite, s_tmin/s_tmax not NaN");
  require(kOp, std::isfinite(c.sigma_data) && c.sigma_data > 0,
          "sigma_data must be finite and > 0, got {}", c.sigma_data);
  require(kOp, std::isfinite(c.max_timestep) && c.max_timestep > 0 && c.max_timestep <= 1.6,
          "max_timestep must be in (0, 1.6], got {}", c.max_timestep);
  if (sampler == Sampler::DPMpp2M || sampler == Sampler::DPMpp2MSDE)
    require(kOp, c.prediction != Prediction::Sample,
            "DPM-Solver++ takes epsilon, v or flow predictions, not sample");
  require(kOp,
          std::isfinite(c.dynamic_thresholding_ratio) && c.dynamic_thresholding_ratio >= 0 &&
              c.dynamic_thresholding_ratio <= 1,
          "dynamic_thresholding_ratio must be in [0, 1], got {}", c.dynamic_thresholding_ratio);
  require(kOp, std::isfinite(c.sample_max_value) && c.sample_max_value >= 1,
          "sample_max_value must be finite and >= 1, got {}", c.sample_max_value);
  if (sampler == Sampler::LCM) {
    require(kOp,
            c.original_inference_steps >= 1 && c.original_inference_steps <= c.num_train_timesteps,
            "original_inference_steps must be in [1, num_train_timesteps], got {}",
            c.original_inference_steps);
    require(kOp, N <= c.original_inference_steps,
            "LCM num_steps ({}) must not exceed original_inference_steps ({})", N,
            c.original_inference_steps);
    require(kOp, std::isfinite(c.timestep_scaling) && c.timestep_scaling > 0,
            "timestep_scaling must be finite and > 0, got {}", c.timestep_scaling);
  }
  if (sampler == Sampler::DDIM || sampler == Sampler::Euler || sampler == Sampler::EulerAncestral ||
      sampler == Sampler::LCM)
    require(kOp, c.prediction != Prediction::Flow,
            "flow prediction needs FlowEuler, SCM or DPM-Solver++ (flow sigmas)");
  if (sampler == Sampler::FlowEuler || sampler == Sampler::SCM)
    require(kOp, c.prediction == Prediction::Flow || c.prediction == Prediction::Epsilon,
            "{} takes a flow (velocity) prediction", sampler == Sampler::SCM ? "SCM" : "FlowEuler");
  if (!c.custom_sigmas.empty()) {
    require(kOp, static_cast<int>(c.custom_sigmas.size()) == N,
            "custom_sigmas has {} entries, num_steps is {}", c.custom_sigmas.size(), N);
    for (double s : c.custom_sigmas)
      require(kOp, std::isfinite(s) && s > 0 && s <= 1, "custom_sigmas must be in (0, 1], got {}",
              s);
  }
}

}  // namespace

double flux_mu(std::int64_t image_seq_len, double base_shift, double max_shift,
               std::int64_t base_seq_len, std::int64_t max_seq_len) {
  const double m = (max_shift - base_shift) / static_cast<double>(max_seq_len - base_seq_len);
  const double b = base_shift - m * static_cast<double>(base_seq_len);
  return static_cast<double>(image_seq_len) * m + b;
}

std::vector<double> make_betas(const ScheduleConfig& c) {
  const int T = c.num_train_timesteps;
  std::vector<double> betas;
  switch (c.beta_schedule) {
    case BetaSchedule::Linear:
      betas = linspace(c.beta_start, c.beta_end, T);
      break;
    case BetaSchedule::ScaledLinear:
      betas = linspace(std::sqrt(c.beta_start), std::sqrt(c.beta_end), T);
      for (auto& b : betas) b *= b;
      break;
    case BetaSchedule::SquaredCosCapV2: {
      auto f = [](double t) {
        const double v = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2);
        return v * v;
      };
      for (int i = 0; i < T; ++i)
        betas.push_back(
            std::min(1 - f(static_cast<double>(i + 1) / T) / f(static_cast<double>(i) / T), 0.999));
      break;
    }
    case BetaSchedule::Trained:
      detail_diffusion::require(kOp, static_cast<int>(c.trained_betas.size()) == T,
                                "trained_betas has {} entries, num_train_timesteps is {}",
                                c.trained_betas.size(), T);
      for (double b : c.trained_betas)
        detail_diffusion::require(kOp, std::isfinite(b) && b > 0 && b < 1,
                                  "trained_betas must be in (0, 1), got {}", b);
      betas = c.trained_betas;
      break;
  }
  if (c.rescale_betas_zero_snr) {  // Lin et al. 2023, Alg. 1
    auto abar = cumprod_alphas(betas);
    std::vector<double> r(abar.size());
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = std::sqrt(abar[i]);
    const double r0 = r.front(), rT = r.back();
    for (auto& v : r) v = (v - rT) * r0 / (r0 - rT);
    for (std::size_t i = 0; i < r.size(); ++i) {
      const double a = r[i] * r[i];
      const double prev = i == 0 ? 1.0 : r[i - 1] * r[i - 1];
      betas[i] = 1 - a / prev;
    }
  }
  return betas;
}

std::vector<double> cumprod_alphas(const std::vector<double>& betas) {
  std::vector<double> abar(betas.size());
  double p = 1.0;
  for (std::size_t i = 0; i < betas.size(); ++i) abar[i] = p *= 1 - betas[i];
  return abar;
}

Schedule make_schedule(Sampler sampler, const ScheduleConfig& config, int N) {
  validate_config(sampler, config, N);
  Schedule s;
  s.sampler = sampler;
  s.config = config;
  s.num_steps = N;
  const int T = config.num_train_timesteps;
  const auto& c = config;
  const bool flow_dpm = (sampler == Sampler::DPMpp2M || sampler == Sampler::DPMpp2MSDE) &&
                        c.prediction == Prediction::Flow;
  if (sampler == Sampler::SCM) {
    if (N == 2 && c.intermediate_timestep > 0)
      s.sigmas = {c.max_timestep, c.intermediate_timestep, 0.0};
    else
      s.sigmas = linspace(c.max_timestep, 0.0, N + 1);
    s.timesteps.assign(s.sigmas.begin(), s.sigmas.end() - 1);
    s.init_noise_sigma = c.sigma_data;
    return s;
  }
  if (sampler == Sampler::FlowEuler || flow_dpm) {
    std::vector<double> sig;
    if (sampler == Sampler::FlowEuler) {
      if (c.use_dynamic_shifting) {
        sig = c.custom_sigmas.empty() ? linspace(1.0, 1.0 / N, N) : c.custom_sigmas;
      } else {
        // diffusers shifts the training table, then linspace(sigma_max, sigma_min), then again.
        const double smax = flow_shift(c, 1.0), smin = flow_shift(c, 1.0 / T);
        sig = linspace(smax * T, smin * T, N);
        for (auto& v : sig) v /= T;
      }
      for (auto& v : sig) v = flow_shift(c, v);
    } else {  // DPM-Solver use_flow_sigmas
      auto alphas = linspace(1.0, 1.0 / T, N + 1);
      for (auto& a : alphas) a = flow_shift(c, 1 - a);
      std::reverse(alphas.begin(), alphas.end());
      sig.assign(alphas.begin(), alphas.end() - 1);
    }
    if (c.shift_terminal > 0) {
      const double scale = (1 - sig.back()) / (1 - c.shift_terminal);
      for (auto& v : sig) v = 1 - (1 - v) / scale;
    }
    // DPM-Solver's set_timesteps casts sigma·T to int64 (truncation); FlowMatchEuler keeps it.
    for (double v : sig) s.timesteps.push_back(flow_dpm ? std::trunc(v * T) : v * T);
    s.sigmas = sig;
    s.sigmas.push_back(0.0);
    return s;
  }
  s.betas = make_betas(c);
  s.alphas_cumprod = cumprod_alphas(s.betas);
  const bool dpm = sampler == Sampler::DPMpp2M || sampler == Sampler::DPMpp2MSDE;
  if (sampler == Sampler::LCM) {  // scheduling_lcm.py set_timesteps, strength 1
    const int orig = c.original_inference_steps, k = T / orig;
    for (int i = 0; i < N; ++i) {
      const auto idx = static_cast<int>(std::floor(i * (static_cast<double>(orig) / N)));
      s.timesteps.push_back(static_cast<double>((orig - idx) * k - 1));
    }
    return s;
  }
  if (sampler == Sampler::DDIM) {
    s.timesteps = int_timesteps(c.spacing.value_or(Spacing::Leading), T, N, c.steps_offset, false);
    for (double t : s.timesteps)
      detail_diffusion::require(kOp, t >= 0 && t < T,
                                "timestep {} is outside [0, {}) (steps_offset too large?)", t, T);
    return s;
  }
  // Euler / Euler ancestral / DPM-Solver: VE sigmas of the VP table.
  std::vector<double> abar = s.alphas_cumprod;
  if (c.rescale_betas_zero_snr) abar.back() = std::ldexp(1.0, -24);
  const auto table = sigma_table(abar);
  std::vector<double> log_sigmas(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) log_sigmas[i] = std::log(table[i]);
  const Spacing sp = c.spacing.value_or(Spacing::Linspace);
  s.timesteps = dpm ? int_timesteps(sp, T, N, c.steps_offset, true)
                    : euler_timesteps(sp, T, N, c.steps_offset);
  for (double t : s.timesteps)
    detail_diffusion::require(kOp, t >= 0 && t <= T - 1,
                              "timestep {} is outside [0, {}] (steps_offset too large?)", t, T - 1);
  std::vector<double> sig;
  if (c.karras_sigmas) {
    if (dpm) {
      std::vector<double> flipped(table.rbegin(), table.rend());
      sig = karras(flipped, N);
      s.timesteps.clear();
      for (double v : sig) s.timesteps.push_back(round_half_even(sigma_to_t(v, log_sigmas)));
    } else {
      for (double t : s.timesteps) sig.push_back(interp_index(t, table));
      sig = karras(sig, N);
      s.timesteps.clear();
      for (double v : sig) s.timesteps.push_back(sigma_to_t(v, log_sigmas));
    }
  } else {
    for (double t : s.timesteps) sig.push_back(interp_index(t, table));
  }
  const bool sigma_min_final =
      c.final_sigmas == FinalSigmas::SigmaMin && sampler != Sampler::EulerAncestral;
  sig.push_back(sigma_min_final ? table.front() : 0.0);
  s.sigmas = sig;
  if (!dpm) {
    const double smax = *std::max_element(sig.begin(), sig.end());
    s.init_noise_sigma = sp == Spacing::Leading ? std::sqrt(smax * smax + 1) : smax;
  }
  return s;
}

double model_input_scale(const Schedule& s, int step) {
  detail_diffusion::check_step("model_input_scale", s, step);
  // DDIM and LCM have no sigma table: read it only for the samplers that scale their input.
  if (s.sampler == Sampler::Euler || s.sampler == Sampler::EulerAncestral) {
    const double sigma = s.sigmas[static_cast<std::size_t>(step)];
    return 1 / std::sqrt(sigma * sigma + 1);
  }
  if (s.sampler == Sampler::SCM)
    return detail_diffusion::trigflow_norm(s.sigmas[static_cast<std::size_t>(step)]) /
           s.config.sigma_data;
  return 1.0;
}

double model_timestep(const Schedule& s, int step) {
  detail_diffusion::check_step("model_timestep", s, step);
  if (s.sampler == Sampler::SCM)
    return detail_diffusion::trigflow_tau(s.sigmas[static_cast<std::size_t>(step)]);
  return s.timesteps[static_cast<std::size_t>(step)];
}

}  // namespace sparq::diffusion
