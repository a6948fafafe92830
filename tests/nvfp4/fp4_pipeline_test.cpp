// attention(..., {.precision = Precision::nvfp4}) (specs/fp4_attention.md §2.4-§4): device ≡
// fallback with every smoothing option; equal bits to fp4_attention_packed given the same
// smoothed, quantized inputs; accuracy against float64 attention on normal, heavy-tailed and
// channel-outlier inputs (smoothing on and off); errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "nvfp4/fp4_test_util.h"
#include "reference/attention_ref.h"
#include "test_support.h"

namespace sparq::test {
namespace {

struct Case {
  int batch, hq, hkv, lq, lk, d;
  bool causal;
  QSmooth qs;
  bool ks;
};

std::vector<float> run_fp32(Context& ctx, const Case& c, const std::vector<float>& q,
                            const std::vector<float>& k, const std::vector<float>& v) {
  const AttentionOptions o{.causal = c.causal,
                           .precision = Precision::nvfp4,
                           .quant = {.q_smooth = c.qs, .k_smooth = c.ks}};
  return attention(ctx, ctx.upload(q, DType::f32, {c.batch, c.hq, c.lq, c.d}),
                   ctx.upload(k, DType::f32, {c.batch, c.hkv, c.lk, c.d}),
                   ctx.upload(v, DType::f32, {c.batch, c.hkv, c.lk, c.d}), o)
      .out.download<float>();
}

TEST(Nvfp4Pipeline, DeviceEqualsFallbackEverySmoothing) {
  Context dev = device_context();
  if (dev.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  Context fb = fallback_context();
  const Case cases[] = {
      {1, 2, 1, 300, 300, 128, true, QSmooth::per_block128, true},
      {2, 2, 2, 130, 70, 64, false, QSmooth::per_head, true},
      {1, 4, 2, 100, 160, 64, true, QSmooth::off, false},
      {1, 2, 1, 129, 129, 64, false, QSmooth::per_block128, false},
  };
  for (const Case& c : cases) {
    const auto q = random_normal(static_cast<std::size_t>(c.batch) * c.hq * c.lq * c.d, 11, 2.0f);
    auto k = random_normal(static_cast<std::size_t>(c.batch) * c.hkv * c.lk * c.d, 12);
    for (std::size_t i = 3; i < k.size(); i += c.d) k[i] += 8.0f;  // a channel bias
    const auto v = random_normal(static_cast<std::size_t>(c.batch) * c.hkv * c.lk * c.d, 13);
    EXPECT_EQ(compare_bits(run_fp32(dev, c, q, k, v), run_fp32(fb, c, q, k, v)), "")
        << "Lq " << c.lq << " Lk " << c.lk << " D " << c.d << " qs " << static_cast<int>(c.qs);
  }
}

// Host smoothing in the spec's order (left folds, fp32(1/n) from double, one subtraction).
std::vector<float> host_block_mean(const std::vector<float>& x, int bh, int L, int D, int rows) {
  const int nblk = (L + rows - 1) / rows;
  std::vector<float> m(static_cast<std::size_t>(bh) * nblk * D);
  for (int h = 0; h < bh; ++h)
    for (int b = 0; b < nblk; ++b) {
      const int r0 = b * rows, r1 = std::min(L, r0 + rows);
      const float rn = static_cast<float>(1.0 / (r1 - r0));
      for (int d = 0; d < D; ++d) {
        float s = 0.0f;
        for (int r = r0; r < r1; ++r) s = s + x[(static_cast<std::size_t>(h) * L + r) * D + d];
        m[(static_cast<std::size_t>(h) * nblk + b) * D + d] = s * rn;
      }
    }
  return m;
}

TEST(Nvfp4Pipeline, PackedEntryGivesTheSameBits) {
  Context ctx = device_context();
  const int Hq = 2, L = 200, D = 64;
  const auto q = random_normal(Hq * L * D, 21), v = random_normal(L * D, 23);
  auto k = random_normal(L * D, 22);
  for (std::size_t i = 5; i < k.size(); i += D) k[i] += 10.0f;
  for (bool smooth : {false, true}) {
    const Case c{1, Hq, 1, L, L, D, true, smooth ? QSmooth::per_block128 : QSmooth::off, smooth};
    const std::vector<float> want = run_fp32(ctx, c, q, k, v);
    std::vector<float> qs = q, ks = k, delta;
    if (smooth) {
      const auto qm = host_block_mean(q, Hq, L, D, 128), km = host_block_mean(k, 1, L, D, L);
      for (int h = 0; h < Hq; ++h)
        for (int i = 0; i < L; ++i)
          for (int d = 0; d < D; ++d)
            qs[(h * L + i) * D + d] = q[(h * L + i) * D + d] - qm[(h * 2 + i / 128) * D + d];
      for (int j = 0; j < L; ++j)
        for (int d = 0; d < D; ++d) ks[j * D + d] = k[j * D + d] - km[d];
      delta.resize(static_cast<std::size_t>(Hq) * 2 * L);
      for (int h = 0; h < Hq; ++h)
        for (int b = 0; b < 2; ++b)
          for (int j = 0; j < L; ++j) {
            float acc = 0.0f;
            for (int d = 0; d < D; ++d) acc = acc + qm[(h * 2 + b) * D + d] * ks[j * D + d];
            delta[(h * 2 + b) * L + j] = acc;
          }
    }
    const Fp4Packed qp = fp4_quantize_rows(ctx, ctx.upload(qs, DType::f32, {1, Hq, L, D}));
    const Fp4Packed kp = fp4_quantize_rows(ctx, ctx.upload(ks, DType::f32, {1, 1, L, D}));
    const Fp4PackedT vp = fp4_quantize_tokens(ctx, ctx.upload(v, DType::f32, {1, 1, L, D}));
    const Tensor dt = smooth ? ctx.upload(delta, DType::f32, {1, Hq, 2, L}) : Tensor();
    const auto got = fp4_attention_packed(ctx, qp, kp, vp, smooth ? &dt : nullptr, {.causal = true})
                         .download<float>();
    EXPECT_EQ(compare_bits(got, want), "") << (smooth ? "smoothed" : "no smoothing");
  }
}

// Accuracy on the spec §8 input families, D = 128, L = 1024 (fallback = kernel bits).
TEST(Nvfp4Pipeline, AccuracyNormalHeavyTailedOutliers) {
  const int H = 2, L = 1024, D = 128;
  const std::size_t n = static_cast<std::size_t>(H) * L * D;
  struct Input {
    const char* name;
    std::vector<float> q, k, v;
    double min_cosine = 0.98;
    bool outliers = false;
  };
  std::vector<Input> inputs;
  inputs.push_back({"normal", random_normal(n, 31), random_normal(n, 32), random_normal(n, 33)});
  {
    std::mt19937_64 rng(34);
    std::student_t_distribution<float> t3(3.0f);
    Input in{"heavy-tailed (Student t, 3 dof)", std::vector<float>(n), std::vector<float>(n),
             std::vector<float>(n)};
    for (auto* x : {&in.q, &in.k, &in.v})
      for (float& e : *x) e = t3(rng);
    in.min_cosine = 0.96;
    inputs.push_back(std::move(in));
  }
  {
    Input in{"channel outliers (K bias 20 on 4 channels, Q x10 on 2)", random_normal(n, 35),
             random_normal(n, 36), random_normal(n, 37)};
    for (std::size_t r = 0; r < n / D; ++r) {
      for (int c : {3, 40, 77, 120}) in.k[r * D + c] += 20.0f;
      for (int c : {9, 64}) in.q[r * D + c] *= 10.0f;
    }
    in.min_cosine = 0.965;
    in.outliers = true;
    inputs.push_back(std::move(in));
  }
  Context fb = fallback_context();
  for (const Input& in : inputs) {
    const ref::AttentionRef want =
        ref::attention(in.q, in.k, in.v, ref::AttentionShape{1, H, H, D, L, L}, true);
    double cos_on = 0, cos_off = 0;
    for (bool smooth : {true, false}) {
      const Case c{1, H, H, L, L, D, true, smooth ? QSmooth::per_block128 : QSmooth::off, smooth};
      const Accuracy a = accuracy(run_fp32(fb, c, in.q, in.k, in.v), want.out);
      std::printf("[nvfp4] %s, smoothing %s: cosine %.5f rel-L1 %.4f max-abs %.4f\n", in.name,
                  smooth ? "on" : "off", a.cosine, a.rel_l1, a.max_abs);
      (smooth ? cos_on : cos_off) = a.cosine;
    }
    // Measured (docs/fp4_attention.md): normal 0.985, heavy-tailed 0.969, outliers 0.974 with
    // smoothing and 0.846 without; the bars leave a small margin under those.
    EXPECT_GE(cos_on, in.min_cosine) << in.name;
    if (in.outliers) {
      EXPECT_LT(cos_off, cos_on - 0.05) << in.name << ": smoothing should fix the K channel bias";
    }
  }
}

TEST(Nvfp4Pipeline, Errors) {
  Context ctx = fallback_context();
  const AttentionOptions o{.precision = Precision::nvfp4};
  auto t = [&](int d, DType dt = DType::f32) {
    return dt == DType::f32 ? ctx.upload(std::vector<float>(8 * d, 1.0f), dt, {1, 1, 8, d})
                            : ctx.upload(std::vector<std::uint16_t>(8 * d), dt, {1, 1, 8, d});
  };
  EXPECT_THROW(attention(ctx, t(200), t(200), t(200), o), Error);  // D > 128 (96: zero-padded)
  EXPECT_THROW(attention(ctx, t(64, DType::f16), t(64), t(64), o), Error);
  EXPECT_THROW(
      attention(ctx, t(64), t(64), t(64), {.return_lse = true, .precision = Precision::nvfp4}),
      Error);
  EXPECT_THROW(attention(ctx, t(64), t(64), t(64),
                         {.out_dtype = DType::bf16, .precision = Precision::nvfp4}),
               Error);
  EXPECT_NO_THROW(attention(ctx, t(64), t(64), t(64), o));
}

}  // namespace
}  // namespace sparq::test
