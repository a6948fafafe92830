// Codecs of kernels_cl/common/codecs.h (specs/fp4_attention.md §1, §7): the spec's test vectors,
// every E4M3 code, every E2M1 and E4M3 midpoint, brute-force nearest-value references for
// random inputs, and the probe kernel on the test device against the C++ mirror, byte for byte.
#include "common/codecs.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>
#include <vector>

#include "common/codecs_probe.h"
#include "context_impl.h"
#include "device_runtime.h"
#include "fallback_cpu/common/codecs_probe.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;

float f(std::uint32_t u) {
  return std::bit_cast<float>(u);
}
std::uint32_t u(float x) {
  return std::bit_cast<std::uint32_t>(x);
}

// --- independent references: nearest representable value, ties to the even code ---------------
constexpr double kE2m1Mag[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};

std::uint32_t ref_e2m1(double y, bool neg) {
  const double a = std::fabs(y);
  std::uint32_t best = 0;
  for (std::uint32_t m = 1; m < 8; ++m) {
    const double db = std::fabs(a - kE2m1Mag[best]), dm = std::fabs(a - kE2m1Mag[m]);
    if (dm < db || (dm == db && (m & 1u) == 0)) best = m;
  }
  return (neg ? 8u : 0u) | best;
}

double e4m3_value(std::uint32_t c) {  // magnitude codes 0..0x7E
  const std::uint32_t e = (c >> 3) & 15u, m = c & 7u;
  return e == 0 ? m * std::ldexp(1.0, -9) : (1.0 + m / 8.0) * std::ldexp(1.0, int(e) - 7);
}

std::uint32_t ref_e4m3(double x, bool neg) {
  const double a = std::fabs(x);
  std::uint32_t best = 0;
  if (a >= 448.0) {
    best = 0x7E;
  } else {
    for (std::uint32_t c = 1; c <= 0x7E; ++c) {
      const double db = std::fabs(a - e4m3_value(best)), dc = std::fabs(a - e4m3_value(c));
      if (dc < db || (dc == db && (c & 1u) == 0)) best = c;
    }
  }
  return (neg ? 0x80u : 0u) | best;
}

// --- §7.1 --------------------------------------------------------------------------------------
TEST(Nvfp4Codecs, E2m1SpecVectors) {
  struct V {
    std::uint32_t in, code;
  };
  const V vs[] = {{0x00000000, 0x0}, {0x80000000, 0x8}, {0xBDCCCCCD, 0x8}, {0x3E800000, 0x0},
                  {0x3E800003, 0x1}, {0x3F400000, 0x2}, {0xBF400000, 0xA}, {0x3FA00000, 0x2},
                  {0x3FA00001, 0x3}, {0x3FE00000, 0x4}, {0x40200000, 0x4}, {0x40300000, 0x5},
                  {0x40600000, 0x6}, {0xC0600000, 0xE}, {0x40A00000, 0x6}, {0x40A00001, 0x7},
                  {0x40E00000, 0x7}, {0x7F800000, 0x7}, {0xFF800000, 0xF}, {0xC0D00000, 0xF}};
  for (const V& v : vs) EXPECT_EQ(sq_e2m1_rne(f(v.in)), v.code) << std::hex << v.in;
  EXPECT_EQ(sq_fp4_pack2(sq_e2m1_rne(1.0f), sq_e2m1_rne(-6.0f)), 0xF2u);
  EXPECT_EQ(u(sq_e2m1_decode(0x8)), 0x80000000u);
  const float dec[16] = {0, .5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -.5f, -1, -1.5f, -2, -3, -4, -6};
  const int tw[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  for (std::uint32_t c = 0; c < 16; ++c) {
    EXPECT_EQ(u(sq_e2m1_decode(c)), u(dec[c])) << c;
    EXPECT_EQ(sq_e2m1_twice(c), tw[c]) << c;
    EXPECT_EQ(sq_e2m1_rne(dec[c]), c) << c;  // every code round-trips (incl. -0)
  }
}

TEST(Nvfp4Codecs, E2m1EveryTieAndNeighbours) {
  for (int sign = 0; sign < 2; ++sign)
    for (std::uint32_t m = 0; m < 7; ++m) {
      const float mid = static_cast<float>((kE2m1Mag[m] + kE2m1Mag[m + 1]) / 2);
      const float x = sign ? -mid : mid;
      const std::uint32_t s = sign ? 8u : 0u;
      const std::uint32_t even = (m & 1u) ? m + 1 : m;
      EXPECT_EQ(sq_e2m1_rne(x), s | even) << mid;
      EXPECT_EQ(sq_e2m1_rne(std::nextafter(x, 0.0f)), s | m) << mid;
      EXPECT_EQ(sq_e2m1_rne(std::nextafter(x, sign ? -100.0f : 100.0f)), s | (m + 1)) << mid;
    }
}

TEST(Nvfp4Codecs, E2m1RandomAgainstNearestValue) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), i % 8 - 4);
    EXPECT_EQ(sq_e2m1_rne(x), ref_e2m1(x, std::signbit(x))) << x;
  }
}

// --- §1.2, §7.2 --------------------------------------------------------------------------------
TEST(Nvfp4Codecs, E4m3SpecVectors) {
  struct V {
    std::uint32_t in, code;
  };
  const V vs[] = {{0x00000000, 0x00}, {0x80000000, 0x80}, {0x3A800000, 0x00}, {0x3A800001, 0x01},
                  {0x3AC00000, 0x01}, {0x3B400000, 0x02}, {0x3BA00000, 0x02}, {0x3BE00000, 0x04},
                  {0x3C800000, 0x08}, {0x3F800000, 0x38}, {0x3F880000, 0x38}, {0x3F880001, 0x39},
                  {0x3F980000, 0x3A}, {0x41880000, 0x58}, {0x41980000, 0x5A}, {0x3DCCCCCD, 0x1D},
                  {0x43780000, 0x78}, {0x43880000, 0x78}, {0x43D80000, 0x7E}, {0x43DF8000, 0x7E},
                  {0x43E80000, 0x7E}, {0x49742400, 0x7E}, {0x7F800000, 0x7E}, {0xC3FA0000, 0xFE},
                  {0xFF800000, 0xFE}, {0x7FC00000, 0x7F}};
  for (const V& v : vs) EXPECT_EQ(sq_e4m3_rne(f(v.in)), v.code) << std::hex << v.in;
  EXPECT_TRUE(std::isnan(sq_e4m3_decode(0x7F)));
  EXPECT_TRUE(std::isnan(sq_e4m3_decode(0xFF)));
  EXPECT_EQ(sq_e4m3_decode(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(sq_e4m3_decode(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(sq_e4m3_decode(0x08), 0.015625f);
  EXPECT_EQ(sq_e4m3_decode(0x7E), 448.0f);
  EXPECT_EQ(sq_e4m3_decode(0xB8), -1.0f);
  EXPECT_EQ(sq_e4m3_decode(0x1D), 0.1015625f);
  EXPECT_EQ(u(sq_e4m3_decode(0x80)), 0x80000000u);
}

TEST(Nvfp4Codecs, E4m3EveryCodeRoundTripsAndDecodesExactly) {
  for (std::uint32_t c = 0; c < 256; ++c) {
    const float v = sq_e4m3_decode(c);
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(v)) << c;
      EXPECT_EQ(sq_e4m3_rne(v), 0x7Fu) << c;  // the quiet NaN decode is positive
      continue;
    }
    const double want = ((c & 0x80) ? -1.0 : 1.0) * e4m3_value(c & 0x7F);
    EXPECT_EQ(static_cast<double>(v), want) << c;
    EXPECT_EQ(std::signbit(v), (c & 0x80) != 0) << c;
    EXPECT_EQ(sq_e4m3_rne(v), c) << c;
  }
}

TEST(Nvfp4Codecs, E4m3EveryMidpointAndNeighbours) {
  for (int sign = 0; sign < 2; ++sign)
    for (std::uint32_t c = 0; c < 0x7E; ++c) {
      const float mid = static_cast<float>((e4m3_value(c) + e4m3_value(c + 1)) / 2);  // exact
      const float x = sign ? -mid : mid;
      const std::uint32_t s = sign ? 0x80u : 0u;
      EXPECT_EQ(sq_e4m3_rne(x), s | ((c & 1u) ? c + 1 : c)) << c;
      EXPECT_EQ(sq_e4m3_rne(std::nextafter(x, 0.0f)), s | c) << c;
      EXPECT_EQ(sq_e4m3_rne(std::nextafter(x, sign ? -1e9f : 1e9f)), s | (c + 1)) << c;
    }
}

TEST(Nvfp4Codecs, E4m3RandomAgainstNearestValue) {
  std::mt19937 rng(11);
  for (int i = 0; i < 100000; ++i) {
    const float x = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), i % 36 - 26);
    EXPECT_EQ(sq_e4m3_rne(x), ref_e4m3(x, std::signbit(x))) << x;
  }
  for (std::uint32_t a : {0x00000001u, 0x007FFFFFu, 0x00800000u, 0x3A000000u, 0x39FFFFFFu})
    EXPECT_EQ(sq_e4m3_rne(f(a)), ref_e4m3(f(a), false)) << std::hex << a;
}

// --- §1.5 / §7.3 -------------------------------------------------------------------------------
TEST(Nvfp4Codecs, GroupScaleSpecVectors) {
  struct V {
    float amax;
    std::uint32_t code;
    float scale;
  };
  const V vs[] = {{0.0f, 0x00, 0},         {1e-5f, 0x00, 0},        {0.005859375f, 0x00, 0},
                  {0.01f, 0x01, 0x1p-9f},  {1.0f, 0x23, 0.171875f}, {2.75f, 0x2F, 0.46875f},
                  {6.0f, 0x38, 1.0f},      {6.375f, 0x38, 1.0f},    {100.0f, 0x58, 16.0f},
                  {2688.0f, 0x7E, 448.0f}, {3000.0f, 0x7E, 448.0f}};
  for (const V& v : vs) {
    EXPECT_EQ(sq_e4m3_scale(v.amax), v.code) << v.amax;
    EXPECT_EQ(sq_e4m3_decode(v.code), v.scale) << v.amax;
    EXPECT_EQ(sq_fp4_group_scale(u(v.amax)), v.code) << v.amax;
  }
  EXPECT_EQ(sq_fp4_group_scale(0x7F800000u), 0x7Fu);  // Inf amax
  EXPECT_EQ(sq_fp4_group_scale(0x7FC00000u), 0x7Fu);  // NaN amax
  // Group example: (6.375, -1.25, 0.3, 0...) -> s = 1.0 -> codes (0x7, 0xA, 0x1, 0x0...).
  const float x[16] = {6.375f, -1.25f, 0.3f};
  std::uint32_t amax = 0;
  for (float v : x) amax = sq_absmax_bits(amax, v);
  const std::uint32_t sc = sq_fp4_group_scale(amax);
  EXPECT_EQ(sc, 0x38u);
  const std::uint32_t want[16] = {0x7, 0xA, 0x1};
  for (int t = 0; t < 16; ++t) EXPECT_EQ(sq_fp4_element_code(x[t], sc), want[t]) << t;
  EXPECT_EQ(sq_fp4_element_code(-0.001f, 0x00), 0x8u);  // zero scale keeps the sign only
  EXPECT_EQ(sq_fp4_element_code(5.0f, 0x7F), 0x0u);     // NaN scale: code 0
  EXPECT_EQ(sq_absmax_bits(0u, -0.0f), 0u);
  EXPECT_EQ(sq_absmax_bits(5u, f(0xFFC00000u)), 0x7FC00000u);  // NaN propagates
}

TEST(Nvfp4Codecs, GroupScaleAgainstExactQuotient) {
  std::mt19937 rng(3);
  for (int i = 0; i < 200000; ++i) {
    const float amax = std::ldexp(std::uniform_real_distribution<float>(0, 1)(rng), i % 24 - 10);
    EXPECT_EQ(sq_e4m3_scale(amax), ref_e4m3(static_cast<double>(amax) / 6.0, false)) << amax;
  }
}

// e2m1_rne_q is the RNE of the exact real x / s for every scale code.
TEST(Nvfp4Codecs, QuotientEncodeAgainstExactQuotient) {
  std::mt19937 rng(5);
  for (std::uint32_t sc = 1; sc < 0x7F; ++sc) {
    const float s = sq_e4m3_decode(sc);
    for (int i = 0; i < 400; ++i) {
      float x = std::uniform_real_distribution<float>(-7, 7)(rng) * s;
      if (i < 2 * 7) {  // the exact midpoints t * s and their neighbours
        const std::uint32_t m = i % 7;
        x = static_cast<float>((kE2m1Mag[m] + kE2m1Mag[m + 1]) / 2) * s;
        if (i >= 7) x = std::nextafter(x, 100.0f);
      }
      EXPECT_EQ(sq_e2m1_rne_q(x, s), ref_e2m1(static_cast<double>(x) / s, std::signbit(x)))
          << x << " / " << s;
      EXPECT_EQ(sq_e2m1_rne_q(x, s), sq_e2m1_rne(x / s)) << x << " / " << s;
    }
  }
}

// --- §7.4 and §1.3 -----------------------------------------------------------------------------
TEST(Nvfp4Codecs, ExactGroupProductExtreme) {
  int I = 0;
  for (int t = 0; t < 16; ++t) I += sq_e2m1_twice(0x7) * sq_e2m1_twice(0xF);
  EXPECT_EQ(I, -2304);
  const float sa = sq_e4m3_decode(0x7E), sb = sq_e4m3_decode(0x7E);
  const float T = ((static_cast<float>(I) * sa) * sb) * 0.25f;
  EXPECT_EQ(T, -115605504.0f);
  EXPECT_EQ(static_cast<double>(T), -2304.0 * 448 * 448 / 4);
}

TEST(Nvfp4Codecs, Ue8m0) {
  EXPECT_EQ(sq_ue8m0_decode(127), 1.0f);
  EXPECT_EQ(sq_ue8m0_decode(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(sq_ue8m0_decode(254), std::ldexp(1.0f, 127));
  EXPECT_TRUE(std::isnan(sq_ue8m0_decode(255)));
  EXPECT_EQ(sq_ue8m0_scale(6.0f), 127u);  // floor(log2 6) - 2 = 0 -> 2^0
  EXPECT_EQ(sq_ue8m0_scale(8.0f), 128u);  // 2^(3-2)
  EXPECT_EQ(sq_ue8m0_scale(0.0f), 0u);
  EXPECT_EQ(sq_ue8m0_scale(-1.0f), 125u);  // sign ignored
  EXPECT_EQ(sq_ue8m0_scale(f(0x7F800000u)), 255u);
}

TEST(Nvfp4Codecs, IntHelpers) {
  EXPECT_EQ(sq_round_half_away_sat(2.5f, -127, 127), 3);
  EXPECT_EQ(sq_round_half_away_sat(-2.5f, -127, 127), -3);
  EXPECT_EQ(sq_round_half_away_sat(0.49999997f, -127, 127), 1);  // the Triton double rounding
  EXPECT_EQ(sq_round_half_away_sat(1e9f, -127, 127), 127);
  EXPECT_EQ(sq_round_half_away_sat(-INFINITY, -127, 127), -127);
  EXPECT_EQ(sq_round_half_away_sat(NAN, -127, 127), 0);
  for (int lo = -8; lo < 8; ++lo)
    for (int hi = -8; hi < 8; ++hi) {
      const std::uint32_t b = sq_int4_pack2(lo, hi);
      EXPECT_EQ(sq_int4_lo(b), lo);
      EXPECT_EQ(sq_int4_hi(b), hi);
    }
  for (int v = -128; v < 128; ++v) EXPECT_EQ(sq_int8_from_byte(static_cast<std::uint8_t>(v)), v);
}

// --- device ≡ C++ ------------------------------------------------------------------------------
std::vector<std::uint32_t> probe_inputs(std::vector<std::uint32_t>* second) {
  std::vector<std::uint32_t> a;
  for (std::uint32_t i = 0; i < 65536; ++i) {  // every code, and high-bit patterns of floats
    a.push_back(i);
    a.push_back(i << 16);
    a.push_back((i << 16) | 0x8001u);
  }
  std::mt19937 rng(17);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), i % 40 - 28);
    a.push_back(u(x));
  }
  for (float s : {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 448.0f, 6.375f, 0.005859375f})
    for (float sg : {1.0f, -1.0f}) {
      a.push_back(u(sg * s));
      a.push_back(u(std::nextafter(sg * s, 0.0f)));
      a.push_back(u(std::nextafter(sg * s, sg * 1e9f)));
    }
  second->resize(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    (*second)[i] = static_cast<std::uint32_t>(i * 2654435761u) >> 24;
  return a;
}

TEST(Nvfp4Codecs, DeviceEqualsCpp) {
  Context ctx = device_context();
  if (ctx.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  std::vector<std::uint32_t> b;
  const std::vector<std::uint32_t> a = probe_inputs(&b);
  const std::size_t n = a.size(), bytes = n * 4;
  std::lock_guard<std::recursive_mutex> lock(ctx.impl()->mutex);
  rt::DeviceRuntime& dev = *ctx.impl()->device;
  cl::Buffer da = dev.allocate(bytes, "probe a"), db = dev.allocate(bytes, "probe b"),
             dout = dev.allocate(bytes, "probe out");
  dev.write(da, 0, bytes, a.data(), "probe a");
  dev.write(db, 0, bytes, b.data(), "probe b");
  cl::Kernel k = dev.kernel("common/codecs_probe.cl", "sq_codecs_probe", "");
  for (int fn = 0; fn < SQ_CODEC_COUNT; ++fn) {
    k.setArg(0, da);
    k.setArg(1, db);
    k.setArg(2, dout);
    k.setArg(3, static_cast<cl_int>(fn));
    k.setArg(4, static_cast<cl_uint>(n));
    dev.launch("codecs_probe", k, cl::NDRange((n + 63) / 64 * 64), cl::NDRange(64));
    std::vector<std::uint32_t> got(n), want(n);
    dev.read(dout, 0, bytes, got.data(), "probe out");
    fallback::codecs_probe(fn, a.data(), b.data(), want.data(), n);
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (got[i] != want[i] && bad++ == 0) first = i;
    std::printf("[codecs] device fn %d: %zu inputs on %s, %zu mismatches\n", fn, n,
                ctx.device().name.c_str(), bad);
    EXPECT_EQ(bad, 0u) << "fn " << fn << " input 0x" << std::hex << a[first] << ", 0x" << b[first]
                       << ": device 0x" << got[first] << ", C++ 0x" << want[first];
  }
}

}  // namespace
}  // namespace sparq::test
