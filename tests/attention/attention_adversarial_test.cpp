// Adversarial values, kernel == fallback bit for bit, plus what the definition promises about
// them: outliers, all-equal scores, denormals (kept, not flushed), fully masked rows (O = 0,
// lse = -inf), and a NaN in one key or value reaching exactly the rows that see it.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "attention/attention_test_util.h"

namespace sparq::test::attn {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Inputs {
  int hq = 1, hkv = 1, d = 64;
  std::int64_t lq = 1, lk = 1;
  std::vector<float> q, k, v;
  Inputs(int hq_, int hkv_, std::int64_t lq_, std::int64_t lk_, int d_, std::uint64_t seed)
      : hq(hq_), hkv(hkv_), d(d_), lq(lq_), lk(lk_) {
    q = random_normal(std::size_t(hq) * lq * d, seed);
    k = random_normal(std::size_t(hkv) * lk * d, seed + 1);
    v = random_normal(std::size_t(hkv) * lk * d, seed + 2);
  }
  float& kat(int h, std::int64_t j, int e) { return k[(h * lk + j) * d + e]; }
  float& vat(int h, std::int64_t j, int e) { return v[(h * lk + j) * d + e]; }
};

// Runs both executors; returns the device result after checking the bits match.
AttentionResult run_both(Context& dev, Context& cpu, const Inputs& in, bool causal,
                         const std::string& what, float scale = 0.0f) {
  SCOPED_TRACE(what);
  auto tq = upload_pair(dev, cpu, in.q, DType::f32, {1, in.hq, in.lq, in.d});
  auto tk = upload_pair(dev, cpu, in.k, DType::f32, {1, in.hkv, in.lk, in.d});
  auto tv = upload_pair(dev, cpu, in.v, DType::f32, {1, in.hkv, in.lk, in.d});
  const AttentionOptions o{.causal = causal, .scale = scale, .return_lse = true};
  AttentionResult r = attention(dev, tq.dev, tk.dev, tv.dev, o);
  expect_same(r, attention(cpu, tq.cpu, tk.cpu, tv.cpu, o), what);
  return r;
}

TEST(AttentionAdversarial, OutliersEqualScoresDenormals) {
  Context dev = device_context(), cpu = fallback_context();
  for (int d : {64, 80}) {  // dense.cl and decode.cl
    {
      Inputs in(2, 1, 100, 100, d, 600 + d);
      for (std::int64_t j = 0; j < in.lk; ++j)
        for (int e : {3, 17}) in.kat(0, j, e) *= 1e4f;  // a few channels x 1e4
      for (std::size_t i = 0; i < in.q.size(); i += 7) in.q[i] *= 1e4f;
      run_both(dev, cpu, in, true, fmt::format("outliers x1e4 D={}", d));
      run_both(dev, cpu, in, false, fmt::format("outliers x1e4, scale 1000, D={}", d), 1000.0f);
    }
    {
      Inputs in(1, 1, 70, 130, d, 610 + d);
      std::fill(in.q.begin(), in.q.end(), 0.0f);  // every score is 0: p = 1 for every key
      AttentionResult r = run_both(dev, cpu, in, false, fmt::format("all-equal scores D={}", d));
      const auto o = r.out.download<float>();
      for (int e = 0; e < d; ++e) {
        double mean = 0;
        for (std::int64_t j = 0; j < in.lk; ++j) mean += in.vat(0, j, e);
        mean /= static_cast<double>(in.lk);
        EXPECT_NEAR(o[e], mean, 1e-5) << "row 0 must be the mean of V, d=" << e;
      }
      EXPECT_EQ(r.lse.download<float>()[0], std::log2(130.0f)) << "lse = log2(Lk) exactly";
    }
    {
      Inputs in(1, 1, 65, 65, d, 620 + d);
      for (auto* x : {&in.q, &in.k, &in.v})
        for (auto& y : *x) y *= 1e-39f;  // subnormal inputs (and scores that underflow to 0)
      AttentionResult r = run_both(dev, cpu, in, true, fmt::format("denormals D={}", d));
      const auto o = r.out.download<float>();
      int subnormal = 0;
      for (float x : o) subnormal += std::fpclassify(x) == FP_SUBNORMAL;
      EXPECT_GT(subnormal, static_cast<int>(o.size()) / 2) << "denormal outputs must be kept";
    }
  }
}

TEST(AttentionAdversarial, MaskedRowsAndNaN) {
  Context dev = device_context(), cpu = fallback_context();
  for (int d : {64, 80}) {
    {  // causal with Lq > Lk: rows i < Lq - Lk see no key
      Inputs in(2, 2, 70, 30, d, 700 + d);
      AttentionResult r = run_both(dev, cpu, in, true, fmt::format("fully masked rows D={}", d));
      const auto o = r.out.download<float>();
      const auto lse = r.lse.download<float>();
      for (int h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < 70; ++i) {
          const bool empty = i < 40;
          EXPECT_EQ(std::isinf(lse[h * 70 + i]) && lse[h * 70 + i] < 0, empty) << "row " << i;
          if (!empty) continue;
          for (int e = 0; e < d; ++e) {
            ASSERT_EQ(o[(h * 70 + i) * d + e], 0.0f) << "row " << i;
          }
        }
    }
    for (bool in_v : {false, true}) {  // a NaN in key 150 reaches exactly the rows i >= 150
      Inputs in(1, 1, 200, 200, d, 710 + d);
      (in_v ? in.vat(0, 150, 5) : in.kat(0, 150, 5)) = kNaN;
      AttentionResult r =
          run_both(dev, cpu, in, true, fmt::format("NaN in {} 150 D={}", in_v ? "V" : "K", d));
      const auto o = r.out.download<float>();
      for (std::int64_t i = 0; i < 200; ++i) {
        int nans = 0;
        for (int e = 0; e < d; ++e) nans += std::isnan(o[i * d + e]);
        const int want = i < 150 ? 0 : (in_v ? 1 : d);
        ASSERT_EQ(nans, want) << "row " << i;
      }
    }
  }
  {  // decode over two chunks (split path): NaN key 5000 reaches the decode row only
    Inputs in(4, 2, 1, 6000, 128, 720);
    in.kat(1, 5000, 0) = kNaN;
    AttentionResult r = run_both(dev, cpu, in, true, "NaN key in chunk 1, split decode");
    const auto lse = r.lse.download<float>();
    EXPECT_FALSE(std::isnan(lse[0]) || std::isnan(lse[1])) << "heads of kv head 0 stay finite";
    EXPECT_TRUE(std::isnan(lse[2]) && std::isnan(lse[3])) << "heads of kv head 1 see the NaN";
  }
  {  // infinities in K: scores of +-inf (NaN rows by the definition), same bits
    Inputs in(1, 1, 66, 66, 64, 730);
    in.kat(0, 10, 0) = std::numeric_limits<float>::infinity();
    in.kat(0, 20, 1) = -std::numeric_limits<float>::infinity();
    run_both(dev, cpu, in, true, "inf in K");
  }
}

}  // namespace
}  // namespace sparq::test::attn
