// sparq.diffusion: schedules (host tables in double), fused sampler steps with CFG, Philox noise,
// re-noise, and MoDM retrieval (l2_normalize, sim_top1).
#include "common.h"

namespace sparq::py::diffusion_binding {
using namespace sparq::diffusion;

// One StepCoeffs / RenoiseCoeffs, or a list of them (one per sample).
template <class T>
std::vector<T> one_or_list(const pyb::object& obj) {
  if (pyb::isinstance<T>(obj)) return {obj.cast<T>()};
  return obj.cast<std::vector<T>>();
}

}  // namespace sparq::py::diffusion_binding

SPARQ_PY_BIND(diffusion_types, sparq::py::kTypes) {
  using namespace sparq::diffusion;
  namespace pyb = pybind11;
  auto d = sparq::py::sub(m, "diffusion");
  pyb::enum_<BetaSchedule>(d, "BetaSchedule")
      .value("Linear", BetaSchedule::Linear)
      .value("ScaledLinear", BetaSchedule::ScaledLinear)
      .value("SquaredCosCapV2", BetaSchedule::SquaredCosCapV2)
      .value("Trained", BetaSchedule::Trained);
  pyb::enum_<Spacing>(d, "Spacing")
      .value("Leading", Spacing::Leading)
      .value("Trailing", Spacing::Trailing)
      .value("Linspace", Spacing::Linspace);
  pyb::enum_<Prediction>(d, "Prediction")
      .value("Epsilon", Prediction::Epsilon)
      .value("VPrediction", Prediction::VPrediction)
      .value("Sample", Prediction::Sample)
      .value("Flow", Prediction::Flow);
  pyb::enum_<Sampler>(d, "Sampler")
      .value("DDIM", Sampler::DDIM)
      .value("Euler", Sampler::Euler)
      .value("EulerAncestral", Sampler::EulerAncestral)
      .value("DPMpp2M", Sampler::DPMpp2M)
      .value("DPMpp2MSDE", Sampler::DPMpp2MSDE)
      .value("FlowEuler", Sampler::FlowEuler)
      .value("SCM", Sampler::SCM)
      .value("LCM", Sampler::LCM);
  pyb::enum_<FinalSigmas>(d, "FinalSigmas")
      .value("Zero", FinalSigmas::Zero)
      .value("SigmaMin", FinalSigmas::SigmaMin);
  pyb::enum_<TimeShift>(d, "TimeShift")
      .value("Exponential", TimeShift::Exponential)
      .value("Linear", TimeShift::Linear);
  d.attr("TAG_INIT_LATENT") = kTagInitLatent;
  d.attr("TAG_STEP_NOISE") = kTagStepNoise;
  d.attr("TAG_CHURN") = kTagChurn;
  d.attr("TAG_RENOISE") = kTagRenoise;

  using C = ScheduleConfig;
  pyb::class_<C>(d, "ScheduleConfig",
                 "diffusers scheduler config fields; ScheduleConfig(**fields).")
      .def(pyb::init([](const pyb::kwargs& kw) {
        pyb::object o = pyb::cast(C{});
        for (const auto& [k, v] : kw) {
          if (!pyb::hasattr(o, k))
            throw sparq::Error(sparq::ErrorCode::invalid_argument,
                               "ScheduleConfig has no field '" + std::string(pyb::str(k)) + "'");
          pyb::setattr(o, k, v);
        }
        return o.cast<C>();
      }))
      .def_readwrite("num_train_timesteps", &C::num_train_timesteps)
      .def_readwrite("beta_schedule", &C::beta_schedule)
      .def_readwrite("beta_start", &C::beta_start)
      .def_readwrite("beta_end", &C::beta_end)
      .def_readwrite("trained_betas", &C::trained_betas)
      .def_readwrite("rescale_betas_zero_snr", &C::rescale_betas_zero_snr)
      .def_readwrite("spacing", &C::spacing)
      .def_readwrite("steps_offset", &C::steps_offset)
      .def_readwrite("prediction", &C::prediction)
      .def_readwrite("set_alpha_to_one", &C::set_alpha_to_one)
      .def_readwrite("clip_sample", &C::clip_sample)
      .def_readwrite("clip_sample_range", &C::clip_sample_range)
      .def_readwrite("use_clipped_model_output", &C::use_clipped_model_output)
      .def_readwrite("thresholding", &C::thresholding)
      .def_readwrite("dynamic_thresholding_ratio", &C::dynamic_thresholding_ratio)
      .def_readwrite("sample_max_value", &C::sample_max_value)
      .def_readwrite("original_inference_steps", &C::original_inference_steps)
      .def_readwrite("timestep_scaling", &C::timestep_scaling)
      .def_readwrite("karras_sigmas", &C::karras_sigmas)
      .def_readwrite("final_sigmas", &C::final_sigmas)
      .def_readwrite("lower_order_final", &C::lower_order_final)
      .def_readwrite("euler_at_final", &C::euler_at_final)
      .def_readwrite("s_churn", &C::s_churn)
      .def_readwrite("s_tmin", &C::s_tmin)
      .def_readwrite("s_tmax", &C::s_tmax)
      .def_readwrite("s_noise", &C::s_noise)
      .def_readwrite("shift", &C::shift)
      .def_readwrite("use_dynamic_shifting", &C::use_dynamic_shifting)
      .def_readwrite("mu", &C::mu)
      .def_readwrite("time_shift", &C::time_shift)
      .def_readwrite("shift_terminal", &C::shift_terminal)
      .def_readwrite("custom_sigmas", &C::custom_sigmas)
      .def_readwrite("stochastic_sampling", &C::stochastic_sampling)
      .def_readwrite("sigma_data", &C::sigma_data)
      .def_readwrite("max_timestep", &C::max_timestep)
      .def_readwrite("intermediate_timestep", &C::intermediate_timestep);

  pyb::class_<Schedule>(d, "Schedule")
      .def_readonly("sampler", &Schedule::sampler)
      .def_readonly("config", &Schedule::config)
      .def_readonly("num_steps", &Schedule::num_steps)
      .def_readonly("betas", &Schedule::betas)
      .def_readonly("alphas_cumprod", &Schedule::alphas_cumprod)
      .def_readonly("timesteps", &Schedule::timesteps)
      .def_readonly("sigmas", &Schedule::sigmas)
      .def_readonly("init_noise_sigma", &Schedule::init_noise_sigma);

  pyb::class_<StepCoeffs>(d, "StepCoeffs")
      .def_property_readonly(
          "c",
          [](const StepCoeffs& s) { return std::vector<float>(std::begin(s.c), std::end(s.c)); })
      .def_readonly("guidance", &StepCoeffs::guidance)
      .def_readonly("c_in_next", &StepCoeffs::c_in_next)
      .def_readonly("flags", &StepCoeffs::flags)
      .def_readonly("sampler", &StepCoeffs::sampler)
      .def_readonly("cfg", &StepCoeffs::cfg)
      .def_readonly("step", &StepCoeffs::step)
      .def_readonly("guidance_rescale", &StepCoeffs::guidance_rescale)
      .def("draws_noise", &StepCoeffs::draws_noise);

  pyb::class_<RenoiseCoeffs>(d, "RenoiseCoeffs")
      .def_readonly("a", &RenoiseCoeffs::a)
      .def_readonly("b", &RenoiseCoeffs::b)
      .def_readonly("step", &RenoiseCoeffs::step);
}

SPARQ_PY_BIND(diffusion, sparq::py::kOps) {
  using namespace sparq;
  using namespace sparq::diffusion;
  using namespace sparq::py;
  using namespace sparq::py::diffusion_binding;
  auto d = sub(m, "diffusion");
  d.def("make_schedule", &make_schedule, pyb::arg("sampler"), pyb::arg("config"),
        pyb::arg("num_steps"));
  d.def("make_betas", &make_betas, pyb::arg("config"));
  d.def("cumprod_alphas", &cumprod_alphas, pyb::arg("betas"));
  d.def("flux_mu", &flux_mu, pyb::arg("image_seq_len"), pyb::arg("base_shift") = 0.5,
        pyb::arg("max_shift") = 1.15, pyb::arg("base_seq_len") = 256,
        pyb::arg("max_seq_len") = 4096);
  d.def("model_input_scale", &model_input_scale, pyb::arg("schedule"), pyb::arg("step"));
  d.def("model_timestep", &model_timestep, pyb::arg("schedule"), pyb::arg("step"));
  d.def(
      "step_coeffs",
      [](const Schedule& s, int step, float eta, bool cfg, float guidance_scale,
         float guidance_rescale) {
        return step_coeffs(s, step,
                           {.eta = eta,
                            .cfg = cfg,
                            .guidance_scale = guidance_scale,
                            .guidance_rescale = guidance_rescale});
      },
      pyb::arg("schedule"), pyb::arg("step"), pyb::kw_only(), pyb::arg("eta") = 0.0f,
      pyb::arg("cfg") = false, pyb::arg("guidance_scale") = 1.0f,
      pyb::arg("guidance_rescale") = 0.0f);

  d.def(
      "step",
      [](Context& ctx, const pyb::object& coeffs, const pyb::object& latent,
         const pyb::object& model_out, const pyb::object& history, const pyb::object& x0_out,
         const pyb::object& model_in_next, const pyb::object& noise, const pyb::object& seeds) {
        const auto cs = one_or_list<StepCoeffs>(coeffs);
        const InOut lat(ctx, latent, "step: latent");
        std::optional<InOut> hist, x0, next;
        if (!history.is_none()) hist.emplace(ctx, history, "step: history");
        if (!x0_out.is_none()) x0.emplace(ctx, x0_out, "step: x0_out");
        if (!model_in_next.is_none()) next.emplace(ctx, model_in_next, "step: model_in_next");
        StepTensors t{.latent = lat.tensor(),
                      .model_out = to_tensor(ctx, model_out),
                      .history = hist ? hist->tensor() : Tensor(),
                      .x0_out = x0 ? x0->tensor() : Tensor(),
                      .model_in_next = next ? next->tensor() : Tensor(),
                      .noise = opt_tensor(ctx, noise),
                      .seeds = opt_tensor(ctx, seeds)};
        {
          pyb::gil_scoped_release nogil;
          sparq::diffusion::step(ctx, std::span<const StepCoeffs>(cs), t);
        }
        lat.writeback();
        for (const auto* io : {&hist, &x0, &next})
          if (*io) (*io)->writeback();
      },
      pyb::arg("ctx"), pyb::arg("coeffs"), pyb::arg("latent"), pyb::arg("model_out"),
      pyb::kw_only(), pyb::arg("history") = pyb::none(), pyb::arg("x0_out") = pyb::none(),
      pyb::arg("model_in_next") = pyb::none(), pyb::arg("noise") = pyb::none(),
      pyb::arg("seeds") = pyb::none(),
      "One fused step. latent (and history, x0_out, model_in_next) are updated in place: pass "
      "sparq.Tensor objects, or numpy arrays, which are overwritten with the result. coeffs: one "
      "StepCoeffs or a list (one per sample).");

  d.def(
      "make_seeds",
      [](Context& ctx, const std::vector<std::uint64_t>& seeds) { return make_seeds(ctx, seeds); },
      pyb::arg("ctx"), pyb::arg("seeds"), "Per-sample 64-bit seeds as an int32 [B, 2] tensor.");
  d.def(
      "randn",
      [](Context& ctx, const pyb::object& seeds, std::vector<std::int64_t> shape,
         std::uint32_t step, std::uint32_t tag, float scale, DType dtype) {
        const Tensor s = to_tensor(ctx, seeds);
        pyb::gil_scoped_release nogil;
        return randn(ctx, s, std::move(shape),
                     {.step = step, .tag = tag, .scale = scale, .dtype = dtype});
      },
      pyb::arg("ctx"), pyb::arg("seeds"), pyb::arg("shape"), pyb::kw_only(), pyb::arg("step") = 0,
      pyb::arg("tag") = kTagInitLatent, pyb::arg("scale") = 1.0f, pyb::arg("dtype") = DType::f32,
      "Philox standard normal noise [B, ...] (B = rows of seeds), times scale.");
  d.def("renoise_coeffs", &renoise_coeffs, pyb::arg("schedule"), pyb::arg("k"));
  d.def(
      "renoise",
      [](Context& ctx, const pyb::object& x0, const pyb::object& seeds, const pyb::object& coeffs) {
        const auto cs = one_or_list<RenoiseCoeffs>(coeffs);
        const Tensor tx = to_tensor(ctx, x0), ts = to_tensor(ctx, seeds);
        pyb::gil_scoped_release nogil;
        return renoise(ctx, tx, ts, std::span<const RenoiseCoeffs>(cs));
      },
      pyb::arg("ctx"), pyb::arg("x0"), pyb::arg("seeds"), pyb::arg("coeffs"));
  d.def(
      "l2_normalize",
      [](Context& ctx, const pyb::object& v) {
        const Tensor t = to_tensor(ctx, v);
        pyb::gil_scoped_release nogil;
        return l2_normalize(ctx, t);
      },
      pyb::arg("ctx"), pyb::arg("v"));
  d.def(
      "sim_top1",
      [](Context& ctx, const pyb::object& E, const pyb::object& valid, const pyb::object& Q) {
        const Tensor te = to_tensor(ctx, E), tv = to_tensor(ctx, valid), tq = to_tensor(ctx, Q);
        Top1 r;
        {
          pyb::gil_scoped_release nogil;
          r = sim_top1(ctx, te, tv, tq);
        }
        return pyb::make_tuple(
            pyb::array_t<std::int32_t>(static_cast<pyb::ssize_t>(r.index.size()), r.index.data()),
            pyb::array_t<float>(static_cast<pyb::ssize_t>(r.score.size()), r.score.data()));
      },
      pyb::arg("ctx"), pyb::arg("E"), pyb::arg("valid"), pyb::arg("Q"),
      "(index int32 [Bq], score float32 [Bq]): the best valid row of E per query (-1: none).");
  d.def(
      "sim_topk",
      [](Context& ctx, const pyb::object& E, const pyb::object& valid, const pyb::object& Q,
         int k) {
        const Tensor te = to_tensor(ctx, E), tv = to_tensor(ctx, valid), tq = to_tensor(ctx, Q);
        TopK r;
        {
          pyb::gil_scoped_release nogil;
          r = sim_topk(ctx, te, tv, tq, k);
        }
        const auto rows = static_cast<pyb::ssize_t>(r.index.size() / static_cast<std::size_t>(k));
        return pyb::make_tuple(
            pyb::array_t<std::int32_t>({rows, static_cast<pyb::ssize_t>(k)}, r.index.data()),
            pyb::array_t<float>({rows, static_cast<pyb::ssize_t>(k)}, r.score.data()));
      },
      pyb::arg("ctx"), pyb::arg("E"), pyb::arg("valid"), pyb::arg("Q"), pyb::arg("k"),
      "(index int32 [Bq, k], score float32 [Bq, k]): the k best valid rows per query, best "
      "first (-1: none).");
}
