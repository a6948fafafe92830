// Speed forms of shared definitions that a kernel may use in their place, against the definition
// on the host (the kernels compile the same header source):
//  - quant/int8_codec.h sq_i8_code_p / sq_i8_div_rcp (P codes from one reciprocal per group,
//    Markstein's correction) == sq_i8_code(x, s, 0) and x / s: random pairs with real scales
//    (amax / 127 of a random group), x on and next to every rounding boundary (k + 0.5) * s,
//    and the edge scales (0, subnormal, the 2^-60 / 2^50 guard limits, inf, NaN);
//  - common/exact_math.h sq_exp2_q_fast == sq_exp2_q bit for bit (a strided sweep of all 2^32
//    inputs plus the range edges; the full sweep was run once when it was written).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "common/exact_math.h"
#include "quant/int8_codec.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

// The kernel's dispatch (attention/sage8_mma.h sq_s8_pcodes): the fast form where the guard
// passes, the definition otherwise.
int fast_code(float x, float s) {
  return sq_i8_rcp_ok(s) ? sq_i8_code_p(x, s, 1.0f / s) : sq_i8_code(x, s, 0.0f);
}

TEST(FastForms, Int8PCodesEqualDivision) {
  std::mt19937 rng(20261206);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-70, 0);
  long checked = 0, quotients = 0;
  auto check = [&](float x, float s) {
    ASSERT_EQ(fast_code(x, s), sq_i8_code(x, s, 0.0f)) << std::hexfloat << "x " << x << " s " << s;
    ++checked;
    if (sq_i8_rcp_ok(s) && s >= 0x1p-60f && s <= 0x1p50f && x >= 0.25f * s) {
      const float y = sq_i8_div_rcp(x, s, 1.0f / s);
      ASSERT_EQ(sq_as_uint(y), sq_as_uint(x / s)) << std::hexfloat << "x " << x << " s " << s;
      ++quotients;
    }
  };
  // Real scales: amax of a group of P values in (0, 1], over 2^-70 .. 1 (the guard's lower
  // limit 2^-60 inside), s = amax / 127; x = an element of the group (<= amax).
  for (int i = 0; i < 12000; ++i) {
    const float amax = std::ldexp(1.0f - 0.5f * unit(rng), expo(rng));
    const float s = sq_i8_scale(sq_i8_absbits(amax));
    check(amax, s);
    for (int j = 0; j < 40; ++j) check(amax * unit(rng), s);
    // every rounding boundary (k + 0.5) * s and its float neighbours (two each side)
    for (int k = 0; k < 127; ++k) {
      float x = (static_cast<float>(k) + 0.5f) * s;
      for (int n = 0; n < 2; ++n) x = std::nextafter(x, 0.0f);
      for (int n = 0; n < 5; ++n, x = std::nextafter(x, 1.0f)) check(x, s);
    }
  }
  // Edge scales: 0 (a group of zeros or of subnormals whose scale underflows), subnormal and
  // tiny (the division path), the guard limits and their neighbours, inf and NaN.
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float s :
       {0.0f, 0x1p-149f, 0x1p-130f, 0x1p-126f, std::nextafter(0x1p-60f, 0.0f), 0x1p-60f,
        std::nextafter(0x1p-60f, 1.0f), 0x1p50f, std::nextafter(0x1p50f, inf), inf, nan}) {
    for (float x : {0.0f, 0x1p-149f, 0x1p-140f, 0.5f * s, 0.49999997f * s, 64.5f * s, 126.5f * s,
                    127.0f * s, 127.5f * s, 1.0f, inf, nan}) {
      // the precondition |x| <= 127 * s * (1 + 2^-23) (x is in the group whose amax gave s);
      // s = 0, inf, NaN take any x
      if (s > 0.0f && s < inf && x > 127.00002f * s) continue;
      check(x, s);
    }
  }
  EXPECT_GT(checked, 2000000);
  EXPECT_GT(quotients, 1000000);
}

TEST(FastForms, Exp2QFastEqualsExp2Q) {
  auto same = [](float x) {
    const float want = sq_exp2_q(x), got = sq_exp2_q_fast(x);
    ASSERT_EQ(sq_as_uint(got), sq_as_uint(want)) << std::hexfloat << "x " << x;
  };
  for (std::uint64_t u = 0; u < (1ull << 32); u += 997) same(sq_as_float(static_cast<uint>(u)));
  // range edges: -150 (last nonzero), the -160 clamp, 128 (first inf), 200, ties of k, NaN
  for (float x : {-150.0f, std::nextafter(-150.0f, -200.0f), -149.5f, -160.0f, -1000.0f, 127.5f,
                  std::nextafter(128.0f, 0.0f), 128.0f, 199.0f, 200.0f, 1e30f, -0.5f, 0.5f, -2.5f,
                  0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()})
    same(x);
}

}  // namespace
}  // namespace sparq::test
