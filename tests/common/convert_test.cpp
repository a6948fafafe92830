// Storage conversions (kernels_cl/common/convert.h): widening of all 65536 fp16 / bf16 codes
// against values computed independently, round trips, and fp32 -> fp16 / bf16 narrowing
// against a nearest-neighbour reference (ties to even) on ties, overflow and subnormal edges.
#include "common/convert.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/exact_math_cases.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;

// fp16 value from its fields, in double (exact).
double f16_value(std::uint32_t h) {
  const int e = static_cast<int>((h >> 10) & 0x1f);
  const double m = h & 0x3ff;
  const double mag = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -mag : mag;
}

TEST(Convert, F16ToF32AllCodes) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float got = sq_f16_to_f32(static_cast<ushort>(h));
    const std::uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) {
      ASSERT_EQ(to_bits(got), ((h & 0x8000u) << 16) | 0x7f800000u | (m << 13)) << std::hex << h;
    } else {
      ASSERT_TRUE(same_bits(got, static_cast<float>(f16_value(h)))) << std::hex << h;
    }
  }
}

TEST(Convert, F16RoundTripAllCodes) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0;
    const std::uint32_t want = nan ? ((h & 0x8000u) | 0x7e00u) : h;
    ASSERT_EQ(sq_f32_to_f16_rne(sq_f16_to_f32(static_cast<ushort>(h))), want) << std::hex << h;
  }
}

TEST(Convert, Bf16AllCodesAndRoundTrip) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = sq_bf16_to_f32(static_cast<ushort>(h));
    ASSERT_EQ(to_bits(f), h << 16);
    const bool nan = std::isnan(f);
    const std::uint32_t want = nan ? ((h & 0x8000u) | 0x7fc0u) : h;
    ASSERT_EQ(sq_f32_to_bf16_rne(f), want) << std::hex << h;
  }
}

// Nearest of two candidate codes lo < hi (magnitudes in double), ties to the even code.
std::uint32_t nearest(double mag, double lo_mag, std::uint32_t lo, double hi_mag,
                      std::uint32_t hi) {
  const double dl = mag - lo_mag, dh = hi_mag - mag;  // exact: all values fit in 53 bits
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return (lo & 1) ? hi : lo;
}

// fp16 reference: binary search among all finite codes, plus 65536 (code 0x7c00, even) as the
// next value up: IEEE rounds as if the exponent were unbounded, then overflows to inf.
std::uint32_t f16_reference(float x) {
  const std::uint32_t sign = (to_bits(x) >> 16) & 0x8000u;
  if (std::isnan(x)) return sign | 0x7e00u;
  const double mag = std::fabs(static_cast<double>(x));
  if (mag >= 65536.0) return sign | 0x7c00u;
  // Largest code with value <= mag (codes 0..0x7bff are increasing in value).
  std::uint32_t lo = 0, hi = 0x7c00;
  while (hi - lo > 1) {
    const std::uint32_t mid = (lo + hi) / 2;
    (f16_value(mid) <= mag ? lo : hi) = mid;
  }
  const double lo_mag = f16_value(lo);
  if (lo_mag == mag) return sign | lo;
  const double hi_mag = lo + 1 == 0x7c00 ? 65536.0 : f16_value(lo + 1);
  return sign | nearest(mag, lo_mag, lo, hi_mag, lo + 1);
}

std::uint32_t bf16_reference(float x) {
  const std::uint32_t u = to_bits(x);
  if (std::isnan(x)) return ((u >> 16) & 0x8000u) | 0x7fc0u;
  const std::uint32_t lo = (u & 0x7fffffffu) >> 16;  // truncation toward zero
  const double mag = std::fabs(static_cast<double>(x));
  const double lo_mag = from_bits(lo << 16);
  // The next bf16 up; above 0x7f7f (the largest finite) it is 2^128 (then inf, code 0x7f80).
  const double hi_mag = lo + 1 == 0x7f80 ? 0x1p128 : from_bits((lo + 1) << 16);
  return ((u >> 16) & 0x8000u) | (lo_mag == mag ? lo : nearest(mag, lo_mag, lo, hi_mag, lo + 1));
}

// Narrowing inputs: the whole-range stride, every fp16 value's midpoint to the next code and its
// neighbours (all ties), bf16 ties, and the named edges.
std::vector<std::uint32_t> narrowing_inputs() {
  std::vector<std::uint32_t> in;
  append_whole_range(in);
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    const double mid = (f16_value(h) + (h + 1 == 0x7c00 ? 65536.0 : f16_value(h + 1))) / 2;
    for (int d = -2; d <= 2; ++d)
      for (float s : {1.0f, -1.0f})
        in.push_back(to_bits(s * ordinal_float(float_ordinal(static_cast<float>(mid)) + d)));
  }
  for (std::uint32_t i = 0; i < (1u << 20); ++i) {
    const std::uint32_t tie = (mix32(i) & 0xffff0000u) | 0x8000u;  // exactly halfway for bf16
    for (std::uint32_t d : {0u, 1u, 0xffffffffu}) in.push_back(tie + d);
  }
  append_specials(in, {65504.0f, 65519.99f, 65520.0f, 65536.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f,
                       0x1.8p-24f, 0x1p-14f, 0x1.ffcp-15f, 3.3895314e38f});
  return in;
}

TEST(Convert, F32ToF16AndBf16AgainstNearestReference) {
  std::uint64_t bad16 = 0, bad_bf = 0;
  for (std::uint32_t u : narrowing_inputs()) {
    const float x = from_bits(u);
    const std::uint32_t g16 = sq_f32_to_f16_rne(x), w16 = f16_reference(x);
    if (g16 != w16 && bad16++ < 5)
      ADD_FAILURE() << "f16 of " << std::hexfloat << x << ": " << std::hex << g16 << " vs " << w16;
    const std::uint32_t gbf = sq_f32_to_bf16_rne(x), wbf = bf16_reference(x);
    if (gbf != wbf && bad_bf++ < 5)
      ADD_FAILURE() << "bf16 of " << std::hexfloat << x << ": " << std::hex << gbf << " vs " << wbf;
  }
  EXPECT_EQ(bad16, 0u);
  EXPECT_EQ(bad_bf, 0u);
}

TEST(Convert, NamedEdges) {
  EXPECT_EQ(sq_f32_to_f16_rne(65504.0f), 0x7bffu);
  EXPECT_EQ(sq_f32_to_f16_rne(65519.996f), 0x7bffu);
  EXPECT_EQ(sq_f32_to_f16_rne(65520.0f), 0x7c00u);  // tie with 65536: even -> inf
  EXPECT_EQ(sq_f32_to_f16_rne(-1e30f), 0xfc00u);
  EXPECT_EQ(sq_f32_to_f16_rne(-std::numeric_limits<float>::infinity()), 0xfc00u);
  EXPECT_EQ(sq_f32_to_f16_rne(0x1p-25f), 0x0000u);  // tie with 2^-24: even -> 0
  EXPECT_EQ(sq_f32_to_f16_rne(-0x1.000002p-25f), 0x8001u);
  EXPECT_EQ(sq_f32_to_f16_rne(0x1.8p-24f), 0x0002u);    // 1.5 units: tie -> 2
  EXPECT_EQ(sq_f32_to_f16_rne(0x1.ff8p-15f), 0x03ffu);  // the largest subnormal half
  EXPECT_EQ(sq_f32_to_f16_rne(0x1.ffcp-15f), 0x0400u);  // tie: up to even, the least normal
  EXPECT_EQ(sq_f32_to_f16_rne(-0.0f), 0x8000u);
  EXPECT_EQ(sq_f32_to_f16_rne(-std::numeric_limits<float>::quiet_NaN()), 0xfe00u);
  EXPECT_EQ(sq_f32_to_bf16_rne(from_bits(0x7f7fffffu)), 0x7f80u);  // FLT_MAX rounds to inf
  EXPECT_EQ(sq_f32_to_bf16_rne(from_bits(0xff800001u)), 0xffc0u);  // sNaN -> quiet, sign kept
  EXPECT_EQ(sq_f32_to_bf16_rne(from_bits(0x3f808000u)), 0x3f80u);  // tie to even (down)
  EXPECT_EQ(sq_f32_to_bf16_rne(from_bits(0x3f818000u)), 0x3f82u);  // tie to even (up)
  EXPECT_EQ(sq_f32_to_bf16_rne(from_bits(0x00008001u)), 0x0001u);  // subnormal rounds up
  EXPECT_TRUE(same_bits(sq_f16_to_f32(0x0001), 0x1p-24f));
  EXPECT_TRUE(same_bits(sq_f16_to_f32(0x83ff), -0x1.ff8p-15f));
  EXPECT_TRUE(same_bits(sq_f16_to_f32(0x7c00), std::numeric_limits<float>::infinity()));
}

}  // namespace
}  // namespace sparq::test
