// Diffusion sampling cases: one fused step per sampler (CFG on, bf16 or f32 model outputs), the
// per-step time of a 50-step loop (the measure), randn.
//
// Counting (specs/diffusion_sampling.md §5): bytes = latent read + write (8) + model output read
// (s_m, twice with CFG) per element, + 8 more for DPM-Solver's history read and x0 write;
// randn writes 4. flops = ~20 per element for a step (spec §5 bound), 0 for randn (integer work).
// A loop case counts 50 steps' bytes and flops per call.
// Anchors: the f32 cases at diffusion_anchor.py's shapes (ddim, euler, flow_euler; CFG, fp32
// x / cond / uncond = 16 bytes per element, the anchor's one-pass floor) carry a step anchor key,
// so `sparq-bench --anchor anchor_diffusion.json` prints sparq/anchor per-step ratios. The loop
// cases are timed by host wall clock around 50 step() calls and one finish() (launches included).
// Validation: the step is in place, so validate() restores the initial latent, runs the step once
// more on the device and compares it with one fallback step on the same inputs (full tensor).
// Loop cases rerun the 50 steps on the device and compare the first and last sample with a
// fallback loop over those samples alone (per-sample seeds and coefficients: spec §6.2).
#include <fmt/format.h>

#include <string>
#include <utility>

#include "cases/case.h"

namespace sparq::bench {
namespace {

using namespace sparq::diffusion;

struct StepShape {
  Sampler sampler;
  float eta;
  std::int64_t batch, c, h, w;
  const char* label;
  DType model_dtype = DType::bf16;
  const char* anchor_step = nullptr;  // diffusion_anchor.py's step name, or none
  float rescale = 0;                  // guidance rescale phi
  bool thresh = false;                // dynamic thresholding (ratio 0.995, sample_max 1.5)
};

constexpr int kLoopSteps = 50;

Schedule schedule_of(Sampler sampler, int steps, bool thresh = false) {
  ScheduleConfig sc{
      .beta_schedule = BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
  if (sampler == Sampler::FlowEuler || sampler == Sampler::SCM)
    sc = {.prediction = Prediction::Flow, .shift = 3.0};
  sc.thresholding = thresh;
  sc.sample_max_value = 1.5;
  return make_schedule(sampler, sc, steps);
}

bool is_dpm(Sampler s) {
  return s == Sampler::DPMpp2M || s == Sampler::DPMpp2MSDE;
}

// Inputs of a step case from its seed; tensors made on any Context.
struct StepData {
  StepShape s;
  std::vector<float> x, m;
  std::vector<std::uint64_t> seeds;
  StepData(StepShape shape, std::uint64_t seed) : s(shape) {
    const std::int64_t n = s.batch * s.c * s.h * s.w;
    x = random_normal(static_cast<std::size_t>(n), seed);
    m = random_normal(static_cast<std::size_t>(2 * n), seed + 1);
    seeds.resize(static_cast<std::size_t>(s.batch));
    for (std::size_t b = 0; b < seeds.size(); ++b) seeds[b] = seed * 131 + b;
  }
  std::vector<std::int64_t> shape(std::int64_t batch) const { return {batch, s.c, s.h, s.w}; }
  // Tensors of samples [b0, b0 + nb) (the model output keeps the [uncond; cond] layout).
  StepTensors make(Context& ctx, std::int64_t b0, std::int64_t nb) const {
    const std::size_t per = static_cast<std::size_t>(s.c * s.h * s.w);
    auto rows = [&](const std::vector<float>& v, std::int64_t from) {
      return std::vector<float>(v.begin() + static_cast<std::ptrdiff_t>(from * per),
                                v.begin() + static_cast<std::ptrdiff_t>((from + nb) * per));
    };
    StepTensors t;
    const auto xs = rows(x, b0);
    t.latent = upload_as(ctx, xs, DType::f32, shape(nb));
    auto ms = rows(m, b0);
    const auto cond = rows(m, s.batch + b0);
    ms.insert(ms.end(), cond.begin(), cond.end());
    t.model_out = upload_as(ctx, ms, s.model_dtype, shape(2 * nb));
    if (is_dpm(s.sampler)) t.history = upload_as(ctx, xs, DType::f32, shape(nb));
    t.seeds = make_seeds(ctx, std::span<const std::uint64_t>(seeds).subspan(
                                  static_cast<std::size_t>(b0), static_cast<std::size_t>(nb)));
    return t;
  }
};

class StepInstance : public Instance {
 public:
  StepInstance(Context& ctx, StepShape s, std::uint64_t seed) : ctx_(ctx), d_(s, seed) {
    const Schedule sched = schedule_of(s.sampler, s.sampler == Sampler::SCM ? 2 : 20, s.thresh);
    k_ = step_coeffs(
        sched, sched.num_steps > 2 ? 5 : 0,
        {.eta = s.eta, .cfg = true, .guidance_scale = 7.5f, .guidance_rescale = s.rescale});
    t_ = d_.make(ctx_, 0, s.batch);
  }

  void run() override { step(ctx_, k_, t_); }

  Validation validate(Context& fallback) override {
    t_ = d_.make(ctx_, 0, d_.s.batch);
    step(ctx_, k_, t_);
    StepTensors f = d_.make(fallback, 0, d_.s.batch);
    step(fallback, k_, f);
    BitComparer cmp;
    cmp.compare(t_.latent.download<float>(), f.latent.download<float>(), "latent");
    if (f.history.defined())
      cmp.compare(t_.history.download<float>(), f.history.download<float>(), "history");
    return cmp.result("full");
  }

 private:
  Context ctx_;
  StepData d_;
  StepCoeffs k_;
  StepTensors t_;
};

// 50 steps of one sampler on device buffers, as an app's loop issues them (the network's output
// stays the same tensor: sparq's part of a step is what is timed).
class LoopInstance : public Instance {
 public:
  LoopInstance(Context& ctx, StepShape s, std::uint64_t seed) : ctx_(ctx), d_(s, seed) {
    const Schedule sched = schedule_of(s.sampler, kLoopSteps, s.thresh);
    for (int i = 0; i < kLoopSteps; ++i)
      k_.push_back(step_coeffs(
          sched, i,
          {.eta = s.eta, .cfg = true, .guidance_scale = 7.5f, .guidance_rescale = s.rescale}));
    t_ = d_.make(ctx_, 0, s.batch);
  }

  void run() override {
    for (const auto& k : k_) step(ctx_, k, t_);
  }

  Validation validate(Context& fallback) override {
    t_ = d_.make(ctx_, 0, d_.s.batch);
    run();
    const auto got = t_.latent.download<float>();
    const std::size_t per = static_cast<std::size_t>(d_.s.c * d_.s.h * d_.s.w);
    BitComparer cmp;
    for (std::int64_t b : {std::int64_t{0}, d_.s.batch - 1}) {
      StepTensors f = d_.make(fallback, b, 1);
      for (const auto& k : k_) step(fallback, k, f);
      cmp.compare(got.data() + static_cast<std::size_t>(b) * per, f.latent.download<float>().data(),
                  per, fmt::format("sample {}", b));
      if (d_.s.batch == 1) break;
    }
    return cmp.result(d_.s.batch <= 2 ? "full" : "first and last sample");
  }

 private:
  Context ctx_;
  StepData d_;
  std::vector<StepCoeffs> k_;
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

Case step_case(StepShape s, SizeClass size, std::uint64_t seed, bool loop) {
  Case c;
  c.family = "diffusion";
  c.op = loop ? "loop50" : "step";
  const char* dt = s.model_dtype == DType::f32 ? "f32" : "bf16";
  const std::string extra =
      std::string(s.rescale > 0 ? "+rescale" : "") + (s.thresh ? "+thresh" : "");
  c.name = fmt::format("diffusion/{} {} cfg{} B{} {}x{}x{} {}", loop ? "loop50" : "step", s.label,
                       extra, s.batch, s.c, s.h, s.w, dt);
  c.size = size;
  c.seed = seed;
  const double n = static_cast<double>(s.batch * s.c * s.h * s.w);
  const int steps = loop ? kLoopSteps : 1;
  c.params = {{"batch", s.batch}, {"channels", s.c},
              {"height", s.h},    {"width", s.w},
              {"steps", steps},   {"model_bytes", s.model_dtype == DType::f32 ? 4 : 2}};
  const double sm = s.model_dtype == DType::f32 ? 4 : 2;
  // + guidance rescale's statistics pass (reads u, c); + dynamic thresholding's x0 pre-pass
  // (reads x, u, c; writes x0) and three histogram passes over x0.
  c.bytes_moved = steps * n *
                  (8 + 2 * sm + (is_dpm(s.sampler) ? 8 : 0) + (s.rescale > 0 ? 2 * sm : 0) +
                   (s.thresh ? 4 + 2 * sm + 4 + 12 : 0));
  c.flops = steps * 20 * n;
  c.steps_per_call = steps;
  c.wall_time = loop;
  if (s.anchor_step)
    c.step_anchor =
        StepAnchorKey{fmt::format("{}x{}x{}x{}", s.batch, s.c, s.h, s.w), s.anchor_step};
  if (loop)
    c.prepare = [s, seed](Context& ctx) { return std::make_unique<LoopInstance>(ctx, s, seed); };
  else
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
      cases.push_back(step_case(k, sz.cls, seed++, false));
    }
  // diffusion_anchor.py's steps at its shapes (+ 64x16x128x128, the bandwidth goal's size), fp32
  // model outputs as the anchor times them: one launch (kernel time) and the 50-step loop (wall).
  const StepShape anchored[] = {
      {Sampler::DDIM, 0.0f, 0, 0, 0, 0, "ddim", DType::f32, "ddim"},
      {Sampler::Euler, 0.0f, 0, 0, 0, 0, "euler", DType::f32, "euler"},
      {Sampler::FlowEuler, 0.0f, 0, 0, 0, 0, "flow-euler", DType::f32, "flow_euler"},
  };
  const Size anchor_sizes[] = {{1, 4, 128, 128, SizeClass::large},
                               {16, 4, 128, 128, SizeClass::large},
                               {1, 16, 128, 128, SizeClass::large},
                               {16, 16, 128, 128, SizeClass::large},
                               {64, 16, 128, 128, SizeClass::large}};
  for (const auto& sz : anchor_sizes)
    for (auto k : anchored) {
      k.batch = sz.b;
      k.c = sz.c;
      k.h = sz.h;
      k.w = sz.w;
      cases.push_back(step_case(k, sz.cls, seed++, false));
      cases.push_back(step_case(k, sz.cls, seed++, true));
    }
  // One small loop (CI checks its 50 steps device == fallback; its anchor key matches no real
  // anchor row and exercises the matching path).
  cases.push_back(step_case({Sampler::DDIM, 0.0f, 2, 4, 32, 32, "ddim", DType::f32, "ddim"},
                            SizeClass::small, seed++, true));
  // Guidance rescale and dynamic thresholding: their extra launches and passes.
  for (const Size& sz :
       {Size{2, 4, 32, 32, SizeClass::small}, Size{16, 16, 128, 128, SizeClass::large},
        Size{64, 16, 128, 128, SizeClass::large}})
    for (auto [phi, th] : {std::pair{0.7f, false}, std::pair{0.7f, true}}) {
      StepShape k{Sampler::DDIM, 0.0f,       sz.b,    sz.c, sz.h, sz.w,
                  "ddim",        DType::f32, nullptr, phi,  th};
      cases.push_back(step_case(k, sz.cls, seed++, false));
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
