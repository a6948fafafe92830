// The int8 MMA kernel's same-bits arithmetic forms (SPARQ_TUNE_SAGE8 div, exp, svflag; mma.sync
// emulated on PoCL): the defaults and all forms off give the fallback's bits on inputs that
// reach the rare paths: P groups with scales below 2^-60 (scores fall ~0.8 log2 units per key,
// so groups past key 80 hold P in 2^-65 .. 2^-150: the per-element division), and an inf in V
// (a tile of non-finite V scales keeps the sP == 0 test: causal rows before the inf's key have
// sP == 0 in its group and must get 0 there, not NaN).
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "attention/attention_test_util.h"
#include "runtime/runtime_test_util.h"
#include "sparq/int8_attention.h"

namespace sparq::test::attn {
namespace {

TEST(Sage8MmaForms, RarePathsEqualFallback) {
  const ScopedEnv mma("SPARQ_SAGE8_MMA", "emulate");
  Context dev = device_context(), cpu = fallback_context();
  constexpr int hq = 1, d = 128;
  constexpr std::int64_t lq = 100, lk = 200;  // causal: row i sees keys <= i + 100
  std::vector<float> q = random_normal(std::size_t(hq) * lq * d, 901);
  std::vector<float> k = random_normal(std::size_t(hq) * lk * d, 902);
  const std::vector<float> v0 = random_normal(std::size_t(hq) * lk * d, 903);
  for (float& x : q) x += 1.0f;  // rows of positive mean: scores fall ~0.8 per key j
  for (std::int64_t j = 0; j < lk; ++j)
    for (int h = 0; h < hq; ++h)
      for (int e = 0; e < d; ++e) k[(h * lk + j) * d + e] += 0.05f * static_cast<float>(lk - j);
  std::vector<float> v = v0;
  // V = 0 on keys < 80 (scores >= 2^-52 of the row max): the output is then made of the tiny
  // groups alone (O / l ~ 2^-70), so their codes show in its bits
  std::fill(v.begin(), v.begin() + 80 * d, 0.0f);
  v[std::size_t(150) * d + 3] = std::numeric_limits<float>::infinity();
  const AttentionOptions opt{
      .causal = true, .precision = Precision::int8, .quant = {QSmooth::off, false}};
  auto q2 = upload_pair(dev, cpu, q, DType::f32, {1, hq, lq, d});
  auto k2 = upload_pair(dev, cpu, k, DType::f32, {1, hq, lk, d});
  auto v2 = upload_pair(dev, cpu, v, DType::f32, {1, hq, lk, d});
  const AttentionResult want = attention(cpu, q2.cpu, k2.cpu, v2.cpu, opt);
  for (const char* tune : {"decode=0"}) {
    SCOPED_TRACE(tune);
    const ScopedEnv env("SPARQ_TUNE_SAGE8", tune);
    expect_same(attention(dev, q2.dev, k2.dev, v2.dev, opt), want, tune);
  }
}

}  // namespace
}  // namespace sparq::test::attn
