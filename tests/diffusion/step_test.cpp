// Every fused step: device == fallback bit for bit (samplers x predictions x CFG x dtypes x
// steps x shapes, per-sample coefficients), fallback ~ float64 diffusers formula, batch
// invariance.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "diffusion/diffusion_test_util.h"
#include "diffusion/step_math.h"
#include "reference/diffusion_ref.h"

namespace sparq::test::diff {
namespace {

struct Config {
  Sampler sampler;
  ScheduleConfig sc;
  int steps = 10;
  float eta = 0;
  std::string label;
  float rescale = 0;  // guidance rescale phi (applied where the test runs CFG)
};

std::vector<Config> configs() {
  std::vector<Config> v;
  auto add = [&](Sampler s, ScheduleConfig sc, int n, float eta, std::string label,
                 float rescale = 0) {
    v.push_back({s, std::move(sc), n, eta, std::move(label), rescale});
  };
  ScheduleConfig sd{
      .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
  add(Sampler::DDIM, sd, 10, 0.0f, "ddim eps");
  add(Sampler::DDIM, sd, 10, 0.7f, "ddim eps eta");
  auto vz = sd;
  vz.prediction = Prediction::VPrediction;
  vz.spacing = Spacing::Trailing;
  vz.rescale_betas_zero_snr = true;
  add(Sampler::DDIM, vz, 10, 0.0f, "ddim v zsnr trailing");
  auto smp = sd;
  smp.prediction = Prediction::Sample;
  smp.clip_sample = true;
  smp.use_clipped_model_output = true;
  add(Sampler::DDIM, smp, 10, 1.0f, "ddim sample clip");
  add(Sampler::Euler, sd, 10, 0, "euler eps");
  auto ev = sd;
  ev.prediction = Prediction::VPrediction;
  add(Sampler::Euler, ev, 10, 0, "euler v");
  auto churn = sd;
  churn.s_churn = 1.0;
  churn.karras_sigmas = true;
  add(Sampler::Euler, churn, 10, 0, "euler eps churn karras");
  add(Sampler::EulerAncestral, sd, 10, 0, "euler-a eps");
  add(Sampler::EulerAncestral, ev, 10, 0, "euler-a v");
  add(Sampler::DPMpp2M, sd, 10, 0, "dpm++2m eps");
  auto kv = ev;
  kv.karras_sigmas = true;
  add(Sampler::DPMpp2M, kv, 10, 0, "dpm++2m v karras");
  ScheduleConfig flow{.prediction = Prediction::Flow, .shift = 3.0};
  add(Sampler::DPMpp2M, flow, 10, 0, "dpm++2m flow");
  auto sde = sd;
  sde.karras_sigmas = true;
  add(Sampler::DPMpp2MSDE, sde, 10, 0, "dpm++2m-sde eps karras");
  add(Sampler::FlowEuler, flow, 28, 0, "flow euler sd3");
  auto st = flow;
  st.stochastic_sampling = true;
  add(Sampler::FlowEuler, st, 8, 0, "flow euler stochastic");
  ScheduleConfig scm{.prediction = Prediction::Flow};
  add(Sampler::SCM, scm, 2, 0, "scm 2-step");
  add(Sampler::SCM, scm, 4, 0, "scm 4-step");
  add(Sampler::LCM, sd, 4, 0, "lcm eps 4-step");
  auto lv = sd;
  lv.prediction = Prediction::VPrediction;
  add(Sampler::LCM, lv, 8, 0, "lcm v 8-step", 0.7f);
  // Guidance rescale, clipping and dynamic thresholding composed with every sampler family.
  add(Sampler::DDIM, sd, 10, 0.0f, "ddim eps rescale", 0.7f);
  auto clip = sd;
  clip.clip_sample = true;
  clip.clip_sample_range = 1.5;
  add(Sampler::Euler, clip, 10, 0, "euler eps clip", 0.5f);
  auto th = sd;
  th.thresholding = true;
  th.dynamic_thresholding_ratio = 0.9;
  th.sample_max_value = 2.5;
  auto thc = th;
  thc.use_clipped_model_output = true;
  add(Sampler::DDIM, thc, 10, 0.5f, "ddim thresh clipped-eps", 0.7f);
  add(Sampler::EulerAncestral, th, 10, 0, "euler-a thresh");
  add(Sampler::DPMpp2M, th, 10, 0, "dpm++2m thresh", 1.0f);
  add(Sampler::LCM, th, 4, 0, "lcm thresh");
  auto fclip = flow;
  fclip.clip_sample = true;
  add(Sampler::FlowEuler, fclip, 8, 0, "flow euler clip", 0.7f);
  auto fth = flow;
  fth.thresholding = true;
  fth.dynamic_thresholding_ratio = 0.8;
  fth.sample_max_value = 1.5;
  add(Sampler::FlowEuler, fth, 8, 0, "flow euler thresh");
  auto sth = scm;
  sth.thresholding = true;
  sth.dynamic_thresholding_ratio = 0.75;
  sth.sample_max_value = 3.0;
  add(Sampler::SCM, sth, 2, 0, "scm thresh", 0.3f);
  return v;
}

std::vector<int> steps_of(int n) {
  std::vector<int> s{0};
  if (n > 2) s.push_back(1);
  if (n > 3) s.push_back(n / 2);
  if (n > 1) s.push_back(n - 1);
  return s;
}

StepInputs inputs(std::int64_t n, bool cfg, std::uint64_t seed) {
  StepInputs in;
  in.x = random_normal(static_cast<std::size_t>(n), seed);
  in.model = random_normal(static_cast<std::size_t>(cfg ? 2 * n : n), seed + 1);
  in.history = random_normal(static_cast<std::size_t>(n), seed + 2);
  return in;
}

void expect_outputs_equal(const StepOutputs& a, const StepOutputs& b, const std::string& what) {
  EXPECT_EQ(compare_bits(a.y, b.y), "") << what << ": latent";
  EXPECT_EQ(compare_bits(a.x0, b.x0), "") << what << ": x0";
  EXPECT_EQ(compare_bits(a.history, b.history), "") << what << ": history";
  EXPECT_EQ(compare_bits(a.next, b.next), "") << what << ": model_in_next";
}

TEST(DiffusionStepExact, AllSamplers) {
  Context dev = device_context(), cpu = fallback_context();
  const DType dts[] = {DType::f32, DType::f16, DType::bf16};
  int variant = 0;
  for (const auto& c : configs()) {
    const Schedule s = make_schedule(c.sampler, c.sc, c.steps);
    for (int i : steps_of(c.steps)) {
      const bool cfg = (variant % 2) == 1;
      const DType mdt = dts[variant % 3], ndt = dts[(variant / 3) % 3];
      ++variant;
      const StepCoeffs k = step_coeffs(s, i,
                                       {.eta = c.eta,
                                        .cfg = cfg,
                                        .guidance_scale = 7.5f,
                                        .guidance_rescale = cfg ? c.rescale : 0.0f});
      // 4·40·40 = 6400 elements per sample: 7 chunks of the rescale tree (padded to 8).
      const std::vector<std::int64_t> shape{2, 4, 40, 40};
      const auto in = inputs(2 * 4 * 40 * 40, cfg, 100 + variant);
      const auto seeds = seeds_for(2, variant);
      const std::string what = fmt::format("{} step {} cfg={} model={} next={}", c.label, i, cfg,
                                           dtype_name(mdt), dtype_name(ndt));
      const std::span<const StepCoeffs> ks(&k, 1);
      expect_outputs_equal(run_step(dev, ks, shape, in, mdt, ndt, seeds),
                           run_step(cpu, ks, shape, in, mdt, ndt, seeds), what);
    }
  }
}

// Larger latents and batches, external noise, per-sample coefficients at different steps.
TEST(DiffusionStepExact, ShapesAndPerSample) {
  Context dev = device_context(), cpu = fallback_context();
  const ScheduleConfig sd{
      .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
  const Schedule ddim = make_schedule(Sampler::DDIM, sd, 20);
  struct Shape {
    std::vector<std::int64_t> dims;
  };
  for (const auto& sh : {Shape{{16, 4, 64, 64}}, Shape{{1, 16, 128, 128}}, Shape{{3, 16, 128, 128}},
                         Shape{{5, 3, 7, 11}}}) {
    std::int64_t n = 1;
    for (auto d : sh.dims) n *= d;
    const int b = static_cast<int>(sh.dims[0]);
    std::vector<StepCoeffs> ks;
    for (int i = 0; i < b; ++i) {
      auto k = step_coeffs(ddim, (3 * i) % 20,
                           {.eta = 0.3f,
                            .cfg = true,
                            .guidance_scale = 1.0f + i,
                            .guidance_rescale = (i % 3) * 0.35f});
      ks.push_back(k);
    }
    auto in = inputs(n, true, 7 + b);
    const auto seeds = seeds_for(b, 3);
    const std::string what = fmt::format("per-sample ddim shape [{}]", fmt::join(sh.dims, ","));
    expect_outputs_equal(run_step(dev, ks, sh.dims, in, DType::bf16, DType::f16, seeds),
                         run_step(cpu, ks, sh.dims, in, DType::bf16, DType::f16, seeds), what);
    in.noise = random_normal(static_cast<std::size_t>(n), 5);
    const Schedule ea = make_schedule(Sampler::EulerAncestral, sd, 20);
    const StepCoeffs k = step_coeffs(ea, 4);
    const std::span<const StepCoeffs> one(&k, 1);
    in.model.resize(static_cast<std::size_t>(n));
    expect_outputs_equal(run_step(dev, one, sh.dims, in, DType::f32, DType::f32, seeds),
                         run_step(cpu, one, sh.dims, in, DType::f32, DType::f32, seeds),
                         what + " euler-a external noise");
  }
}

// Every sampler family at the latent sizes (4x64x64 to 16x128x128, batch 1 to 16), CFG
// with bf16 outputs, a middle step; rescale and thresholding on some. (Larger batches of the big
// latents run in the bench cases, validated the same way.)
TEST(DiffusionStepExact, EverySamplerEveryShape) {
  Context dev = device_context(), cpu = fallback_context();
  const ScheduleConfig sd{
      .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
  auto th = sd;
  th.thresholding = true;
  th.dynamic_thresholding_ratio = 0.95;
  th.sample_max_value = 3.0;
  auto churn = sd;
  churn.s_churn = 1.0;
  const ScheduleConfig flow{
      .prediction = Prediction::Flow, .shift = 3.0, .stochastic_sampling = true};
  struct Kind {
    Sampler s;
    ScheduleConfig c;
    int steps;
    float eta, rescale;
  };
  const Kind kinds[] = {{Sampler::DDIM, sd, 20, 0.5f, 0.7f},
                        {Sampler::Euler, churn, 20, 0, 0},
                        {Sampler::EulerAncestral, th, 20, 0, 0},
                        {Sampler::DPMpp2M, sd, 20, 0, 0.5f},
                        {Sampler::DPMpp2MSDE, sd, 20, 0, 0},
                        {Sampler::FlowEuler, flow, 20, 0, 0},
                        {Sampler::SCM, {.prediction = Prediction::Flow}, 2, 0, 0},
                        {Sampler::LCM, th, 4, 0, 0.3f}};
  const std::vector<std::int64_t> shapes[] = {{1, 4, 64, 64}, {16, 4, 64, 64}, {1, 16, 128, 128}};
  int v = 0;
  for (const auto& shape : shapes)
    for (const auto& kd : kinds) {
      ++v;
      const Schedule s = make_schedule(kd.s, kd.c, kd.steps);
      const int i = kd.steps / 2;
      const StepCoeffs k = step_coeffs(
          s, i,
          {.eta = kd.eta, .cfg = true, .guidance_scale = 5.0f, .guidance_rescale = kd.rescale});
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
      const auto in = inputs(n, true, 900 + v);
      const auto seeds = seeds_for(static_cast<int>(shape[0]), v);
      const std::span<const StepCoeffs> ks(&k, 1);
      expect_outputs_equal(run_step(dev, ks, shape, in, DType::bf16, DType::f16, seeds),
                           run_step(cpu, ks, shape, in, DType::bf16, DType::f16, seeds),
                           fmt::format("{} [{}]", sampler_name(kd.s), fmt::join(shape, ",")));
    }
}

// Views at element offsets 1..3 take the scalar path of step.cl, aligned data the quad-vector
// path: the same bits either way, and equal to the fallback.
TEST(DiffusionStepExact, UnalignedViewsEqualAligned) {
  Context dev = device_context(), cpu = fallback_context();
  const ScheduleConfig sd{
      .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
  const std::vector<std::int64_t> shape{3, 4, 8, 8};
  int v = 0;
  for (Sampler smp : {Sampler::DDIM, Sampler::EulerAncestral, Sampler::DPMpp2MSDE}) {
    const Schedule s = make_schedule(smp, sd, 10);
    const StepCoeffs k = step_coeffs(
        s, 5, {.eta = smp == Sampler::DDIM ? 1.0f : 0.0f, .cfg = true, .guidance_scale = 4.0f});
    const std::span<const StepCoeffs> ks(&k, 1);
    const auto in = inputs(3 * 4 * 8 * 8, true, 4000 + v);
    const auto seeds = seeds_for(3, 77 + v);
    ++v;
    const auto aligned = run_step(dev, ks, shape, in, DType::bf16, DType::f16, seeds);
    for (std::int64_t off : {1, 2, 3}) {
      const std::string what = fmt::format("{} offset {}", sampler_name(smp), off);
      expect_outputs_equal(run_step(dev, ks, shape, in, DType::bf16, DType::f16, seeds, true, off),
                           aligned, what + " vs aligned");
      expect_outputs_equal(run_step(cpu, ks, shape, in, DType::bf16, DType::f16, seeds, true, off),
                           aligned, what + " fallback");
    }
  }
}

// The launch tuning knob (quads per work-item, work-group size) never changes a bit: steps with
// and without noise, randn and renoise under non-default configs equal the fallback.
TEST(DiffusionStepExact, OtherLaunchConfigs) {
  Context dev = device_context(), cpu = fallback_context();
  const ScheduleConfig sd{
      .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
  int v = 0;
  for (const char* tune : {"qpt=4,local=32"}) {
    ASSERT_EQ(setenv("SPARQ_TUNE_DIFFUSION", tune, 1), 0);
    for (const std::vector<std::int64_t>& shape :
         {std::vector<std::int64_t>{3, 5, 7, 9}, std::vector<std::int64_t>{2, 4, 16, 16}}) {
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
      for (Sampler smp : {Sampler::DDIM, Sampler::DPMpp2MSDE}) {
        const Schedule s = make_schedule(smp, sd, 10);
        const StepCoeffs k = step_coeffs(
            s, 5, {.eta = smp == Sampler::DDIM ? 1.0f : 0.0f, .cfg = true, .guidance_scale = 3.0f});
        const std::span<const StepCoeffs> ks(&k, 1);
        const auto in = inputs(n, true, 5000 + v);
        const auto seeds = seeds_for(static_cast<int>(shape[0]), 91 + v);
        ++v;
        expect_outputs_equal(
            run_step(dev, ks, shape, in, DType::f32, DType::bf16, seeds),
            run_step(cpu, ks, shape, in, DType::f32, DType::bf16, seeds),
            fmt::format("{} {} [{}]", tune, sampler_name(smp), fmt::join(shape, ",")));
      }
      const auto seeds = seeds_for(static_cast<int>(shape[0]), 7);
      const Tensor sd_dev = make_seeds(dev, seeds), sd_cpu = make_seeds(cpu, seeds);
      EXPECT_EQ(compare_bits(randn(dev, sd_dev, shape).download<float>(),
                             randn(cpu, sd_cpu, shape).download<float>()),
                "")
          << tune << " randn";
      const auto x0 = random_normal(static_cast<std::size_t>(n), 600 + v);
      const RenoiseCoeffs rc{.a = 0.8f, .b = 0.6f, .step = 3};
      const std::span<const RenoiseCoeffs> rcs(&rc, 1);
      EXPECT_EQ(compare_bits(
                    renoise(dev, dev.upload(x0, DType::f32, shape), sd_dev, rcs).download<float>(),
                    renoise(cpu, cpu.upload(x0, DType::f32, shape), sd_cpu, rcs).download<float>()),
                "")
          << tune << " renoise";
    }
  }
  unsetenv("SPARQ_TUNE_DIFFUSION");
}

// Sample b's bits are the same alone and inside a batch of 7 (per-sample seeds and coefficients).
TEST(DiffusionStepExact, BatchInvariant) {
  Context dev = device_context();
  const Schedule s = make_schedule(Sampler::DPMpp2MSDE, {}, 10);
  const StepCoeffs k = step_coeffs(s, 3, {.cfg = true, .guidance_scale = 5.0f});
  const std::int64_t S = 4 * 16 * 16;
  const auto in7 = inputs(7 * S, true, 11);
  const auto seeds7 = seeds_for(7, 9);
  const std::span<const StepCoeffs> ks(&k, 1);
  const auto all = run_step(dev, ks, {7, 4, 16, 16}, in7, DType::f32, DType::f32, seeds7);
  const int b = 4;
  StepInputs one;
  auto slice = [&](const std::vector<float>& v, std::int64_t at) {
    return std::vector<float>(v.begin() + at, v.begin() + at + S);
  };
  one.x = slice(in7.x, b * S);
  one.history = slice(in7.history, b * S);
  one.model = slice(in7.model, b * S);  // uncond of sample b
  const auto cond = slice(in7.model, (7 + b) * S);
  one.model.insert(one.model.end(), cond.begin(), cond.end());
  const auto single = run_step(dev, ks, {1, 4, 16, 16}, one, DType::f32, DType::f32, {seeds7[b]});
  EXPECT_EQ(compare_bits(single.y, slice(all.y, b * S)), "");
  EXPECT_EQ(compare_bits(single.history, slice(all.history, b * S)), "");
}

// Fallback vs the float64 diffusers formula, per step, every config.
// torch.quantile(v, p) with linear interpolation, in double.
double quantile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - std::floor(pos)) * (v[hi] - v[lo]);
}

// Fallback vs the float64 diffusers formula, per step, every config (CFG, guidance rescale with
// the unbiased std of diffusers' rescale_noise_cfg, dynamic thresholding with torch.quantile).
TEST(DiffusionStepReference, AllSamplers) {
  Context cpu = fallback_context();
  for (const auto& c : configs()) {
    const Schedule s = make_schedule(c.sampler, c.sc, c.steps);
    Schedule raw = s;  // the same steps without clip / threshold: the x0 the quantile is taken of
    raw.config.thresholding = false;
    raw.config.clip_sample = false;
    for (int i : steps_of(c.steps)) {
      const float g = 2.0f;
      const StepCoeffs k = step_coeffs(
          s, i, {.eta = c.eta, .cfg = true, .guidance_scale = g, .guidance_rescale = c.rescale});
      const std::int64_t S = 4 * 32 * 32;
      const auto in = inputs(2 * S, true, 300 + i);
      const auto seeds = seeds_for(2, 77);
      const std::span<const StepCoeffs> ks(&k, 1);
      const auto out = run_step(cpu, ks, {2, 4, 32, 32}, in, DType::f32, DType::f32, seeds, false);
      std::vector<float> z;
      if (k.draws_noise()) {
        const std::uint32_t tag = (k.flags & SQ_DF_CHURN) ? kTagChurn : kTagStepNoise;
        z = randn(cpu, make_seeds(cpu, seeds), {2, S},
                  {.step = static_cast<std::uint32_t>(i), .tag = tag})
                .download<float>();
      }
      double worst = 0;
      for (std::int64_t b = 0; b < 2; ++b) {
        std::vector<double> m(static_cast<std::size_t>(S)), cond(m.size());
        for (std::int64_t j = 0; j < S; ++j) {
          const double u = in.model[b * S + j], cc = in.model[2 * S + b * S + j];
          cond[j] = cc;
          m[j] = u + g * (cc - u);
        }
        if (c.rescale > 0) {  // diffusers rescale_noise_cfg
          auto stdev = [&](const std::vector<double>& v) {
            double mean = 0, ss = 0;
            for (double x : v) mean += x;
            mean /= static_cast<double>(v.size());
            for (double x : v) ss += (x - mean) * (x - mean);
            return std::sqrt(ss / static_cast<double>(v.size() - 1));
          };
          const double f = c.rescale * stdev(cond) / stdev(m) + 1 - c.rescale;
          for (auto& v : m) v *= f;
        }
        double thr = 1.0;
        if (c.sc.thresholding) {
          std::vector<double> ax(m.size());
          for (std::int64_t j = 0; j < S; ++j) {
            const std::int64_t e = b * S + j;
            double x0;
            ref::diffusion_step(raw, i, c.eta, in.x[e], m[j], in.history[e], z.empty() ? 0.0 : z[e],
                                &x0);
            ax[j] = std::fabs(x0);
          }
          thr =
              std::clamp(quantile(ax, c.sc.dynamic_thresholding_ratio), 1.0, c.sc.sample_max_value);
        }
        for (std::int64_t j = 0; j < S; ++j) {
          const std::int64_t e = b * S + j;
          double x0;
          const double y = ref::diffusion_step(s, i, c.eta, in.x[e], m[j], in.history[e],
                                               z.empty() ? 0.0 : z[e], &x0, thr);
          const double scale = 1 + std::fabs(in.x[e]) + std::fabs(m[j]) + std::fabs(y);
          worst =
              std::max({worst, std::fabs(out.y[e] - y) / scale, std::fabs(out.x0[e] - x0) / scale});
        }
      }
      EXPECT_LT(worst, 1e-5) << c.label << " step " << i;
    }
  }
}

}  // namespace
}  // namespace sparq::test::diff
