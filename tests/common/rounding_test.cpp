// sq_round_rne / sq_round_rne_int / sq_to_int_sat_rne (kernels_cl/common/rounding.h) against
// std::nearbyint in the default rounding mode (a test reference only; the library never calls
// it), exhaustively over all 2^32 floats, and independence of the current rounding mode.
#include "common/rounding.h"

#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/exact_math_cases.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;

// Exhaustive, split by sign so that ctest runs the halves in parallel.
void expect_round_matches_nearbyint(std::uint32_t sign) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  std::uint64_t bad = 0;
  std::uint32_t first_bad = 0;
  for (std::uint32_t i = 0; i <= 0x7fffffffu; ++i) {
    const float x = from_bits(sign | i);
    if (!same_bits(sq_round_rne(x), std::nearbyint(x)) && bad++ == 0) first_bad = sign | i;
  }
  EXPECT_EQ(bad, 0u) << "first at bits 0x" << std::hex << first_bad;
}
TEST(Rounding, RoundRneMatchesNearbyintOnAllPositiveFloats) {
  expect_round_matches_nearbyint(0u);
}
TEST(Rounding, RoundRneMatchesNearbyintOnAllNegativeFloats) {
  expect_round_matches_nearbyint(0x80000000u);
}

TEST(Rounding, Values) {
  EXPECT_TRUE(same_bits(sq_round_rne(0.5f), 0.0f));
  EXPECT_TRUE(same_bits(sq_round_rne(-0.5f), -0.0f));
  EXPECT_TRUE(same_bits(sq_round_rne(-0.2f), -0.0f));
  EXPECT_EQ(sq_round_rne(1.5f), 2.0f);
  EXPECT_EQ(sq_round_rne(2.5f), 2.0f);
  EXPECT_EQ(sq_round_rne(-2.5f), -2.0f);
  EXPECT_EQ(sq_round_rne(0x1.fffffep22f), 0x1p23f);  // 8388607.5 -> 8388608 (even)
  EXPECT_EQ(sq_round_rne_int(-3.5f), -4);
  EXPECT_EQ(sq_round_rne_int(0x1.fffffep30f), 2147483520);
  EXPECT_EQ(sq_to_int_sat_rne(std::numeric_limits<float>::quiet_NaN(), -8, 7), 0);
  EXPECT_EQ(sq_to_int_sat_rne(std::numeric_limits<float>::infinity(), -8, 7), 7);
  EXPECT_EQ(sq_to_int_sat_rne(-std::numeric_limits<float>::infinity(), -8, 7), -8);
  EXPECT_EQ(sq_to_int_sat_rne(7.5f, -8, 7), 7);
  EXPECT_EQ(sq_to_int_sat_rne(-8.5f, -8, 7), -8);
  EXPECT_EQ(sq_to_int_sat_rne(6.5f, -8, 7), 6);
  EXPECT_EQ(sq_to_int_sat_rne(-1e30f, 0, 255), 0);
}

// Reference: NaN -> 0, else clamp then nearbyint (round-to-nearest mode).
int sat_reference(float x, int lo, int hi) {
  if (std::isnan(x)) return 0;
  const double r = std::nearbyint(static_cast<double>(x));
  return r < lo ? lo : (r > hi ? hi : static_cast<int>(r));
}

TEST(Rounding, SaturatingAndIntFormsOverTheWholeRange) {
  std::vector<std::uint32_t> in;
  append_whole_range(in);
  append_specials(in, {127.5f, 128.5f, -128.5f, 255.5f, 0x1p24f, -0x1p24f, 0x1p31f, -0x1p31f});
  const int bounds[][2] = {{-128, 127}, {0, 255}, {-8, 7}, {-(1 << 24), 1 << 24}};
  std::uint64_t bad = 0;
  for (std::uint32_t u : in) {
    const float x = from_bits(u);
    for (const auto& b : bounds)
      if (sq_to_int_sat_rne(x, b[0], b[1]) != sat_reference(x, b[0], b[1]) && bad++ == 0)
        ADD_FAILURE() << "sat x=" << std::hexfloat << x << " [" << b[0] << ", " << b[1] << "]";
    if (std::fabs(x) < 0x1p31f && sq_round_rne_int(x) != static_cast<int>(std::nearbyint(x)) &&
        bad++ == 0)
      ADD_FAILURE() << "int x=" << std::hexfloat << x;
  }
  EXPECT_EQ(bad, 0u);
}

// The result must not depend on the rounding mode (rint/nearbyint would).
TEST(Rounding, IndependentOfRoundingMode) {
  std::vector<std::uint32_t> in;
  append_whole_range(in);
  std::vector<float> nearest(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) nearest[i] = sq_round_rne(from_bits(in[i]));
  for (int mode : {FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO}) {
    ASSERT_EQ(std::fesetround(mode), 0);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < in.size(); ++i)
      bad += !same_bits(sq_round_rne(from_bits(in[i])), nearest[i]);
    std::fesetround(FE_TONEAREST);
    EXPECT_EQ(bad, 0u) << "rounding mode " << mode;
  }
}

}  // namespace
}  // namespace sparq::test
