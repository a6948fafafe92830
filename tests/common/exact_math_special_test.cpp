// Exact values the specs promise for special inputs (±0, ±inf, NaN, thresholds), bit for bit
// (signed zeros included), plus the documented departures of silu / sigmoid below -88.72.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "common/exact_math.h"
#include "common/exact_math_cases.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Bitwise, with sparq's NaN rule; prints both values in hex on failure.
#define EXPECT_BITS(got, want)                                                       \
  EXPECT_TRUE(same_bits((got), (want)))                                              \
      << #got << " = " << std::hexfloat << static_cast<double>(got) << ", expected " \
      << static_cast<double>(want)

TEST(ExactMathSpecial, Exp2AndExp2Q) {
  for (auto f : {sq_exp2, sq_exp2_q}) {
    EXPECT_BITS(f(0.0f), 1.0f);
    EXPECT_BITS(f(-0.0f), 1.0f);
    EXPECT_BITS(f(-kInf), 0.0f);
    EXPECT_BITS(f(kInf), kInf);
    EXPECT_BITS(f(kNaN), kNaN);
    EXPECT_BITS(f(128.0f), kInf);
    EXPECT_BITS(f(-150.5f), 0.0f);
    EXPECT_BITS(f(-1e30f), 0.0f);
    EXPECT_BITS(f(1e30f), kInf);
  }
  // Integer exponents are exact powers of two, through the subnormal range.
  for (int k = -149; k <= 127; ++k)
    EXPECT_BITS(sq_exp2(static_cast<float>(k)), std::ldexp(1.0f, k));
  EXPECT_BITS(sq_exp2(-150.0f), 0.0f);  // 2^-150 is the tie between 0 and 2^-149: even is 0
  EXPECT_BITS(sq_exp2(1.0f), 2.0f);
}

TEST(ExactMathSpecial, Exp) {
  EXPECT_BITS(sq_exp(0.0f), 1.0f);
  EXPECT_BITS(sq_exp(-0.0f), 1.0f);
  EXPECT_BITS(sq_exp(-kInf), 0.0f);
  EXPECT_BITS(sq_exp(kInf), kInf);
  EXPECT_BITS(sq_exp(kNaN), kNaN);
  EXPECT_BITS(sq_exp(-104.5f), 0.0f);
  EXPECT_BITS(sq_exp(100.5f), kInf);
  EXPECT_BITS(sq_exp(89.0f), kInf);  // overflow by IEEE rules, inside the computed range
  EXPECT_TRUE(std::isfinite(sq_exp(88.72f)));
  EXPECT_GT(sq_exp(-103.0f), 0.0f);  // a subnormal, not flushed
}

TEST(ExactMathSpecial, Log1p) {
  EXPECT_BITS(sq_log1p(0.0f), 0.0f);
  EXPECT_BITS(sq_log1p(-0.0f), -0.0f);
  EXPECT_BITS(sq_log1p(-1.0f), -kInf);
  EXPECT_BITS(sq_log1p(-1.5f), kNaN);
  EXPECT_BITS(sq_log1p(-kInf), kNaN);
  EXPECT_BITS(sq_log1p(kInf), kInf);
  EXPECT_BITS(sq_log1p(kNaN), kNaN);
  EXPECT_BITS(sq_log1p(0x1p-149f), 0x1p-149f);  // tiny x: log1p(x) = x
  EXPECT_BITS(sq_log1p(-0x1p-30f), -0x1p-30f);
}

TEST(ExactMathSpecial, LogAndLog2) {
  for (auto f : {sq_log, sq_log2}) {
    EXPECT_BITS(f(1.0f), 0.0f);
    EXPECT_BITS(f(0.0f), -kInf);
    EXPECT_BITS(f(-0.0f), -kInf);
    EXPECT_BITS(f(-1.0f), kNaN);
    EXPECT_BITS(f(-kInf), kNaN);
    EXPECT_BITS(f(-0x1p-149f), kNaN);
    EXPECT_BITS(f(kInf), kInf);
    EXPECT_BITS(f(kNaN), kNaN);
  }
  // log2 of a power of two is exact, subnormals included.
  for (int k = -149; k <= 127; ++k)
    EXPECT_BITS(sq_log2(std::ldexp(1.0f, k)), static_cast<float>(k));
}

TEST(ExactMathSpecial, SoftplusSiluSigmoid) {
  EXPECT_BITS(sq_softplus(-kInf), 0.0f);
  EXPECT_BITS(sq_softplus(kInf), kInf);
  EXPECT_BITS(sq_softplus(kNaN), kNaN);
  EXPECT_BITS(sq_softplus(20.5f), 20.5f);  // threshold rule: x > 20 -> x
  EXPECT_BITS(sq_softplus(-200.0f), 0.0f);

  EXPECT_BITS(sq_silu(0.0f), 0.0f);
  EXPECT_BITS(sq_silu(-0.0f), -0.0f);
  EXPECT_BITS(sq_silu(kInf), kInf);
  EXPECT_BITS(sq_silu(-kInf), kNaN);  // inf / inf, as the mamba_ssm formula
  EXPECT_BITS(sq_silu(kNaN), kNaN);
  EXPECT_BITS(sq_silu(1e30f), 1e30f);

  EXPECT_BITS(sq_sigmoid(0.0f), 0.5f);
  EXPECT_BITS(sq_sigmoid(-0.0f), 0.5f);
  EXPECT_BITS(sq_sigmoid(kInf), 1.0f);
  EXPECT_BITS(sq_sigmoid(-kInf), 0.0f);
  EXPECT_BITS(sq_sigmoid(kNaN), kNaN);
  EXPECT_BITS(sq_sigmoid(100.0f), 1.0f);

  // The documented departure: below -88.72, e^-x overflows; silu gives -0, sigmoid +0.
  for (float x : {std::nextafter(kExpOverflowNeg, -kInf), -88.8f, -92.0f, -1e30f}) {
    EXPECT_BITS(sq_silu(x), -0.0f);
    EXPECT_BITS(sq_sigmoid(x), 0.0f);
  }
  EXPECT_LT(sq_silu(kExpOverflowNeg), 0.0f);  // still the finite formula at the edge
}

TEST(ExactMathSpecial, Sincospi) {
  float c = -1.0f;
  EXPECT_BITS(sq_sincospi(0.0f, &c), 0.0f);
  EXPECT_BITS(c, 1.0f);
  const float s = sq_sincospi(0.25f, &c);
  EXPECT_NEAR(s, 0.70710678f, 1e-7f);
  EXPECT_NEAR(c, 0.70710678f, 1e-7f);
  EXPECT_BITS(sq_sincospi(kNaN, &c), kNaN);  // outside the domain, NaN still propagates
  EXPECT_BITS(c, kNaN);
}

// sq_tanh (attention soft-cap): special values, oddness, and accuracy on 2^20 inputs spread over
// [-12, 12] against long double tanhl. Exhaustive max over all 2^32 inputs: 1.330 ulp
// (docs/exact_math.md); asserted here: <= 1.5 ulp.
TEST(ExactMathSpecial, Tanh) {
  EXPECT_BITS(sq_tanh(0.0f), 0.0f);
  EXPECT_BITS(sq_tanh(-0.0f), -0.0f);
  EXPECT_BITS(sq_tanh(kInf), 1.0f);
  EXPECT_BITS(sq_tanh(-kInf), -1.0f);
  EXPECT_BITS(sq_tanh(kNaN), kNaN);
  EXPECT_BITS(sq_tanh(0x1p-149f), 0x1p-149f);
  EXPECT_BITS(sq_tanh(-0x1p-130f), -0x1p-130f);
  EXPECT_BITS(sq_tanh(50.0f), 1.0f);
  double worst = 0;
  for (int i = 0; i < (1 << 20); ++i) {
    const float x = -12.0f + 24.0f * static_cast<float>(i) / static_cast<float>(1 << 20);
    const float y = sq_tanh(x);
    EXPECT_EQ(std::bit_cast<std::uint32_t>(sq_tanh(-x)),
              std::bit_cast<std::uint32_t>(y) ^ 0x80000000u);
    const long double e = std::tanh(static_cast<long double>(x));
    if (e == 0) continue;
    int ex = std::ilogb(e);
    ex = ex < -126 ? -126 : ex;
    worst = std::max(worst, static_cast<double>(std::fabs(y - e) / std::ldexp(1.0L, ex - 23)));
  }
  EXPECT_LE(worst, 1.5);
}

}  // namespace
}  // namespace sparq::test
