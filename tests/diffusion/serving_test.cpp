// MoDM serving helpers: l2_normalize and sim_top1 (device == fallback, planted nearest item,
// deterministic ties, invalid rows, NaN), renoise (device == fallback, formula).
#include <cmath>

#include "diffusion/diffusion_test_util.h"

namespace sparq::test::diff {
namespace {

std::vector<float> normalized_rows(std::int64_t m, std::int64_t d, std::uint64_t seed) {
  auto v = random_normal(static_cast<std::size_t>(m * d), seed);
  for (std::int64_t r = 0; r < m; ++r) {
    double ss = 0;
    for (std::int64_t k = 0; k < d; ++k) ss += double(v[r * d + k]) * v[r * d + k];
    for (std::int64_t k = 0; k < d; ++k)
      v[r * d + k] = static_cast<float>(v[r * d + k] / std::sqrt(ss));
  }
  return v;
}

TEST(DiffusionServing, L2NormalizeDeviceEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  auto v = random_normal(37 * 77, 3);
  for (int k = 0; k < 77; ++k) v[5 * 77 + k] = 0.0f;  // a zero row stays zero
  const auto a = l2_normalize(dev, dev.upload(v, DType::f32, {37, 77})).download<float>();
  const auto b = l2_normalize(cpu, cpu.upload(v, DType::f32, {37, 77})).download<float>();
  EXPECT_EQ(compare_bits(a, b), "");
  double ss = 0;
  for (int k = 0; k < 77; ++k) ss += double(b[k]) * b[k];
  EXPECT_NEAR(ss, 1.0, 1e-6);
  for (int k = 0; k < 77; ++k) EXPECT_EQ(b[5 * 77 + k], 0.0f);
}

TEST(DiffusionServing, SimTop1PlantedTiesInvalid) {
  Context dev = device_context(), cpu = fallback_context();
  const std::int64_t m = 5000, d = 96, bq = 6;
  auto e = normalized_rows(m, d, 11);
  auto q = normalized_rows(bq, d, 12);
  // Query 0..3 planted at rows 4321, 17, 4999, 2500 (a near-copy wins against random rows).
  const std::int64_t planted[] = {4321, 17, 4999, 2500};
  for (int i = 0; i < 4; ++i)
    for (std::int64_t k = 0; k < d; ++k) e[planted[i] * d + k] = q[i * d + k];
  // Query 4: rows 100 and 3000 are exact copies (tie) -> the smaller index wins.
  for (std::int64_t k = 0; k < d; ++k) e[3000 * d + k] = e[100 * d + k] = q[4 * d + k];
  std::vector<std::uint8_t> valid(static_cast<std::size_t>(m), 1);
  valid[2500] = 0;  // query 3's copy is invalid: someone else must win
  for (std::int64_t k = 0; k < d; ++k) e[7 * d + k] = NAN;  // NaN row never wins
  for (DType dt : {DType::f32, DType::f16}) {
    auto up = [&](Context& ctx) {
      return sim_top1(ctx, upload_as(ctx, e, dt, {m, d}), ctx.upload(valid, DType::u8, {m}),
                      ctx.upload(q, DType::f32, {bq, d}));
    };
    const Top1 a = up(dev), b = up(cpu);
    EXPECT_EQ(a.index, b.index) << dtype_name(dt);
    EXPECT_EQ(compare_bits(a.score, b.score), "") << dtype_name(dt);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(b.index[i], planted[i]) << dtype_name(dt);
    EXPECT_NE(b.index[3], 2500);
    EXPECT_GE(b.index[3], 0);
    EXPECT_EQ(b.index[4], 100) << "ties go to the smaller index";
    // Brute-force double reference for every query.
    for (std::int64_t i = 0; i < bq; ++i) {
      double best = -1e30;
      std::int64_t arg = -1;
      for (std::int64_t r = 0; r < m; ++r) {
        if (!valid[r] || r == 7) continue;
        double s = 0;
        for (std::int64_t k = 0; k < d; ++k) s += double(q[i * d + k]) * e[r * d + k];
        if (s > best + 1e-9) best = s, arg = r;
      }
      if (i != 4) {
        EXPECT_EQ(b.index[i], arg) << "query " << i;
      }
    }
  }
  std::vector<std::uint8_t> none(static_cast<std::size_t>(m), 0);
  const Top1 empty = sim_top1(cpu, cpu.upload(e, DType::f32, {m, d}),
                              cpu.upload(none, DType::u8, {m}), cpu.upload(q, DType::f32, {bq, d}));
  EXPECT_EQ(empty.index[0], -1);
}

// sim_topk: device == fallback for k in {1, 5, 16}; the list is the brute-force order of the
// fallback's own scores (higher score, then smaller index; invalid and NaN rows never listed);
// k = 1 equals sim_top1; fewer valid rows than k pad with -1.
TEST(DiffusionServing, SimTopKOrderTiesAndPadding) {
  Context dev = device_context(), cpu = fallback_context();
  const std::int64_t m = 3000, d = 64, bq = 3;
  auto e = normalized_rows(m, d, 21);
  const auto q = normalized_rows(bq, d, 22);
  for (std::int64_t r : {2999, 40, 1234, 600})  // 4 exact copies of query 0: tied scores
    for (std::int64_t k = 0; k < d; ++k) e[r * d + k] = q[k];
  for (std::int64_t k = 0; k < d; ++k) e[9 * d + k] = NAN;
  std::vector<std::uint8_t> valid(static_cast<std::size_t>(m), 1);
  valid[1234] = 0;
  auto E = [&](Context& ctx) { return ctx.upload(e, DType::f32, {m, d}); };
  auto V = [&](Context& ctx, const std::vector<std::uint8_t>& v) {
    return ctx.upload(v, DType::u8, {static_cast<std::int64_t>(v.size())});
  };
  auto Q = [&](Context& ctx) { return ctx.upload(q, DType::f32, {bq, d}); };
  for (int k : {1, 5, 16}) {
    const TopK a = sim_topk(dev, E(dev), V(dev, valid), Q(dev), k);
    const TopK b = sim_topk(cpu, E(cpu), V(cpu, valid), Q(cpu), k);
    EXPECT_EQ(a.index, b.index) << k;
    EXPECT_EQ(compare_bits(a.score, b.score), "") << k;
    if (k == 5) {  // query 0: the three valid copies first, smaller index first
      EXPECT_EQ(b.index[0], 40);
      EXPECT_EQ(b.index[1], 600);
      EXPECT_EQ(b.index[2], 2999);
      EXPECT_EQ(b.score[0], b.score[1]);
    }
    if (k == 1) {
      const Top1 t = sim_top1(cpu, E(cpu), V(cpu, valid), Q(cpu));
      EXPECT_EQ(t.index, b.index);
      EXPECT_EQ(compare_bits(t.score, b.score), "");
    }
    for (std::int64_t qi = 0; qi < bq; ++qi)
      for (int t = 0; t + 1 < k; ++t) {
        const float s0 = b.score[qi * k + t], s1 = b.score[qi * k + t + 1];
        const int i0 = b.index[qi * k + t], i1 = b.index[qi * k + t + 1];
        EXPECT_TRUE(s0 > s1 || (s0 == s1 && i0 < i1)) << "order at " << t;
        EXPECT_NE(i0, 9);
        EXPECT_NE(i0, 1234);
      }
  }
  // Brute force for query 1 with k = 16: every row's score from a one-row sim_top1 call would be
  // slow; instead the 16th score bounds every unlisted valid row (double dot product, 1e-5 slack).
  const TopK b = sim_topk(cpu, E(cpu), V(cpu, valid), Q(cpu), 16);
  for (std::int64_t r = 0; r < m; ++r) {
    if (!valid[r] || r == 9) continue;
    bool listed = false;
    for (int t = 0; t < 16; ++t) listed = listed || b.index[16 + t] == r;
    if (listed) continue;
    double sc = 0;
    for (std::int64_t k = 0; k < d; ++k) sc += double(q[d + k]) * e[r * d + k];
    EXPECT_LE(sc, b.score[16 + 15] + 1e-5) << "row " << r;
  }
  // Two valid rows, k = 4: padded.
  std::vector<std::uint8_t> two(static_cast<std::size_t>(m), 0);
  two[5] = two[77] = 1;
  const TopK p = sim_topk(cpu, E(cpu), V(cpu, two), Q(cpu), 4);
  const TopK pd = sim_topk(dev, E(dev), V(dev, two), Q(dev), 4);
  EXPECT_EQ(p.index, pd.index);
  EXPECT_EQ(p.index[2], -1);
  EXPECT_EQ(p.index[3], -1);
  EXPECT_THROW(sim_topk(cpu, E(cpu), V(cpu, valid), Q(cpu), 17), Error);
  EXPECT_THROW(sim_topk(cpu, E(cpu), V(cpu, valid), Q(cpu), 0), Error);
}

TEST(DiffusionServing, RenoiseDeviceEqualsFallbackAndFormula) {
  Context dev = device_context(), cpu = fallback_context();
  const Schedule s = make_schedule(Sampler::DDIM, {}, 50);
  const std::vector<RenoiseCoeffs> per{renoise_coeffs(s, 10), renoise_coeffs(s, 25),
                                       renoise_coeffs(s, 40)};
  const auto x0 = random_normal(3 * 4096, 8);
  const auto seeds = seeds_for(3, 4);
  auto run = [&](Context& ctx) {
    return renoise(ctx, ctx.upload(x0, DType::f32, {3, 4096}), make_seeds(ctx, seeds), per)
        .download<float>();
  };
  const auto a = run(dev), b = run(cpu);
  EXPECT_EQ(compare_bits(a, b), "");
  for (int smp = 0; smp < 3; ++smp) {
    const std::vector<std::uint64_t> one{seeds[smp]};
    const auto z =
        randn(cpu, make_seeds(cpu, one), {1, 4096}, {.step = per[smp].step, .tag = kTagRenoise})
            .download<float>();
    for (int j = 0; j < 4096; ++j)
      ASSERT_EQ(b[smp * 4096 + j], std::fma(per[smp].b, z[j], per[smp].a * x0[smp * 4096 + j]));
  }
  const double abar = s.alphas_cumprod[static_cast<std::size_t>(s.timesteps[25])];
  EXPECT_FLOAT_EQ(per[1].a, static_cast<float>(std::sqrt(abar)));
}

}  // namespace
}  // namespace sparq::test::diff
