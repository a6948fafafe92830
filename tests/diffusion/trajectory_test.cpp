// Whole trajectories with a deterministic toy denoiser: identical bits on device and fallback,
// close to the float64 diffusers trajectory.
#include <cmath>

#include "diffusion/diffusion_test_util.h"
#include "reference/diffusion_ref.h"

namespace sparq::test::diff {
namespace {

// Runs N steps from randn initial latents; returns the final latent. The toy model runs on the
// host (fp32 of the double formula), so equal latents give equal model outputs.
std::vector<float> sample(Context& ctx, const Schedule& s, float eta, std::int64_t b,
                          std::int64_t n_per) {
  const std::vector<std::int64_t> shape{b, n_per};
  const auto seeds = seeds_for(static_cast<int>(b), 2024);
  Tensor sd = make_seeds(ctx, seeds);
  StepTensors t;
  t.latent = randn(ctx, sd, shape, {.scale = static_cast<float>(s.init_noise_sigma)});
  t.seeds = sd;
  for (int i = 0; i < s.num_steps; ++i) {
    const auto x = t.latent.download<float>();
    std::vector<float> m(x.size());
    for (std::size_t e = 0; e < x.size(); ++e)
      m[e] = static_cast<float>(ref::toy_model(x[e], static_cast<long>(e % n_per), i));
    t.model_out = ctx.upload(m, DType::f32, shape);
    step(ctx, step_coeffs(s, i, {.eta = eta}), t);
  }
  return t.latent.download<float>();
}

TEST(DiffusionTrajectory, Ddim20StepsDeviceEqualsFallbackAndReference) {
  Context dev = device_context(), cpu = fallback_context();
  const Schedule s = make_schedule(Sampler::DDIM,
                                   {.beta_schedule = BetaSchedule::ScaledLinear,
                                    .beta_start = 0.00085,
                                    .beta_end = 0.012,
                                    .steps_offset = 1},
                                   20);
  const std::int64_t b = 2, n_per = 4 * 64 * 64;
  for (float eta : {0.0f, 1.0f}) {
    const auto a = sample(dev, s, eta, b, n_per);
    const auto c = sample(cpu, s, eta, b, n_per);
    EXPECT_EQ(compare_bits(a, c), "") << "eta " << eta;
    if (eta != 0.0f) continue;
    // float64 trajectory from the same initial noise.
    const auto seeds = seeds_for(2, 2024);
    auto x0v = randn(cpu, make_seeds(cpu, seeds), {b, n_per}).download<float>();
    double worst = 0;
    for (std::size_t e = 0; e < x0v.size(); ++e) {
      double x = x0v[e], x0;
      for (int i = 0; i < 20; ++i)
        x = ref::diffusion_step(s, i, 0, x, ref::toy_model(x, static_cast<long>(e % n_per), i), 0,
                                0, &x0);
      worst = std::max(worst, std::fabs(c[e] - x) / (1 + std::fabs(x)));
    }
    EXPECT_LT(worst, 1e-4);
  }
}

TEST(DiffusionTrajectory, DpmSolverWithHistoryDeviceEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  const Schedule s = make_schedule(Sampler::DPMpp2M, {.karras_sigmas = true}, 12);
  auto run = [&](Context& ctx) {
    const std::vector<std::int64_t> shape{3, 1000};
    Tensor sd = make_seeds(ctx, seeds_for(3, 5));
    StepTensors t;
    t.latent = randn(ctx, sd, shape, {.scale = static_cast<float>(s.sigmas[0])});
    t.history = ctx.empty(DType::f32, shape);
    for (int i = 0; i < s.num_steps; ++i) {
      const auto x = t.latent.download<float>();
      std::vector<float> m(x.size());
      for (std::size_t e = 0; e < x.size(); ++e)
        m[e] = static_cast<float>(ref::toy_model(x[e], static_cast<long>(e % 1000), i));
      t.model_out = ctx.upload(m, DType::f32, shape);
      step(ctx, step_coeffs(s, i), t);
    }
    return t.latent.download<float>();
  };
  const auto a = run(dev), c = run(cpu);
  EXPECT_EQ(compare_bits(a, c), "");
  for (float v : c) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace sparq::test::diff
