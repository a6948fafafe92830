// MMInference permutations (specs/sparse_attention.md §7.1-7.2): gather/scatter device ≡
// fallback bit for bit, unpermute(permute(x)) == x, per-head-group permutations, positions
// travel with rows, bijection validation, and the grid / modality generators.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "test_support.h"

namespace sparq::test {
namespace {

std::vector<std::int32_t> random_perm(std::int64_t len, std::uint64_t seed) {
  std::vector<std::int32_t> p(static_cast<std::size_t>(len));
  std::iota(p.begin(), p.end(), 0);
  std::mt19937_64 rng(seed);
  for (std::size_t i = p.size(); i > 1; --i) std::swap(p[i - 1], p[rng() % i]);
  return p;
}

TEST(MMInferencePermute, GatherScatterExactAndInverse) {
  auto dev = device_context();
  auto cpu = fallback_context();
  for (const DType t : {DType::f32, DType::bf16, DType::f16}) {
    for (const int groups : {0, 2}) {  // 0: one permutation per batch; 2: per head group
      const std::int64_t B = 2, H = 4, L = 77, D = 24;
      auto x = random_normal(static_cast<std::size_t>(B * H * L * D), 5);
      x[3] = std::numeric_limits<float>::quiet_NaN();
      x[4] = -0.0f;
      std::vector<std::int32_t> perm;
      for (int r = 0; r < B * std::max(groups, 1); ++r) {
        const auto p = random_perm(L, 100 + r);
        perm.insert(perm.end(), p.begin(), p.end());
      }
      const std::vector<std::int64_t> pshape =
          groups ? std::vector<std::int64_t>{B, groups, L} : std::vector<std::int64_t>{B, L};
      std::vector<std::vector<std::uint16_t>> got;
      for (auto* ctx : {&dev, &cpu}) {
        const Tensor xt = upload_as(*ctx, x, t, {B, H, L, D});
        const Tensor pt = ctx->upload(perm, DType::i32, pshape);
        const Tensor xp = permute_rows(*ctx, xt, pt);
        const Tensor back = unpermute_rows(*ctx, xp, pt);
        const auto in = xt.download<std::uint16_t>(), fwd = xp.download<std::uint16_t>();
        EXPECT_EQ(back.download<std::uint16_t>(), in) << "round trip";
        // Xp[b, h, n] = X[b, h, perm[n]]
        const std::size_t es = dtype_size(t) / 2;
        for (std::int64_t b = 0; b < B; ++b)
          for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t n = 0; n < L; ++n) {
              const std::int64_t g = groups ? h / (H / groups) : 0;
              const std::int64_t pi =
                  perm[static_cast<std::size_t>((b * std::max(groups, 1) + g) * L + n)];
              for (std::int64_t e = 0; e < static_cast<std::int64_t>(D * es); ++e)
                ASSERT_EQ(fwd[static_cast<std::size_t>(((b * H + h) * L + n) * D * es + e)],
                          in[static_cast<std::size_t>(((b * H + h) * L + pi) * D * es + e)]);
            }
        got.push_back(fwd);
      }
      EXPECT_EQ(got[0], got[1]) << "device vs fallback, " << dtype_name(t);
    }
  }
}

TEST(MMInferencePermute, StridedInputAndPositions) {
  auto dev = device_context();
  const std::int64_t B = 1, H = 2, L = 10, D = 8;
  // [B, L, H, D] memory read as [B, H, L, D].
  auto x = random_normal(static_cast<std::size_t>(B * L * H * D), 6);
  const Tensor raw = dev.upload(x, DType::f32, {B, L, H, D});
  const Tensor view = raw.view({B, H, L, D}, {L * H * D, D, H * D, 1});
  const auto perm = random_perm(L, 7);
  const Tensor pt = dev.upload(perm, DType::i32, {B, L});
  const auto got = permute_rows(dev, view, pt).download<float>();
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t n = 0; n < L; ++n)
      for (std::int64_t e = 0; e < D; ++e)
        ASSERT_EQ(got[static_cast<std::size_t>((h * L + n) * D + e)],
                  x[static_cast<std::size_t>((perm[n] * H + h) * D + e)]);
  const auto pos = permuted_positions(dev, pt, 5).download<std::int32_t>();
  for (std::int64_t n = 0; n < L; ++n) EXPECT_EQ(pos[n], perm[n] + 5);
}

TEST(MMInferencePermute, RejectsNonBijections) {
  auto ctx = fallback_context();
  const Tensor x = ctx.upload(std::vector<float>(2 * 3 * 4 * 8), DType::f32, {2, 3, 4, 8});
  auto expect_error = [&](std::vector<std::int32_t> p, std::vector<std::int64_t> shape,
                          const char* needle) {
    try {
      permute_rows(ctx, x, ctx.upload(p, DType::i32, shape));
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({0, 1, 2, 3, 0, 1, 1, 3}, {2, 4}, "bijection");
  expect_error({0, 1, 2, 3, 0, 1, 2, 4}, {2, 4}, "out of range");
  expect_error({0, 1, 2, 3, 0, 1, 2, -1}, {2, 4}, "out of range");
  expect_error({0, 1, 2, 0, 1, 2}, {2, 3}, "expected");
  expect_error(std::vector<std::int32_t>(16, 0), {2, 2, 4}, "multiple");  // 3 heads, 2 groups
}

TEST(MMInferencePermute, GridPermutationIsPhaseMajor) {
  // Text 0..4, a video of 3 frames x 4 tokens (last frame partial: 2 tokens) at [5, 15), text.
  const auto p = grid_permutation(17, {{5, 15, 4}});
  const std::vector<std::int32_t> want{0, 1, 2, 3, 4, 5, 9, 13, 6, 10, 14, 7, 11, 8, 12, 15, 16};
  EXPECT_EQ(p, want);
  // Every token once; a same-phase token of the next frame is next to it afterwards.
  std::vector<std::int32_t> s = p;
  std::sort(s.begin(), s.end());
  for (int i = 0; i < 17; ++i) EXPECT_EQ(s[i], i);
  EXPECT_THROW(grid_permutation(10, {{2, 8, 2}, {6, 9, 1}}), Error);  // overlap
  EXPECT_THROW(grid_permutation(10, {{2, 11, 2}}), Error);            // past L
  EXPECT_THROW(grid_permutation(10, {{2, 8, 0}}), Error);             // frame_tokens
}

TEST(MMInferencePermute, ModalityPermutationIsStable) {
  EXPECT_EQ(modality_permutation({1, 0, 1, 0, 2, 0}),
            (std::vector<std::int32_t>{1, 3, 5, 0, 2, 4}));
  EXPECT_THROW(modality_permutation({0, -1}), Error);
}

}  // namespace
}  // namespace sparq::test
