// End to end: sparq::attention with a VerticalSlash / XAttention pattern (builder + sparse
// kernel): device ≡ fallback bit for bit, and the fallback's output equals a float64 softmax
// attention over exactly the element set the built index computes (spec §14: max abs error
// <= 2e-6 (1 + |O|)).
#include <cmath>

#include "builders_test_util.h"

namespace sparq::test {
namespace {

struct E2ECase {
  QKShape s;
  Pattern p;
  IndexSharing sharing = IndexSharing::per_q_head;
};

TEST(SparseBuildersAttention, PatternsEndToEnd) {
  Context dev = device_context();
  Context fb = fallback_context();
  const E2ECase cases[] = {
      {{1, 2, 1, 200, 328, 64}, VerticalSlash{.vertical = 40, .slash = 60}},
      {{1, 4, 2, 150, 150, 64}, VerticalSlash{.vertical = 30, .slash = 50}, IndexSharing::kv_group},
      {{1, 2, 1, 200, 328, 64}, XAttention{.stride = 8, .threshold = 0.6f}},
      {{1, 2, 2, 190, 190, 64},
       XAttention{.stride = 16, .threshold = 0.8f},
       IndexSharing::kv_group},
  };
  std::uint64_t seed = 8100;
  for (const auto& c : cases) {
    const QKShape& s = c.s;
    const QK x = random_qk(s, seed);
    const auto v = random_normal(x.k.size(), seed + 7);
    ++seed;
    const AttentionOptions ao{.causal = true};
    const IndexOptions io{.sharing = c.sharing};
    auto run = [&](Context& ctx) {
      Tensor q = ctx.upload(x.q, DType::f32, {s.B, s.Hq, s.Lq, s.D});
      Tensor k = ctx.upload(x.k, DType::f32, {s.B, s.Hkv, s.Lk, s.D});
      Tensor vv = ctx.upload(v, DType::f32, {s.B, s.Hkv, s.Lk, s.D});
      return attention(ctx, q, k, vv, c.p, ao, io).out.download<float>();
    };
    const auto got = run(dev), want = run(fb);
    EXPECT_EQ(compare_bits(got, want), "") << "seed " << seed - 1;
    // float64 over the built index's element set
    const HostIndex idx = build_host(fb, s, x, c.p, io);
    const int G = s.Hq / s.Hkv, gi = c.sharing == IndexSharing::kv_group ? G : 1;
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.D));
    double worst = 0;
    for (int h = 0; h < s.Hq; ++h)
      for (int i = 0; i < s.Lq; ++i) {
        const auto keys = computed_keys(idx, 0, h / gi, i / 64, i);
        const float* qr = &x.q[static_cast<std::size_t>((h * s.Lq + i) * s.D)];
        std::vector<double> sc;
        double m = -INFINITY;
        for (int j : keys) {
          const float* kr = &x.k[static_cast<std::size_t>(((h / G) * s.Lk + j) * s.D)];
          double d = 0;
          for (int e = 0; e < s.D; ++e) d += static_cast<double>(qr[e]) * kr[e];
          sc.push_back(d * scale);
          m = std::max(m, d * scale);
        }
        double z = 0;
        for (double& e : sc) z += (e = std::exp(e - m));
        for (int e = 0; e < s.D; ++e) {
          double o = 0;
          std::size_t t = 0;
          for (int j : keys)
            o += sc[t++] * v[static_cast<std::size_t>(((h / G) * s.Lk + j) * s.D + e)];
          o /= z;
          const float f = want[static_cast<std::size_t>((h * s.Lq + i) * s.D + e)];
          worst = std::max(worst, std::abs(f - o) / (1 + std::abs(o)));
        }
      }
    EXPECT_LE(worst, 2e-6) << "seed " << seed - 1;
  }
}

}  // namespace
}  // namespace sparq::test
