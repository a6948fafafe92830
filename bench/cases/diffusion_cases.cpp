// Diffusion sampling cases: one fused step per sampler (CFG on, bf16 model outputs), randn.
//
// Counting (specs/diffusion_sampling.md §5): bytes = latent read + write (8) + model output read
// (s_m, twice with CFG) per element, + 8 more for DPM-Solver's history read and x0 write;
// randn writes 4. flops = ~20 per element for a step (spec §5 bound), 0 for randn (integer work).
// Validation: the step is in place, so validate() restores the initial latent, runs the step once
// more on the device and compares it with one fallback step on the same inputs (full tensor).
#include <fmt/format.h>

#include "cases/case.h"

namespace sparq::bench {
namespace {

using namespace sparq::diffusion;

struct StepShape {
  Sampler sampler;
  float eta;
  std::int64_t batch, c, h, w;
  const char* label;
};

class StepInstance : public Instance {
 public:
  StepInstance(Context& ctx, StepShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    ScheduleConfig sc{
        .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
    if (s.sampler == Sampler::FlowEuler || s.sampler == Sampler::SCM) {
      sc = {.prediction = Prediction::Flow, .shift = 3.0};
    }
    const Schedule sched = make_schedule(s.sampler, sc, s.sampler == Sampler::SCM ? 2 : 20);
    k_ = step_coeffs(sched, sched.num_steps > 2 ? 5 : 0,
                     {.eta = s.eta, .cfg = true, .guidance_scale = 7.5f});
    n_ = s.batch * s.c * s.h * s.w;
    x_ = random_normal(static_cast<std::size_t>(n_), seed);
    m_ = random_normal(static_cast<std::size_t>(2 * n_), seed + 1);
    seeds_.resize(static_cast<std::size_t>(s.batch));
    for (std::size_t b = 0; b < seeds_.size(); ++b) seeds_[b] = seed * 131 + b;
    t_ = make(ctx_);
  }

  void run() override { step(ctx_, k_, t_); }

  Validation validate(Context& fallback) override {
    t_.latent = upload_as(ctx_, x_, DType::f32, shape());
    if (t_.history.defined()) t_.history = upload_as(ctx_, x_, DType::f32, shape());
    step(ctx_, k_, t_);
    StepTensors f = make(fallback);
    step(fallback, k_, f);
    BitComparer cmp;
    cmp.compare(t_.latent.download<float>(), f.latent.download<float>(), "latent");
    if (f.history.defined())
      cmp.compare(t_.history.download<float>(), f.history.download<float>(), "history");
    return cmp.result("full");
  }

 private:
  std::vector<std::int64_t> shape() const { return {s_.batch, s_.c, s_.h, s_.w}; }
  StepTensors make(Context& ctx) {
    StepTensors t;
    t.latent = upload_as(ctx, x_, DType::f32, shape());
    t.model_out = upload_as(ctx, m_, DType::bf16, {2 * s_.batch, s_.c, s_.h, s_.w});
    if (s_.sampler == Sampler::DPMpp2M || s_.sampler == Sampler::DPMpp2MSDE)
      t.history = upload_as(ctx, x_, DType::f32, shape());
    t.seeds = make_seeds(ctx, seeds_);
    return t;
  }
  Context ctx_;
  StepShape s_;
  StepCoeffs k_;
  std::int64_t n_ = 0;
  std::vector<float> x_, m_;
  std::vector<std::uint64_t> seeds_;
  StepTensors t_;
};

class RandnInstance : public Instance {
 public:
  RandnInstance(Context& ctx, std::int64_t b, std::int64_t per, std::uint64_t seed)
      : ctx_(ctx), shape_{b, per} {
    for (std::int64_t i = 0; i < b; ++i) seeds_.push_back(seed * 7 + static_cast<std::uint64_t>(i));
    sd_ = make_seeds(ctx_, seeds_);
  }
  void run() override { out_ = randn(ctx_, sd_, shape_); }
  Validation validate(Context& fallback) override {
    BitComparer cmp;
    cmp.compare(out_.download<float>(),
                randn(fallback, make_seeds(fallback, seeds_), shape_).download<float>(), "noise");
    return cmp.result("full");
  }

 private:
  Context ctx_;
  std::vector<std::int64_t> shape_;
  std::vector<std::uint64_t> seeds_;
  Tensor sd_, out_;
};

Case step_case(StepShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "diffusion";
  c.op = "step";
  c.name = fmt::format("diffusion/step {} cfg B{} {}x{}x{} bf16", s.label, s.batch, s.c, s.h, s.w);
  c.size = size;
  c.seed = seed;
  const double n = static_cast<double>(s.batch * s.c * s.h * s.w);
  c.params = {{"batch", s.batch}, {"channels", s.c}, {"height", s.h}, {"width", s.w}};
  const bool dpm = s.sampler == Sampler::DPMpp2M || s.sampler == Sampler::DPMpp2MSDE;
  c.bytes_moved = n * (8 + 2 * 2 + (dpm ? 8 : 0));
  c.flops = 20 * n;
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<StepInstance>(ctx, s, seed); };
  return c;
}

}  // namespace

std::vector<Case> diffusion_cases() {
  std::vector<Case> cases;
  const StepShape kinds[] = {
      {Sampler::DDIM, 0.0f, 0, 0, 0, 0, "ddim"},
      {Sampler::DDIM, 1.0f, 0, 0, 0, 0, "ddim-eta1"},
      {Sampler::Euler, 0.0f, 0, 0, 0, 0, "euler"},
      {Sampler::EulerAncestral, 0.0f, 0, 0, 0, 0, "euler-a"},
      {Sampler::DPMpp2M, 0.0f, 0, 0, 0, 0, "dpm++2m"},
      {Sampler::DPMpp2MSDE, 0.0f, 0, 0, 0, 0, "dpm++2m-sde"},
      {Sampler::FlowEuler, 0.0f, 0, 0, 0, 0, "flow-euler"},
      {Sampler::SCM, 0.0f, 0, 0, 0, 0, "scm"},
  };
  struct Size {
    std::int64_t b, c, h, w;
    SizeClass cls;
  };
  const Size sizes[] = {{1, 4, 64, 64, SizeClass::small},
                        {1, 4, 128, 128, SizeClass::large},
                        {16, 16, 128, 128, SizeClass::large},
                        {64, 16, 128, 128, SizeClass::large}};
  std::uint64_t seed = 700;
  for (const auto& sz : sizes)
    for (auto k : kinds) {
      if (sz.cls == SizeClass::small && k.sampler != Sampler::DDIM && k.sampler != Sampler::DPMpp2M)
        continue;
      k.batch = sz.b;
      k.c = sz.c;
      k.h = sz.h;
      k.w = sz.w;
      cases.push_back(step_case(k, sz.cls, seed++));
    }
  for (auto [b, per, cls] :
       {std::tuple{1, 16384, SizeClass::small}, std::tuple{64, 16 * 128 * 128, SizeClass::large}}) {
    Case c;
    c.family = "diffusion";
    c.op = "randn";
    c.name = fmt::format("diffusion/randn B{} S{}", b, per);
    c.size = cls;
    c.seed = seed++;
    c.params = {{"batch", b}, {"per_sample", per}};
    c.bytes_moved = 4.0 * b * per;
    c.prepare = [b, per, s = c.seed](Context& ctx) {
      return std::make_unique<RandnInstance>(ctx, b, per, s);
    };
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace sparq::bench
