// The golden file of bench/anchors/diffusers_golden.py: hex decoding, and the mapping of a
// diffusers scheduler config (every constructor argument, as registered) plus its step() and
// set_timesteps() arguments to sparq's Sampler / ScheduleConfig / StepOptions.
//
// Every key must be mapped or hold the value sparq implements; anything else is an error that
// names the key, so a new diffusers option cannot be ignored silently. Differences of semantics:
//  - diffusers' DDIM clip_sample defaults to true, sparq's to false: the mapping copies the
//    registered value, so both sides clip alike.
//  - Euler's s_churn / s_tmin / s_tmax / s_noise and DDIM's use_clipped_model_output are step()
//    arguments in diffusers, ScheduleConfig fields in sparq; eta is a StepOptions field in both.
//  - SCMScheduler takes the TrigFlow output of SanaSprintPipeline's conversion; sparq's SCM step
//    takes the flow velocity itself (the golden script applies the pipeline's conversion):
//    prediction_type "trigflow" maps to Prediction::Flow.
//  - Flux dynamic shifting: the pipeline's sigmas linspace(1, 1/N, N) are sparq's default
//    custom_sigmas; mu is passed as is (base_shift, max_shift, ..._image_seq_len only feed mu).
//  - LCM ignores timestep_spacing (its set_timesteps has one rule), as sparq does.
//  - sCM with intermediate_timesteps = None (N != 2): sparq's intermediate_timestep = 0.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparq/diffusion.h"

namespace sparq::test::diff::golden {

using json = nlohmann::json;
using namespace sparq::diffusion;

// One hex string of big-endian IEEE bit patterns, 8 digits per float / 16 per double.
template <typename T, typename U>
std::vector<T> decode(const std::string& s) {
  constexpr std::size_t w = 2 * sizeof(T);
  if (s.size() % w)
    throw std::runtime_error("golden hex: length is not a multiple of " + std::to_string(w));
  std::vector<T> out(s.size() / w);
  for (std::size_t i = 0; i < out.size(); ++i) {
    U bits = 0;
    for (std::size_t d = 0; d < w; ++d) {
      const char c = s[i * w + d];
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (v < 0) throw std::runtime_error(std::string("golden hex: bad digit '") + c + "'");
      bits = static_cast<U>((bits << 4) | static_cast<U>(v));
    }
    std::memcpy(&out[i], &bits, sizeof(T));
  }
  return out;
}
inline std::vector<float> floats(const json& s) {
  return decode<float, std::uint32_t>(s.get<std::string>());
}
inline std::vector<double> doubles(const json& s) {
  return decode<double, std::uint64_t>(s.get<std::string>());
}

struct Mapped {
  Sampler sampler = Sampler::DDIM;
  ScheduleConfig config;
  int num_steps = 0;
  StepOptions options;
};

namespace detail {

inline double number(const json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    throw std::runtime_error("not a number: " + s);
  }
  return v.get<double>();
}

// Applies one diffusers key; returns false when sparq has no mapping for this key and value.
inline bool apply(const std::string& cls, const std::string& k, const json& v, Mapped& m) {
  auto& c = m.config;
  auto is = [&](const json& want) { return v == want; };
  if (k == "num_train_timesteps") return c.num_train_timesteps = v.get<int>(), true;
  if (k == "beta_start") return c.beta_start = v.get<double>(), true;
  if (k == "beta_end") return c.beta_end = v.get<double>(), true;
  if (k == "beta_schedule") {
    if (is("linear")) return c.beta_schedule = BetaSchedule::Linear, true;
    if (is("scaled_linear")) return c.beta_schedule = BetaSchedule::ScaledLinear, true;
    if (is("squaredcos_cap_v2")) return c.beta_schedule = BetaSchedule::SquaredCosCapV2, true;
    return false;
  }
  if (k == "trained_betas") {
    if (v.is_null()) return true;
    c.beta_schedule = BetaSchedule::Trained;
    c.trained_betas = v.get<std::vector<double>>();
    return true;
  }
  if (k == "rescale_betas_zero_snr") return c.rescale_betas_zero_snr = v.get<bool>(), true;
  if (k == "timestep_spacing") {
    if (cls == "LCMScheduler") return true;  // unused by LCM's set_timesteps
    if (is("leading")) return c.spacing = Spacing::Leading, true;
    if (is("trailing")) return c.spacing = Spacing::Trailing, true;
    if (is("linspace")) return c.spacing = Spacing::Linspace, true;
    return false;
  }
  if (k == "steps_offset") return c.steps_offset = v.get<int>(), true;
  if (k == "prediction_type") {
    if (is("epsilon")) return c.prediction = Prediction::Epsilon, true;
    if (is("v_prediction")) return c.prediction = Prediction::VPrediction, true;
    if (is("sample")) return c.prediction = Prediction::Sample, true;
    if (is("flow_prediction") || (is("trigflow") && cls == "SCMScheduler"))
      return c.prediction = Prediction::Flow, true;
    return false;
  }
  if (k == "set_alpha_to_one") return c.set_alpha_to_one = v.get<bool>(), true;
  if (k == "clip_sample") return c.clip_sample = v.get<bool>(), true;
  if (k == "clip_sample_range") return c.clip_sample_range = v.get<double>(), true;
  if (k == "thresholding") return c.thresholding = v.get<bool>(), true;
  if (k == "dynamic_thresholding_ratio") return c.dynamic_thresholding_ratio = number(v), true;
  if (k == "sample_max_value") return c.sample_max_value = number(v), true;
  if (k == "original_inference_steps") return c.original_inference_steps = v.get<int>(), true;
  if (k == "timestep_scaling") return c.timestep_scaling = v.get<double>(), true;
  if (k == "use_karras_sigmas") return c.karras_sigmas = v.get<bool>(), true;
  if (k == "final_sigmas_type") {
    if (is("zero")) return c.final_sigmas = FinalSigmas::Zero, true;
    if (is("sigma_min")) return c.final_sigmas = FinalSigmas::SigmaMin, true;
    return false;
  }
  if (k == "lower_order_final") return c.lower_order_final = v.get<bool>(), true;
  if (k == "euler_at_final") return c.euler_at_final = v.get<bool>(), true;
  if (k == "algorithm_type") {
    if (is("dpmsolver++")) return m.sampler = Sampler::DPMpp2M, true;
    if (is("sde-dpmsolver++")) return m.sampler = Sampler::DPMpp2MSDE, true;
    return false;
  }
  if (k == "use_flow_sigmas") return v.get<bool>() == (c.prediction == Prediction::Flow);
  if (k == "shift" || k == "flow_shift") return c.shift = v.get<double>(), true;
  if (k == "use_dynamic_shifting") {
    if (cls == "DPMSolverMultistepScheduler") return is(false);
    return c.use_dynamic_shifting = v.get<bool>(), true;
  }
  if (k == "time_shift_type") {
    if (is("exponential")) return c.time_shift = TimeShift::Exponential, true;
    if (is("linear")) return c.time_shift = TimeShift::Linear, true;
    return false;
  }
  if (k == "shift_terminal") return c.shift_terminal = v.is_null() ? 0.0 : v.get<double>(), true;
  if (k == "stochastic_sampling") return c.stochastic_sampling = v.get<bool>(), true;
  if (k == "sigma_data") return c.sigma_data = v.get<double>(), true;
  // mu is passed to set_timesteps; these only feed the pipeline's computation of it.
  if (k == "base_shift" || k == "max_shift" || k == "base_image_seq_len" ||
      k == "max_image_seq_len")
    return true;
  // Options sparq implements only at diffusers' default value.
  if (k == "solver_order") return is(2);
  if (k == "solver_type") return is("midpoint");
  if (k == "interpolation_type") return is("linear");
  if (k == "timestep_type") return is("discrete");
  if (k == "use_exponential_sigmas" || k == "use_beta_sigmas" || k == "use_lu_lambdas" ||
      k == "invert_sigmas")
    return is(false);
  if (k == "sigma_min" || k == "sigma_max" || k == "variance_type") return v.is_null();
  if (k == "lambda_min_clipped") return is("-inf");
  // step() arguments.
  if (k == "eta") return m.options.eta = v.get<float>(), true;
  if (k == "use_clipped_model_output") return c.use_clipped_model_output = v.get<bool>(), true;
  if (k == "s_churn") return c.s_churn = number(v), true;
  if (k == "s_tmin") return c.s_tmin = number(v), true;
  if (k == "s_tmax") return c.s_tmax = number(v), true;
  if (k == "s_noise") return c.s_noise = number(v), true;
  // set_timesteps() arguments.
  if (k == "sigmas") return is("linspace(1, 1/N, N)");
  if (k == "mu") return c.mu = v.get<double>(), true;
  if (k == "intermediate_timesteps")
    return c.intermediate_timestep = v.is_null() ? 0.0 : v.get<double>(), true;
  if (k == "max_timesteps") return c.max_timestep = v.get<double>(), true;
  return false;
}

}  // namespace detail

// e: {"scheduler", "config", "num_steps", optional "step_kwargs", "set_timesteps_kwargs",
// "cfg": {"guidance_scale", "guidance_rescale"}}.
inline std::optional<Mapped> map_case(const json& e, std::string* err) {
  Mapped m;
  const std::string cls = e.at("scheduler");
  if (cls == "DDIMScheduler")
    m.sampler = Sampler::DDIM;
  else if (cls == "EulerDiscreteScheduler")
    m.sampler = Sampler::Euler;
  else if (cls == "EulerAncestralDiscreteScheduler")
    m.sampler = Sampler::EulerAncestral;
  else if (cls == "DPMSolverMultistepScheduler")
    m.sampler = Sampler::DPMpp2M;  // algorithm_type refines it
  else if (cls == "FlowMatchEulerDiscreteScheduler")
    m.sampler = Sampler::FlowEuler;
  else if (cls == "SCMScheduler")
    m.sampler = Sampler::SCM;
  else if (cls == "LCMScheduler")
    m.sampler = Sampler::LCM;
  else
    return *err = "no sparq sampler for " + cls, std::nullopt;
  m.num_steps = e.at("num_steps").get<int>();
  if (cls == "FlowMatchEulerDiscreteScheduler" || cls == "SCMScheduler")
    m.config.prediction = Prediction::Flow;
  // prediction_type first: use_flow_sigmas is checked against it.
  const json& cfg = e.at("config");
  if (cfg.contains("prediction_type") &&
      !detail::apply(cls, "prediction_type", cfg.at("prediction_type"), m))
    return *err = cls + ": unmapped option prediction_type=" + cfg.at("prediction_type").dump(),
           std::nullopt;
  if (e.contains("cfg")) {  // the pipeline's guidance: model_out is [uncond; cond]
    const json& g = e.at("cfg");
    m.options.cfg = true;
    m.options.guidance_scale = g.at("guidance_scale").get<float>();
    m.options.guidance_rescale = g.value("guidance_rescale", 0.0f);
  }
  for (const char* part : {"config", "step_kwargs", "set_timesteps_kwargs"}) {
    if (!e.contains(part)) continue;
    for (const auto& [k, v] : e.at(part).items()) {
      bool ok = false;
      try {
        ok = detail::apply(cls, k, v, m);
      } catch (const std::exception& ex) {
        *err = cls + ": option " + k + "=" + v.dump() + ": " + ex.what();
        return std::nullopt;
      }
      if (!ok) return *err = cls + ": unmapped option " + k + "=" + v.dump(), std::nullopt;
    }
  }
  return m;
}

}  // namespace sparq::test::diff::golden
