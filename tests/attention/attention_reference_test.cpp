// Fallback vs the float64 reference (tests/reference/attention_ref.h): the accuracy of the
// defined fp32 order. Measured on this suite's seeds (docs/attention.md, "Accuracy"):
//   fp32 out: max |O - ref| / max|V| = 1.7e-6 (asserted: <= 1e-5) and max |lse2 - ref| =
//   1.6e-5 (asserted: <= 4e-5; lse2 ~ 13 at L = 9000, i.e. ~10 fp32 ulps), L up to 9000,
//   D 64..256; f16 / bf16 outputs: 2.1e-4 / 1.9e-3, the output rounding (asserted: 2^-11 /
//   2^-8 relative to max|V|).
// The reference sees the same (rounded) inputs, so input rounding is not part of the error.
#include <fmt/format.h>

#include <cmath>

#include "attention/attention_test_util.h"
#include "reference/attention_ref.h"

namespace sparq::test::attn {
namespace {

struct RefCase {
  int b = 1, hq = 1, hkv = 1;
  std::int64_t lq = 1, lk = 1;
  int d = 64;
  bool causal = false;
  DType in = DType::f32, out = DType::f32;
  float value_scale = 1.0f;  // of Q and K: larger scores, peakier softmax
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format("B={} Hq={} Hkv={} Lq={} Lk={} D={} causal={} in={} out={} x{} seed={}", b,
                       hq, hkv, lq, lk, d, causal, dt(in), dt(out), value_scale, seed);
  }
};

struct Errors {
  double out_rel = 0, lse_abs = 0;
};

Errors measure(Context& cpu, const RefCase& c) {
  const ref::AttentionShape sh{c.b, c.hq, c.hkv, c.d, c.lq, c.lk};
  std::vector<float> q, k, v;
  const Tensor tq =
      upload_as(cpu, random_normal(std::size_t(c.b) * c.hq * c.lq * c.d, c.seed, c.value_scale),
                c.in, {c.b, c.hq, c.lq, c.d}, &q);
  const Tensor tk = upload_as(
      cpu, random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 1, c.value_scale), c.in,
      {c.b, c.hkv, c.lk, c.d}, &k);
  const Tensor tv = upload_as(cpu, random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 2),
                              c.in, {c.b, c.hkv, c.lk, c.d}, &v);
  const AttentionResult r =
      attention(cpu, tq, tk, tv, {.causal = c.causal, .return_lse = true, .out_dtype = c.out});
  const ref::AttentionRef want = ref::attention(q, k, v, sh, c.causal);
  const auto o = download_f32(r.out);
  const auto lse = r.lse.download<float>();
  double vmax = 0;
  for (float x : v) vmax = std::max(vmax, double{std::fabs(x)});
  Errors e;
  for (std::size_t i = 0; i < o.size(); ++i)
    e.out_rel = std::max(e.out_rel, std::fabs(o[i] - want.out[i]) / vmax);
  for (std::size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(want.lse2[i])) {
      EXPECT_EQ(lse[i], -std::numeric_limits<float>::infinity()) << c.name() << " row " << i;
      continue;
    }
    e.lse_abs = std::max(e.lse_abs, std::fabs(lse[i] - want.lse2[i]));
  }
  return e;
}

TEST(AttentionReference, Fp32WithinStatedBounds) {
  Context cpu = fallback_context();
  std::uint64_t seed = 1200;
  std::vector<RefCase> cases;
  for (int d : {64, 128, 80, 256})
    for (bool causal : {false, true})
      for (std::int64_t l : {1, 65, 1000})
        cases.push_back({.lq = l, .lk = l, .d = d, .causal = causal});
  cases.push_back({.lq = 6000, .lk = 6000, .d = 64, .causal = true});
  cases.push_back({.lq = 16, .lk = 9000, .d = 128});
  cases.push_back({.lq = 200, .lk = 300, .d = 64, .causal = true, .value_scale = 3.0f});
  cases.push_back({.lq = 50, .lk = 70, .d = 64, .causal = true});  // Lq < Lk: rows see a prefix
  cases.push_back({.lq = 70, .lk = 50, .d = 64, .causal = true});  // fully masked rows
  Errors worst;
  for (auto c : cases) {
    c.seed = seed++;
    const Errors e = measure(cpu, c);
    EXPECT_LE(e.out_rel, 1e-5) << c.name();
    EXPECT_LE(e.lse_abs, 4e-5) << c.name();
    worst.out_rel = std::max(worst.out_rel, e.out_rel);
    worst.lse_abs = std::max(worst.lse_abs, e.lse_abs);
  }
  std::printf("[ measured ] fp32: max |O - ref| / max|V| = %.3g, max |lse2 - ref| = %.3g\n",
              worst.out_rel, worst.lse_abs);
}

TEST(AttentionReference, HalfPrecisionStorage) {
  Context cpu = fallback_context();
  std::uint64_t seed = 1300;
  for (DType in : {DType::f32, DType::f16, DType::bf16})
    for (DType out : {DType::f32, DType::f16, DType::bf16}) {
      const RefCase c{.hq = 2,
                      .lq = 300,
                      .lk = 300,
                      .d = 128,
                      .causal = true,
                      .in = in,
                      .out = out,
                      .seed = seed++};
      const Errors e = measure(cpu, c);
      const double bound = out == DType::f32 ? 1e-5 : out == DType::f16 ? 1.0 / 2048 : 1.0 / 256;
      EXPECT_LE(e.out_rel, bound) << c.name();
      EXPECT_LE(e.lse_abs, 4e-5) << c.name();
      std::printf("[ measured ] in=%s out=%s: max |O - ref| / max|V| = %.3g, lse %.3g\n", dt(in),
                  dt(out), e.out_rel, e.lse_abs);
    }
}

}  // namespace
}  // namespace sparq::test::attn
