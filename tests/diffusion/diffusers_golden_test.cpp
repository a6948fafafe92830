// sparq's schedules and fused steps against Hugging Face diffusers' own schedulers: the golden
// tables of bench/anchors/diffusers_golden.py (tests/data/diffusers_golden.json; the test skips,
// saying why, where the file is absent). Each diffusers config is mapped to sparq's options by
// golden_mapping.h; an option without a mapping fails the test instead of being ignored.
//
// Tolerances, per element, relative to s = 1 + |x| + |m| + |ref| (as DiffusionStepReference):
//  - vs the "f64" run (diffusers' formulas in double): 2e-6. sparq evaluates the same formula in
//    fp32 with coefficients rounded once to float: a few roundings of 2^-24 (6e-8) on terms whose
//    coefficients reach ~160 (1/sqrt(abar) of the linear schedule at t = 999; sigma_max 14.6 for
//    SD), plus the fp32 x0 history a DPM step reuses. Measured ≤ 7.4e-7 (torch 1.13 CPU).
//  - vs the "f32" run (diffusers as shipped): 2e-5. diffusers builds alphas_cumprod by a float32
//    cumprod over 1000 steps and rounds its sigmas to float32 (≤ ~7e-6 relative in a coefficient,
//    see below) on top of its own fp32 step arithmetic. Measured ≤ 1.7e-6.
//  - schedules, relative to max(1, |ref|): vs "f64" 1e-9 (both double; integral timesteps must
//    be equal). vs "f32" 1e-4, not the spec's 1e-6 (§9 test 4), which diffusers' own float32
//    tables miss: squaredcos sigma_max is 6.6e-6 off its double value, and Karras timesteps, read
//    by _sigma_to_t from float32 log-sigmas, are up to 5e-5 off near t = 1 (measured 4.7e-5).
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "diffusion/diffusion_test_util.h"
#include "diffusion/golden_mapping.h"

namespace sparq::test::diff {
namespace {

using json = nlohmann::json;

std::string golden_path() {
  if (const char* p = std::getenv("SPARQ_DIFFUSERS_GOLDEN"); p && *p) return p;
  return std::string(SPARQ_SOURCE_DIR) + "/tests/data/diffusers_golden.json";
}

// The parsed file, once per process; null with a reason when absent or not ours.
const json* golden(std::string* why) {
  static json doc;
  static std::string reason;
  static bool loaded = false;
  if (!loaded) {
    loaded = true;
    const std::string path = golden_path();
    std::ifstream in(path);
    if (!in) {
      reason = path + " is absent (made on the GPU machine by bench/anchors/diffusers_golden.py)";
    } else {
      doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded())
        reason = path + " is not valid JSON";
      else if (doc.value("format", "") != "sparq-diffusers-golden-1")
        reason = path + ": format is not sparq-diffusers-golden-1";
    }
  }
  *why = reason;
  return reason.empty() ? &doc : nullptr;
}

#define LOAD_GOLDEN(doc)           \
  std::string why_;                \
  const json* doc = golden(&why_); \
  if (!doc) GTEST_SKIP() << why_;

// NaN where diffusers has NaN counts as equal (shift_terminal at N = 1 divides 0 by 0 in both).
double rel(double got, double want) {
  if (std::isnan(got) && std::isnan(want)) return 0;
  return std::fabs(got - want) / std::max(1.0, std::fabs(want));
}

TEST(DiffusersGolden, HexDecoding) {
  EXPECT_EQ(golden::floats("3f800000c0200000"), (std::vector<float>{1.0f, -2.5f}));
  EXPECT_EQ(golden::doubles("3ff0000000000000bfb999999999999a"), (std::vector<double>{1.0, -0.1}));
  EXPECT_THROW(golden::floats("3f80000"), std::runtime_error);
  EXPECT_THROW(golden::floats("3f80000g"), std::runtime_error);
}

TEST(DiffusersGolden, MappingRefusesUnknownOptions) {
  json c = {{"scheduler", "DDIMScheduler"},
            {"num_steps", 10},
            {"config", {{"beta_schedule", "linear"}, {"some_new_option", true}}},
            {"step_kwargs", json::object()},
            {"set_timesteps_kwargs", json::object()}};
  std::string err;
  EXPECT_FALSE(golden::map_case(c, &err).has_value());
  EXPECT_NE(err.find("some_new_option"), std::string::npos) << err;
  c["config"] = {{"beta_schedule", "scaled_linear"}, {"use_exponential_sigmas", true}};
  c["scheduler"] = "EulerDiscreteScheduler";
  EXPECT_FALSE(golden::map_case(c, &err).has_value());
  EXPECT_NE(err.find("use_exponential_sigmas"), std::string::npos) << err;
}

// Timesteps, sigmas and init_noise_sigma of make_schedule vs diffusers' set_timesteps: one
// failure line per schedule, naming the worst entry.
TEST(DiffusersGolden, Schedules) {
  LOAD_GOLDEN(doc);
  int checked = 0;
  for (const auto& e : doc->at("schedules")) {
    const std::string what = fmt::format("{} {} N={}", e.at("scheduler").get<std::string>(),
                                         e.at("config").dump(), e.at("num_steps").get<int>());
    std::string err;
    const auto m = golden::map_case(e, &err);
    ASSERT_TRUE(m.has_value()) << what << ": " << err;
    for (const std::string run : {"f64", "f32"}) {
      const json& t = e.at(run);
      if (t.contains("error")) {  // diffusers refused this N: sparq must too
        EXPECT_ANY_THROW(make_schedule(m->sampler, m->config, m->num_steps))
            << what << " " << run << ": diffusers said " << t.at("error");
        continue;
      }
      const Schedule s = make_schedule(m->sampler, m->config, m->num_steps);
      const double tol = run == "f64" ? 1e-9 : 1e-4;
      double worst = 0;
      std::string at;
      auto check = [&](const char* field, const std::vector<double>& got,
                       const std::vector<double>& want) {
        if (got.size() != want.size()) {
          worst = HUGE_VAL;
          at = fmt::format("{} size {} vs {}", field, got.size(), want.size());
          return;
        }
        for (std::size_t k = 0; k < want.size() && !std::isnan(worst); ++k) {
          const double r = rel(got[k], want[k]);
          if (!(r <= worst)) {  // NaN sticks
            worst = r;
            at = fmt::format("{}[{}] {} vs {}", field, k, got[k], want[k]);
          }
        }
      };
      check("timesteps", s.timesteps, golden::doubles(t.at("timesteps")));
      if (t.contains("sigmas")) check("sigmas", s.sigmas, golden::doubles(t.at("sigmas")));
      if (t.contains("init_noise_sigma"))
        check("init_noise_sigma", {s.init_noise_sigma}, {t.at("init_noise_sigma").get<double>()});
      EXPECT_LE(worst, tol) << what << " vs " << run << ": worst " << at;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

struct Worst {
  double err = 0;
  std::string where;
  void add(double got, double want, double scale, const std::string& w) {
    const double e = std::fabs(got - want) / scale;
    if (!std::isnan(err) && !(e <= err)) {  // NaN counts as worst, and sticks
      err = e;
      where = w;
    }
  }
};

// Runs one golden case through sparq on ctx, step after step (DPM: the history buffer carries
// sparq's own x0 from step to step), comparing with both diffusers runs.
// b: the samples of the file's shape (per-sample thresholding and guidance rescale).
void run_case(Context& ctx, Context* dev, const json& c, std::int64_t b) {
  const std::string name = c.at("name");
  std::string err;
  const auto m = golden::map_case(c, &err);
  ASSERT_TRUE(m.has_value()) << name << ": " << err;
  const Schedule s = make_schedule(m->sampler, m->config, m->num_steps);
  const auto& steps = c.at("steps");
  ASSERT_EQ(static_cast<int>(steps.size()), m->num_steps) << name;
  const auto n = static_cast<std::size_t>(golden::floats(steps[0].at("x")).size());
  const std::vector<std::int64_t> flat{b, static_cast<std::int64_t>(n) / b};
  std::vector<float> history(n, 0.0f);
  Worst w64, w32;
  for (int i = 0; i < m->num_steps; ++i) {
    const json& st = steps[static_cast<std::size_t>(i)];
    StepInputs in;
    in.x = golden::floats(st.at("x"));
    in.model = golden::floats(st.at("model"));
    if (st.contains("noise")) in.noise = golden::floats(st.at("noise"));
    in.history = history;
    const StepCoeffs k = step_coeffs(s, i, m->options);
    // sparq skips a noise term whose coefficient is 0 (last steps); diffusers draws and
    // multiplies by 0. A term sparq keeps must have had diffusers' noise.
    if (k.draws_noise()) {
      ASSERT_TRUE(st.contains("noise") && st.at("f64").value("randn_calls", 1) > 0)
          << name << " step " << i << ": sparq draws noise where diffusers drew none";
    }
    const std::span<const StepCoeffs> ks(&k, 1);
    const auto out = run_step(ctx, ks, flat, in, DType::f32, DType::f32, {1, 2}, false);
    if (dev && i == m->num_steps - 1) {  // one launch per case: PoCL time is the budget
      const auto o2 = run_step(*dev, ks, flat, in, DType::f32, DType::f32, {1, 2}, false);
      EXPECT_EQ(compare_bits(o2.y, out.y), "") << name << " step " << i << ": device vs fallback";
      EXPECT_EQ(compare_bits(o2.x0, out.x0), "") << name << " step " << i << ": device x0";
    }
    if (!out.history.empty()) history = out.history;
    const auto y64 = golden::doubles(st.at("f64").at("y"));
    const auto y32 = golden::floats(st.at("f32").at("y"));
    std::vector<double> x064;
    std::vector<float> x032;
    if (st.at("f64").contains("x0")) {
      x064 = golden::doubles(st.at("f64").at("x0"));
      x032 = golden::floats(st.at("f32").at("x0"));
    }
    ASSERT_EQ(y64.size(), n);
    for (std::size_t e = 0; e < n; ++e) {
      double mv = in.model[e];  // the guided output with CFG, in double
      if (m->options.cfg) mv += m->options.guidance_scale * (double{in.model[n + e]} - mv);
      const double base = 1 + std::fabs(in.x[e]) + std::fabs(mv);
      const std::string where = fmt::format("step {} element {}", i, e);
      w64.add(out.y[e], y64[e], base + std::fabs(y64[e]), where + " y");
      w32.add(out.y[e], y32[e], base + std::fabs(y32[e]), where + " y");
      if (!x064.empty()) {
        w64.add(out.x0[e], x064[e], base + std::fabs(x064[e]), where + " x0");
        w32.add(out.x0[e], x032[e], base + std::fabs(x032[e]), where + " x0");
      }
    }
  }
  EXPECT_LT(w64.err, 2e-6) << name << " vs diffusers f64, worst at " << w64.where;
  EXPECT_LT(w32.err, 2e-5) << name << " vs diffusers f32, worst at " << w32.where;
  if (std::getenv("SPARQ_GOLDEN_VERBOSE"))
    fmt::print("{:40s} f64 {:.2e} ({})  f32 {:.2e} ({})\n", name, w64.err, w64.where, w32.err,
               w32.where);
}

// Every golden case on the fallback. With SPARQ_GOLDEN_DEVICE=1 the last step of each case
// also runs on the test device and must give the fallback's bits: off by default because on PoCL
// the program loads of the step families take ~2 s, and device ≡ fallback is DiffusionStepExact's
// job.
TEST(DiffusersGolden, StepsMatchDiffusers) {
  LOAD_GOLDEN(doc);
  Context cpu = fallback_context();
  std::optional<Context> dev;
  if (const char* d = std::getenv("SPARQ_GOLDEN_DEVICE"); d && std::string(d) == "1")
    dev = device_context();
  ASSERT_GT(doc->at("cases").size(), 0u);
  const std::int64_t b = doc->at("shape").at(0).get<std::int64_t>();
  for (const auto& c : doc->at("cases")) run_case(cpu, dev ? &*dev : nullptr, c, b);
}

}  // namespace
}  // namespace sparq::test::diff
