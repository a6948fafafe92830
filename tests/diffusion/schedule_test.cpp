// Host schedules against the reference values of specs/diffusion_sampling.md §1-§2 (computed
// from diffusers), step coefficients' check values, and option validation.
#include <cmath>
#include <cstring>

#include "diffusion/diffusion_test_util.h"

namespace sparq::test::diff {
namespace {

constexpr double kRel = 1e-5;  // the spec quotes 5-6 significant digits

void expect_rel(double got, double want, const char* what) {
  EXPECT_NEAR(got, want, std::fabs(want) * kRel) << what;
}

const ScheduleConfig kSd{
    .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};

TEST(DiffusionSchedule, BetaTables) {
  const auto lin = cumprod_alphas(make_betas({}));
  expect_rel(lin.back(), 4.0358e-05, "linear abar[999]");
  expect_rel(make_schedule(Sampler::Euler, {}, 10).sigmas.front(), 157.407, "linear sigma_max");
  const auto sd = cumprod_alphas(make_betas(kSd));
  expect_rel(sd.front(), 0.99915, "scaled_linear abar[0]");
  expect_rel(sd.back(), 4.66010e-03, "scaled_linear abar[999]");
  const Schedule e = make_schedule(Sampler::Euler,
                                   {.beta_schedule = BetaSchedule::ScaledLinear,
                                    .beta_start = 0.00085,
                                    .beta_end = 0.012,
                                    .final_sigmas = FinalSigmas::SigmaMin},
                                   10);
  expect_rel(e.sigmas.front(), 14.6146, "scaled_linear sigma_max");
  expect_rel(e.sigmas.back(), 0.029167, "scaled_linear sigma_min");
  EXPECT_DOUBLE_EQ(e.init_noise_sigma, e.sigmas.front());  // linspace: sigma_max
  const auto cos = cumprod_alphas(make_betas({.beta_schedule = BetaSchedule::SquaredCosCapV2}));
  EXPECT_NEAR(std::sqrt((1 - cos.back()) / cos.back()), 2.03e4, 0.01e4);
  // Zero terminal SNR: the last abar becomes 0 (Lin et al. 2023).
  auto z = kSd;
  z.rescale_betas_zero_snr = true;
  EXPECT_NEAR(cumprod_alphas(make_betas(z)).back(), 0.0, 1e-12);
}

TEST(DiffusionSchedule, Spacings) {
  auto ts = [](Sampler s, Spacing sp, int n, int offset = 0) {
    ScheduleConfig c;
    c.spacing = sp;
    c.steps_offset = offset;
    return make_schedule(s, c, n).timesteps;
  };
  EXPECT_EQ(ts(Sampler::DDIM, Spacing::Linspace, 10),
            (std::vector<double>{999, 888, 777, 666, 555, 444, 333, 222, 111, 0}));
  EXPECT_EQ(ts(Sampler::DDIM, Spacing::Leading, 10, 1),
            (std::vector<double>{901, 801, 701, 601, 501, 401, 301, 201, 101, 1}));
  EXPECT_EQ(ts(Sampler::DDIM, Spacing::Trailing, 10),
            (std::vector<double>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99}));
  EXPECT_EQ(ts(Sampler::DPMpp2M, Spacing::Linspace, 10),
            (std::vector<double>{999, 899, 799, 699, 599, 500, 400, 300, 200, 100}));
  EXPECT_EQ(ts(Sampler::DDIM, Spacing::Trailing, 1), (std::vector<double>{999}));
  const auto e = ts(Sampler::Euler, Spacing::Linspace, 4);
  EXPECT_DOUBLE_EQ(e[1], 666.0);  // linspace(0, 999, 4) reversed, kept fractional
  EXPECT_EQ(ts(Sampler::DDIM, Spacing::Leading, 25).size(), 25u);
}

TEST(DiffusionSchedule, FlowAndTrigFlow) {
  const Schedule f =
      make_schedule(Sampler::FlowEuler, {.prediction = Prediction::Flow, .shift = 3.0}, 28);
  ASSERT_EQ(f.sigmas.size(), 29u);
  EXPECT_NEAR(f.sigmas[0], 1.000000, 1e-6);
  EXPECT_NEAR(f.sigmas[1], 0.987381, 1e-6);
  EXPECT_NEAR(f.sigmas[2], 0.974108, 1e-6);
  EXPECT_NEAR(f.sigmas[26], 0.110906, 1e-6);
  EXPECT_NEAR(f.sigmas[27], 0.008929, 1e-6);
  EXPECT_EQ(f.sigmas[28], 0.0);
  EXPECT_DOUBLE_EQ(f.timesteps[0], 1000.0);
  EXPECT_NEAR(flux_mu(4096), 1.15, 1e-12);
  const Schedule d = make_schedule(
      Sampler::FlowEuler,
      {.prediction = Prediction::Flow, .use_dynamic_shifting = true, .mu = flux_mu(4096)}, 4);
  EXPECT_DOUBLE_EQ(d.sigmas[0], 1.0);  // time shift keeps 1 at 1
  EXPECT_GT(d.sigmas[3], 0.25);        // and pushes the rest up

  const Schedule s = make_schedule(Sampler::SCM, {.prediction = Prediction::Flow}, 2);
  EXPECT_EQ(s.sigmas, (std::vector<double>{1.57080, 1.3, 0.0}));
  EXPECT_NEAR(model_timestep(s, 0), 1.0000037, 1e-7);
  EXPECT_NEAR(model_timestep(s, 1), 0.782708, 1e-6);
  EXPECT_NEAR(model_input_scale(s, 1), 1.624620, 1e-6);
  const StepCoeffs k0 = step_coeffs(s, 0), k1 = step_coeffs(s, 1);
  EXPECT_NEAR(k0.c[0], 1.0000037, 1e-6);
  EXPECT_NEAR(k0.c[1], -0.5000018, 1e-6);
  EXPECT_NEAR(k0.c[2], 0.267499, 1e-6);  // N0 = cos 1.3
  EXPECT_NEAR(k0.c[3], 0.481779, 1e-6);  // N1 = sigma_d sin 1.3
  EXPECT_NEAR(k1.c[0], 0.812310, 1e-6);
  EXPECT_NEAR(k1.c[1], -0.391354, 1e-6);
  EXPECT_FALSE(k1.draws_noise());  // t = 0: y = x0
}

// Coefficients are pinned: the same config gives the same float bits (spec §6.1).
TEST(DiffusionSchedule, CoefficientsDeterministic) {
  const Schedule a = make_schedule(Sampler::DPMpp2M, kSd, 20);
  const Schedule b = make_schedule(Sampler::DPMpp2M, kSd, 20);
  for (int i = 0; i < 20; ++i) {
    const auto ka = step_coeffs(a, i), kb = step_coeffs(b, i);
    EXPECT_EQ(std::memcmp(ka.c, kb.c, sizeof ka.c), 0);
    EXPECT_EQ(ka.flags, kb.flags);
  }
}

template <class F>
void expect_error(F&& f, const char* needle) {
  try {
    f();
    ADD_FAILURE() << "no sparq::Error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DiffusionBadInput, OptionsAndShapes) {
  const Schedule s = make_schedule(Sampler::DDIM, kSd, 10);
  expect_error([&] { step_coeffs(s, 10); }, "step index 10");
  expect_error([&] { step_coeffs(s, -1); }, "step index -1");
  expect_error([&] { step_coeffs(s, 0, {.cfg = true, .guidance_scale = NAN}); }, "guidance_scale");
  expect_error([&] { step_coeffs(s, 0, {.eta = NAN}); }, "eta");
  expect_error([&] { step_coeffs(s, 0, {.eta = 2.0f}); }, "eta");
  expect_error([&] { make_schedule(Sampler::DDIM, kSd, 0); }, "num_steps");
  expect_error([&] { make_schedule(Sampler::DDIM, kSd, 1001); }, "num_steps");
  expect_error([&] { make_schedule(Sampler::FlowEuler, {.shift = NAN}, 4); }, "shift");
  expect_error([&] { make_schedule(Sampler::DDIM, {.beta_start = -1}, 4); }, "beta_start");
  expect_error([&] { make_schedule(Sampler::DPMpp2M, {.prediction = Prediction::Sample}, 4); },
               "sample");

  Context cpu = fallback_context();
  const StepCoeffs k = step_coeffs(s, 0, {.eta = 0.5f, .cfg = true, .guidance_scale = 3});
  StepTensors t;
  t.latent = cpu.empty(DType::f32, {2, 4, 8, 8});
  t.model_out = cpu.empty(DType::f16, {2, 4, 8, 8});  // CFG needs [2B, ...]
  t.seeds = make_seeds(cpu, std::vector<std::uint64_t>{1, 2});
  expect_error([&] { step(cpu, k, t); }, "model_out has shape");
  t.model_out = cpu.empty(DType::f16, {4, 4, 8, 8});
  t.seeds = make_seeds(cpu, std::vector<std::uint64_t>{1});
  expect_error([&] { step(cpu, k, t); }, "seeds");
  t.seeds = make_seeds(cpu, std::vector<std::uint64_t>{1, 2});
  t.x0_out = cpu.empty(DType::f32, {2, 4, 8, 9});
  expect_error([&] { step(cpu, k, t); }, "x0_out");
  t.x0_out = Tensor();
  t.latent = cpu.empty(DType::bf16, {2, 4, 8, 8});
  expect_error([&] { step(cpu, k, t); }, "latent has dtype");
  t.latent = cpu.empty(DType::f32, {2, 4, 8, 8});
  std::vector<StepCoeffs> three(3, k);
  expect_error([&] { step(cpu, three, t); }, "coeffs has 3");
  StepCoeffs bad = k;
  bad.guidance = NAN;
  expect_error([&] { step(cpu, bad, t); }, "guidance");
  step(cpu, k, t);  // the valid call goes through
  Context other = fallback_context();
  t.model_out = other.empty(DType::f16, {4, 4, 8, 8});
  expect_error([&] { step(cpu, k, t); }, "another Context");
}

}  // namespace
}  // namespace sparq::test::diff
