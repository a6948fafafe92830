// Guidance rescale, dynamic thresholding and LCM: launch-geometry and batch-split invariance of
// the per-sample reductions (spec §6.2, §6.3), the exact quantile (ties, NaN order), the LCM
// table, bad inputs.
#include <fmt/format.h>

#include <cmath>

#include "diffusion/diffusion_test_util.h"
#include "host/src/diffusion/diffusion_common.h"

namespace sparq::test::diff {
namespace {

const ScheduleConfig kSd{
    .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};

ScheduleConfig thresholded() {
  ScheduleConfig c = kSd;
  c.thresholding = true;
  c.dynamic_thresholding_ratio = 0.9;
  c.sample_max_value = 2.5;
  return c;
}

StepInputs inputs(std::int64_t n, std::uint64_t seed) {
  StepInputs in;
  in.x = random_normal(static_cast<std::size_t>(n), seed);
  in.model = random_normal(static_cast<std::size_t>(2 * n), seed + 1);
  in.history = random_normal(static_cast<std::size_t>(n), seed + 2);
  return in;
}

struct ReduceLocal {
  explicit ReduceLocal(std::size_t l) { detail_diffusion::set_reduce_local_size_for_testing(l); }
  ~ReduceLocal() { detail_diffusion::set_reduce_local_size_for_testing(0); }
};

// The work-group size of the step and reduction kernels never changes a bit (spec §6.3).
TEST(DiffusionGuide, LaunchGeometryInvariant) {
  Context dev = device_context(), cpu = fallback_context();
  // PoCL compiles a kernel per local size, so one sampler family keeps this test short.
  for (Sampler sm : {Sampler::DDIM}) {
    const Schedule s = make_schedule(sm, thresholded(), 10);
    const StepCoeffs k =
        step_coeffs(s, 3, {.cfg = true, .guidance_scale = 6.0f, .guidance_rescale = 0.7f});
    const std::vector<std::int64_t> shape{3, 4, 36, 36};  // 5184 per sample: 6 chunks -> 8
    const auto in = inputs(3 * 4 * 36 * 36, 41);
    const auto seeds = seeds_for(3, 5);
    const std::span<const StepCoeffs> ks(&k, 1);
    const auto want = run_step(cpu, ks, shape, in, DType::f16, DType::f32, seeds);
    for (std::size_t local : {32u, 64u, 128u, 256u}) {
      if (local > dev.device().max_work_group_size) continue;
      ReduceLocal scope(local);
      const auto got = run_step(dev, ks, shape, in, DType::f16, DType::f32, seeds);
      EXPECT_EQ(compare_bits(got.y, want.y), "") << sampler_name(sm) << " local " << local;
      EXPECT_EQ(compare_bits(got.x0, want.x0), "") << sampler_name(sm) << " local " << local;
    }
  }
}

// Sample b's bits are the same alone and inside a batch of 5: the std and the quantile are per
// sample (spec §6.2), with per-sample guidance and phi.
TEST(DiffusionGuide, BatchSplitInvariant) {
  Context dev = device_context();
  const Schedule s = make_schedule(Sampler::DDIM, thresholded(), 10);
  const std::int64_t S = 4 * 24 * 24;
  std::vector<StepCoeffs> ks;
  for (int b = 0; b < 5; ++b)
    ks.push_back(step_coeffs(s, 2 + b,
                             {.cfg = true,
                              .guidance_scale = 3.0f + b,
                              .guidance_rescale = 0.2f * static_cast<float>(b)}));
  const auto in5 = inputs(5 * S, 77);
  const auto seeds5 = seeds_for(5, 3);
  const auto all = run_step(dev, ks, {5, 4, 24, 24}, in5, DType::f32, DType::f32, seeds5);
  auto slice = [&](const std::vector<float>& v, std::int64_t at) {
    return std::vector<float>(v.begin() + at, v.begin() + at + S);
  };
  for (int b : {0, 3, 4}) {
    StepInputs one;
    one.x = slice(in5.x, b * S);
    one.model = slice(in5.model, b * S);
    const auto cond = slice(in5.model, (5 + b) * S);
    one.model.insert(one.model.end(), cond.begin(), cond.end());
    const std::span<const StepCoeffs> k1(&ks[static_cast<std::size_t>(b)], 1);
    const auto single = run_step(dev, k1, {1, 4, 24, 24}, one, DType::f32, DType::f32, {seeds5[b]});
    EXPECT_EQ(compare_bits(single.y, slice(all.y, b * S)), "") << "sample " << b;
  }
}

// Sample prediction makes x0 = m, so the threshold is a known order statistic: ties, NaN last.
TEST(DiffusionGuide, ThresholdQuantileExact) {
  Context dev = device_context(), cpu = fallback_context();
  ScheduleConfig c = thresholded();
  c.prediction = Prediction::Sample;
  c.sample_max_value = 100;
  const std::int64_t S = 1000;
  std::vector<float> m(static_cast<std::size_t>(2 * S));
  for (std::int64_t j = 0; j < S; ++j) {
    m[j] = static_cast<float>(j % 10) * (j % 2 ? -1.0f : 1.0f) * 0.5f;  // |m| in {0, .5, ..., 4.5}
    m[S + j] = -static_cast<float>(j) * 0.01f;                          // 0 .. -9.99
  }
  m[S + 500] = NAN;  // NaN sorts above +inf: the top order statistic
  for (double ratio : {0.0, 0.5, 0.9, 0.999, 1.0}) {
    c.dynamic_thresholding_ratio = ratio;
    const Schedule s = make_schedule(Sampler::DDIM, c, 10);
    const StepCoeffs k = step_coeffs(s, 4);
    StepInputs in;
    in.x = std::vector<float>(static_cast<std::size_t>(2 * S), 0.25f);
    in.model = m;
    const std::span<const StepCoeffs> ks(&k, 1);
    const auto a = run_step(dev, ks, {2, S}, in, DType::f32, DType::f32, seeds_for(2, 1));
    const auto b = run_step(cpu, ks, {2, S}, in, DType::f32, DType::f32, seeds_for(2, 1));
    EXPECT_EQ(compare_bits(a.y, b.y), "") << ratio;
    EXPECT_EQ(compare_bits(a.x0, b.x0), "") << ratio;
    // Sample 0: |m| has 100 copies of each of 0, 0.5, ..., 4.5; ranks lo/hi of p·999.
    const double pos = static_cast<double>(static_cast<float>(ratio)) * 999;
    const double lo = std::floor(pos / 100) * 0.5, hi = std::floor(std::ceil(pos) / 100) * 0.5;
    const double thr = std::clamp(lo + (pos - std::floor(pos)) * (hi - lo), 1.0, 100.0);
    // x0 = clamp(m, -thr, thr) / thr for an element of |m| = 4.5 (index 9: m = -4.5).
    EXPECT_NEAR(b.x0[9], -std::min(4.5, thr) / thr, 1e-6) << ratio;
    // Sample 1: the NaN is the largest pattern, so ratio 1 gives a NaN threshold.
    if (std::ceil(pos) >= 999)  // the interpolation reaches the NaN
      EXPECT_TRUE(std::isnan(b.x0[S + 3])) << "NaN threshold propagates";
    else
      EXPECT_FALSE(std::isnan(b.x0[S + 3])) << ratio;
  }
}

TEST(DiffusionGuide, LcmTimesteps) {
  EXPECT_EQ(make_schedule(Sampler::LCM, kSd, 4).timesteps,
            (std::vector<double>{999, 759, 499, 259}));
  EXPECT_EQ(make_schedule(Sampler::LCM, kSd, 8).timesteps,
            (std::vector<double>{999, 879, 759, 639, 499, 379, 259, 139}));
  EXPECT_EQ(make_schedule(Sampler::LCM, kSd, 1).timesteps, (std::vector<double>{999}));
  const Schedule s = make_schedule(Sampler::LCM, kSd, 4);
  EXPECT_TRUE(step_coeffs(s, 2).draws_noise());
  EXPECT_FALSE(step_coeffs(s, 3).draws_noise());  // last step: y = denoised
  EXPECT_EQ(model_input_scale(s, 2), 1.0);        // no sigma table: the input is not scaled
  EXPECT_EQ(model_timestep(s, 1), 759.0);
  EXPECT_EQ(model_input_scale(make_schedule(Sampler::DDIM, kSd, 10), 9), 1.0);
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

TEST(DiffusionBadInput, GuideThresholdLcm) {
  const Schedule s = make_schedule(Sampler::DDIM, kSd, 10);
  expect_error([&] { step_coeffs(s, 0, {.guidance_rescale = 0.5f}); }, "needs cfg");
  expect_error([&] { step_coeffs(s, 0, {.cfg = true, .guidance_rescale = NAN}); },
               "guidance_rescale");
  expect_error([&] { step_coeffs(s, 0, {.cfg = true, .guidance_rescale = 1.5f}); },
               "guidance_rescale");
  expect_error([&] { step_coeffs(s, 10); }, "outside the schedule");
  expect_error([&] { make_schedule(Sampler::LCM, kSd, 51); }, "original_inference_steps");
  expect_error([&] { make_schedule(Sampler::LCM, {.prediction = Prediction::Flow}, 4); }, "flow");
  auto bad = thresholded();
  bad.dynamic_thresholding_ratio = 1.5;
  expect_error([&] { make_schedule(Sampler::DDIM, bad, 4); }, "dynamic_thresholding_ratio");
  bad = thresholded();
  bad.sample_max_value = 0.5;
  expect_error([&] { make_schedule(Sampler::DDIM, bad, 4); }, "sample_max_value");
  // Rescale of a 1-element sample has no std.
  Context cpu = fallback_context();
  StepTensors t;
  t.latent = cpu.empty(DType::f32, {2, 1});
  t.model_out = cpu.empty(DType::f32, {4, 1});
  expect_error([&] { step(cpu, step_coeffs(s, 0, {.cfg = true, .guidance_rescale = 0.5f}), t); },
               ">= 2 elements");
}

}  // namespace
}  // namespace sparq::test::diff
