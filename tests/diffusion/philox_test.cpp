// Philox4x32-10 known answers (Random123 kat_vectors + sparq's keying vectors), the Gaussian
// transform on device == fallback, its moments, and stream independence.
#include "common/philox.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "diffusion/diffusion_test_util.h"

namespace sparq::test::diff {
namespace {

using namespace sparq::cl_common;

struct Kat {
  std::uint32_t c[4], k[2], out[4];
};

TEST(DiffusionPhilox, KnownAnswers) {
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
      // sparq keying examples of the spec (§3.1): key (42, 0).
      {{0, 0, 0, 0}, {42, 0}, {0x9ceaf053, 0x77f5493b, 0x12bf50ad, 0x5742b3d7}},
      {{1, 0, 0, 0}, {42, 0}, {0xfcdb2127, 0x53ba6cfd, 0x838f5a6e, 0x744e06fb}},
  };
  for (const auto& kat : kats) {
    const SqPhilox4 r =
        sq_philox4x32_10(kat.c[0], kat.c[1], kat.c[2], kat.c[3], kat.k[0], kat.k[1]);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(r.v[i], kat.out[i])
          << "counter " << std::hex << kat.c[0] << " key " << kat.k[0] << " word " << i;
  }
}

// Box-Muller corner cases: u never 0 (radius finite), the maximum radius, quadrant rotation.
TEST(DiffusionPhilox, BoxMullerRange) {
  EXPECT_TRUE(std::isfinite(sq_box_muller(0u, 0u, 0)));
  EXPECT_NEAR(sq_box_muller(0u, 0u, 0), std::sqrt(48 * std::log(2.0)), 1e-5);  // max |z|
  EXPECT_EQ(sq_box_muller(0u, 0u, 1), 0.0f);                                   // angle 0: sin 0
  // Quarter turn (rb top bits 01): cos = -sin(0) = -0, sin = cos(0) = 1 times the radius.
  const float r = sq_box_muller(0u, 0x40000000u, 1);
  EXPECT_NEAR(r, std::sqrt(48 * std::log(2.0)), 1e-5);
  EXPECT_EQ(sq_box_muller(0xffffffffu, 0u, 0), std::sqrt(-2.0f * sq_log(1.0f - 5.9604645e-8f)));
}

TEST(DiffusionRandn, DeviceEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  const std::vector<std::uint64_t> seeds{0, 42, 0xffffffffffffffffull, 123456789012345ull};
  for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
    const RandnOptions o{.step = 7, .tag = kTagStepNoise, .scale = 1.5f, .dtype = dt};
    const std::vector<std::int64_t> shape{4, 4, 33, 65};  // S not a multiple of 4
    const auto a = download_f32(randn(dev, make_seeds(dev, seeds), shape, o));
    const auto b = download_f32(randn(cpu, make_seeds(cpu, seeds), shape, o));
    EXPECT_EQ(compare_bits(a, b), "") << dtype_name(dt);
  }
}

// A sample's noise depends only on (seed, j, step, tag): not on its batch position or size.
TEST(DiffusionRandn, BatchInvariant) {
  Context cpu = fallback_context();
  const std::vector<std::uint64_t> seeds{5, 6, 7, 8, 9, 10, 11};
  const auto all = randn(cpu, make_seeds(cpu, seeds), {7, 1000}).download<float>();
  const std::vector<std::uint64_t> one{9};
  const auto single = randn(cpu, make_seeds(cpu, one), {1, 1000}).download<float>();
  EXPECT_EQ(compare_bits(std::vector<float>(all.begin() + 4000, all.begin() + 5000), single), "");
}

double ks_normal(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  double d = 0;
  const double n = static_cast<double>(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double cdf = 0.5 * std::erfc(-v[i] / std::sqrt(2.0));
    d = std::max({d, std::fabs(cdf - i / n), std::fabs((i + 1) / n - cdf)});
  }
  return d;
}

// 2^24 samples (spec §9 asks 2^26; tolerances scaled by the 2x larger standard error).
TEST(DiffusionRandn, Moments) {
  Context cpu = fallback_context();
  const std::vector<std::uint64_t> seeds{2024, 7};
  const auto z = randn(cpu, make_seeds(cpu, seeds), {2, 1 << 23}).download<float>();
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  for (float v : z) {
    const double x = v;
    s1 += x;
    s2 += x * x;
    s3 += x * x * x;
    s4 += x * x * x * x;
  }
  const double n = static_cast<double>(z.size());
  const double mean = s1 / n, var = s2 / n - mean * mean;
  const double skew = s3 / n / std::pow(var, 1.5), kurt = s4 / n / (var * var);
  EXPECT_LT(std::fabs(mean), 1e-3);
  EXPECT_LT(std::fabs(var - 1), 2e-3);
  EXPECT_LT(std::fabs(skew), 5 * std::sqrt(6 / n));
  EXPECT_LT(std::fabs(kurt - 3), 5 * std::sqrt(24 / n));
  EXPECT_LT(ks_normal(std::vector<float>(z.begin(), z.begin() + (1 << 22))), 1e-3);
}

// Streams (tags, steps, lanes of one block) are uncorrelated.
TEST(DiffusionRandn, StreamIndependence) {
  Context cpu = fallback_context();
  const std::vector<std::uint64_t> seeds{99};
  const std::int64_t n = 1 << 20;
  auto draw = [&](std::uint32_t step, std::uint32_t tag) {
    return randn(cpu, make_seeds(cpu, seeds), {1, n}, {.step = step, .tag = tag}).download<float>();
  };
  auto corr = [](const std::vector<float>& a, const std::vector<float>& b, std::size_t shift) {
    double s = 0;
    for (std::size_t i = 0; i + shift < a.size(); ++i) s += double(a[i]) * b[i + shift];
    return s / static_cast<double>(a.size() - shift);
  };
  const auto base = draw(0, kTagInitLatent);
  const double bound = 5e-3;  // 5 standard errors at n = 2^20
  EXPECT_LT(std::fabs(corr(base, draw(1, kTagInitLatent), 0)), bound);
  EXPECT_LT(std::fabs(corr(base, draw(0, kTagStepNoise), 0)), bound);
  EXPECT_LT(std::fabs(corr(base, draw(0, kTagRenoise | (1u << 8)), 0)), bound);
  EXPECT_LT(std::fabs(corr(base, base, 1)), bound);  // neighbouring lanes
  EXPECT_LT(std::fabs(corr(base, base, 2)), bound);
}

}  // namespace
}  // namespace sparq::test::diff
