// Speed forms of shared definitions that a kernel may use in their place, against the definition
// on the host (the kernels compile the same header source):
//  - quant/int8_codec.h sq_i8_scale_rcp / sq_i8_code_p / sq_i8_div_rcp (group scale and P codes
//    by Markstein's correction) == sq_i8_scale, sq_i8_code(x, s, 0) and x / s: random groups,
//    x on and next to every rounding boundary (k + 0.5) * s, and the edge groups (amax 0,
//    subnormal, the 2^-53 / 2^50 guard limits, inf, NaN);
//  - common/exact_math.h sq_exp2_q_le0 / sq_exp2_le0 == sq_exp2_q / sq_exp2 bit for bit for x <= 0
//    (a strided sweep of the 2^31 non-positive inputs plus the edges; the full sweeps were run
//    once when they were written), NaN -> NaN (also the level-1 P of nvfp4/fp4_math.h,
//    sq_fp4_p_level1_le0, which is sq_exp2_q_le0 times 2688);
//  - nvfp4/fp4_math.h (SPARQ_TUNE_FP4 div, pcode): sq_fp4_div6 == a / 6.0f on every input of
//    the binade [1, 2) (the steps scale exactly by 2^e wherever a / 6 is normal) and the edge
//    binades, sq_fp4_group_scale_q == sq_fp4_group_scale (strided over all 2^32 bit patterns;
//    every pattern checked once when written: a / 6 and sq_fp4_div6 differ only for
//    a < 2^-125, where both scales are 0), sq_fp4_twice_q == the twice value of the literal code
//    for all 128 non-negative scale codes (every input within 300 ulps of each threshold,
//    a strided sweep of [0, inf], the zeros, NaN).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "common/exact_math.h"
#include "nvfp4/fp4_math.h"
#include "quant/int8_codec.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

// The kernel's dispatch (attention/sage8_mma.h sq_s8_pcodes): scale and codes by the fast forms
// where sq_i8_fast_ok(amax), as defined otherwise.
float fast_scale(uint amax) {
  return sq_i8_fast_ok(amax) ? sq_i8_scale_rcp(amax) : sq_i8_scale(amax);
}
int fast_code(float x, uint amax) {
  const float s = fast_scale(amax);
  return sq_i8_fast_ok(amax) ? sq_i8_code_p(x, s, 1.0f / s) : sq_i8_code(x, s, 0.0f);
}

TEST(FastForms, Int8PCodesEqualDivision) {
  std::mt19937 rng(20261206);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-70, 0);
  long checked = 0, quotients = 0;
  // x is an element of a group of absmax amax (|x| <= amax)
  auto check = [&](float x, uint amax) {
    const float s = sq_i8_scale(amax);
    ASSERT_EQ(sq_as_uint(fast_scale(amax)), sq_as_uint(s)) << std::hexfloat << "amax " << amax;
    ASSERT_EQ(fast_code(x, amax), sq_i8_code(x, s, 0.0f))
        << std::hexfloat << "x " << x << " s " << s;
    ++checked;
    if (sq_i8_fast_ok(amax) && x >= 0.0f) {  // the kernel's form for 0 <= x <= amax
      ASSERT_EQ(sq_i8_code_pg(x, s, amax != 0u ? 1.0f / s : 0.0f), sq_i8_code(x, s, 0.0f))
          << std::hexfloat << "x " << x << " s " << s;
    }
    if (sq_i8_fast_ok(amax) && amax != 0u && x >= 0.25f * s) {
      ASSERT_EQ(sq_as_uint(sq_i8_div_rcp(x, s, 1.0f / s)), sq_as_uint(x / s))
          << std::hexfloat << "x " << x << " s " << s;
      ++quotients;
    }
  };
  // Real groups: amax in (0, 1] over 2^-70 .. 1 (the guard's limit 2^-53 inside); x = an element
  // of the group, and every rounding boundary (k + 0.5) * s with two float neighbours each side.
  for (int i = 0; i < 12000; ++i) {
    const float amax = std::ldexp(1.0f - 0.5f * unit(rng), expo(rng));
    const uint ab = sq_i8_absbits(amax);
    const float s = sq_i8_scale(ab);
    check(amax, ab);
    for (int j = 0; j < 40; ++j) check(amax * unit(rng), ab);
    for (int k = 0; k < 127; ++k) {
      float x = (static_cast<float>(k) + 0.5f) * s;
      for (int n = 0; n < 2; ++n) x = std::nextafter(x, 0.0f);
      for (int n = 0; n < 5; ++n, x = std::nextafter(x, 1.0f))
        if (x <= amax) check(x, ab);
    }
  }
  // Edge groups: amax 0, subnormal (the scale underflows to 0 or is subnormal), the guard limits
  // 2^-53 and 2^50 and their neighbours, large, inf, NaN.
  const float inf = std::numeric_limits<float>::infinity();
  for (float amax :
       {0.0f, 0x1p-149f, 0x1p-140f, 0x1p-126f, std::nextafter(0x1p-53f, 0.0f), 0x1p-53f,
        std::nextafter(0x1p-53f, 1.0f), 0x1p50f, std::nextafter(0x1p50f, inf), 0x1p100f, inf,
        std::numeric_limits<float>::quiet_NaN()}) {
    const uint ab = sq_i8_absbits(amax);
    const float s = sq_i8_scale(ab);
    for (float x : {0.0f, 0x1p-149f, 0.5f * s, 0.49999997f * s, 64.5f * s, 126.5f * s, amax})
      if (!(x > amax)) check(x, ab);
  }
  // The code form alone at the scales its guard admits without a group: 0, inf, NaN.
  for (float s : {0.0f, inf, std::numeric_limits<float>::quiet_NaN()})
    for (float x : {0.0f, 0x1p-149f, 1.0f, inf})
      EXPECT_EQ(sq_i8_code_p(x, s, 1.0f / s), sq_i8_code(x, s, 0.0f)) << x << " / " << s;
  EXPECT_GT(checked, 2000000);
  EXPECT_GT(quotients, 1000000);
}

TEST(FastForms, Exp2Le0EqualsExp2) {
  auto same = [](float x) {
    for (int deg7 = 0; deg7 < 2; ++deg7) {
      const float want = deg7 ? sq_exp2(x) : sq_exp2_q(x);
      const float got = deg7 ? sq_exp2_le0(x) : sq_exp2_q_le0(x);
      if (std::isnan(want))
        ASSERT_TRUE(std::isnan(got)) << std::hexfloat << "x " << x;
      else
        ASSERT_EQ(sq_as_uint(got), sq_as_uint(want)) << std::hexfloat << "x " << x << " " << deg7;
    }
  };
  for (std::uint64_t u = 0x80000000u; u < (1ull << 32); u += 499)
    same(sq_as_float(static_cast<uint>(u)));
  // range edges: -150 (last nonzero), -160, ties of k, the binade edges of 2^k, zeros, NaN
  for (float x :
       {-150.0f, std::nextafter(-150.0f, -200.0f), -149.5f, -149.0f, -126.5f, -126.0f, -125.5f,
        -160.0f, -1000.0f, -0.5f, std::nextafter(-0.5f, 0.0f), -2.5f, -1.5f, 0.0f, -0.0f,
        -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()})
    same(x);
}

TEST(FastForms, Fp4GroupScaleWithoutDivision) {
  auto div_same = [](uint u) {
    const float a = sq_as_float(u);
    ASSERT_EQ(sq_as_uint(sq_fp4_div6(a)), sq_as_uint(a / 6.0f)) << std::hexfloat << "a " << a;
  };
  for (uint u = 0x3F800000u; u < 0x40000000u; ++u) div_same(u);     // [1, 2): every input
  for (uint u = 0x01000000u; u < 0x01800000u; u += 7) div_same(u);  // 2^-125: quotient normal
  for (uint u = 0x7F000000u; u < 0x7F800000u; u += 7) div_same(u);  // the largest binade
  for (std::uint64_t u = 0; u < (1ull << 32); u += 509) {
    const uint b = static_cast<uint>(u);
    ASSERT_EQ(sq_fp4_group_scale_q(b), sq_fp4_group_scale(b)) << std::hex << "amax bits " << b;
  }
  for (uint b : {0u, 1u, 0x00800000u, 0x01000000u, 0x3A800000u, 0x45220000u, 0x7F7FFFFFu,
                 0x7F800000u, 0x7FC00000u, 0xFFFFFFFFu})
    EXPECT_EQ(sq_fp4_group_scale_q(b), sq_fp4_group_scale(b)) << std::hex << "amax bits " << b;
}

TEST(FastForms, Fp4TwiceValuesFromThresholds) {
  long checked = 0;
  auto same = [&](float a, uint sc) {
    ASSERT_EQ(sq_fp4_twice_q(a, sq_fp4_twice_scale(sc)), sq_e2m1_twice(sq_fp4_element_code(a, sc)))
        << std::hexfloat << "a " << a << " scale code " << sc;
    ++checked;
  };
  const float th[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  for (uint sc = 0; sc < 128; ++sc) {
    const float s = sc == 0u || sc == 0x7Fu ? 1.0f : sq_e4m3_decode(sc);
    for (float t : th) {
      const uint c = sq_as_uint(t * s);
      for (uint u = c - 300; u <= c + 300; ++u) same(sq_as_float(u), sc);
    }
    // a <= the group's amax, which is finite when sc != 0x7F
    const uint end = sc == 0x7Fu ? 0x7F800001u : 0x7F800000u;
    for (uint u = 0; u < end; u += 65521) same(sq_as_float(u), sc);
    for (float a : {0.0f, -0.0f, 0x1p-149f, 0x1p-9f, 448.0f * 6.0f, 3.0e38f}) same(a, sc);
    if (sc == 0x7Fu) same(std::numeric_limits<float>::quiet_NaN(), sc);
  }
  EXPECT_GT(checked, 4000000);
}

}  // namespace
}  // namespace sparq::test
