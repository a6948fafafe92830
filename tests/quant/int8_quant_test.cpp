// int8 codec table (quant/int8_codec.h) and the smoothing + int8 quantizers of Precision::int8:
// device (PoCL in CI) == fallback byte for byte, and the fallback == a direct host evaluation of
// specs/fp4_attention.md §2.4 / §5 written in this file.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "attention/attention_test_util.h"
#include "attention/sage8_common.h"
#include "quant/int8_codec.h"
#include "sparq/int8_attention.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;  // NOLINT: the shared codec

float bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// round_half_away as written (Triton): t = y + (y >= 0 ? 0.5 : -0.5) in fp32, truncated.
TEST(Int8Codec, CodeTable) {
  struct Row {
    float x, s, lo;
    int code;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const Row rows[] = {
      {0.0f, 1.0f, -127, 0},
      {-0.0f, 1.0f, -127, 0},
      {0.5f, 1.0f, -127, 1},
      {-0.5f, 1.0f, -127, -1},
      {1.5f, 1.0f, -127, 2},
      {2.5f, 1.0f, -127, 3},
      {-2.5f, 1.0f, -127, -3},
      {0.49f, 1.0f, -127, 0},
      {126.5f, 1.0f, -127, 127},
      {127.0f, 1.0f, -127, 127},
      {200.0f, 1.0f, -127, 127},
      {-200.0f, 1.0f, -127, -127},
      {3.0f, 2.0f, -127, 2},
      {-3.0f, 2.0f, -127, -2},
      {5.0f, 0.0f, -127, 0},
      {nan, 1.0f, -127, 0},
      {1.0f, nan, -127, 0},
      {inf, inf, -127, 0},
      {1.0f, inf, -127, 0},
      {inf, 1.0f, -127, 127},
      {-inf, 1.0f, -127, -127},
      {-0.7f, 1.0f, 0, 0},
      {0.7f, 1.0f, 0, 1},
      {1e30f, 1.0f, 0, 127},
      // the double rounding of y + 0.5 (largest float below 0.5): 0.49999997 + 0.5 rounds to 1
      {bits(0x3effffffu), 1.0f, -127, 1},
  };
  for (const Row& r : rows)
    EXPECT_EQ(sq_i8_code(r.x, r.s, r.lo), r.code) << r.x << " / " << r.s << " lo " << r.lo;
  EXPECT_EQ(sq_i8_absbits(-0.0f), 0u);
  EXPECT_EQ(sq_i8_absbits(-2.0f), 0x40000000u);
  EXPECT_EQ(sq_i8_scale(sq_i8_absbits(127.0f)), 1.0f);
  EXPECT_TRUE(std::isnan(sq_i8_scale(sq_i8_absbits(nan))));
}

// The conversion trick of sage8_common.h equals (float)i bit for bit on its whole range.
TEST(Int8Codec, ExactIntToFloat) {
  for (int i = -(1 << 22); i < (1 << 22); ++i) {
    const float want = static_cast<float>(i), got = sq_s8_i2f(i);
    ASSERT_EQ(std::memcmp(&want, &got, 4), 0) << i;
  }
}

struct QuantCase {
  int b = 1, hq = 2, hkv = 1, d = 64;
  std::int64_t lq = 200, lk = 150;
  QSmooth qs = QSmooth::per_block128;
  bool ks = true;
  DType in = DType::f32;
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format("B={} Hq={} Hkv={} D={} Lq={} Lk={} q_smooth={} k_smooth={} in={} seed={}",
                       b, hq, hkv, d, lq, lk, static_cast<int>(qs), ks, dtype_name(in), seed);
  }
};

template <class T>
std::string compare_bytes(const Tensor& a, const Tensor& b) {
  const auto x = a.download<T>(), y = b.download<T>();
  if (x.size() != y.size()) return "sizes differ";
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::memcmp(&x[i], &y[i], sizeof(T)) != 0 &&
        !(std::is_same_v<T, float> && x[i] != x[i] && y[i] != y[i]))
      return fmt::format("first difference at {} of {}", i, x.size());
  return "";
}

void expect_same_packed(const Sage8Packed& a, const Sage8Packed& b, const std::string& what) {
  EXPECT_EQ(compare_bytes<std::int8_t>(a.q.codes, b.q.codes), "") << what << " q codes";
  EXPECT_EQ(compare_bytes<float>(a.q.scales, b.q.scales), "") << what << " q scales";
  EXPECT_EQ(compare_bytes<std::int8_t>(a.k.codes, b.k.codes), "") << what << " k codes";
  EXPECT_EQ(compare_bytes<float>(a.k.scales, b.k.scales), "") << what << " k scales";
  EXPECT_EQ(compare_bytes<std::int8_t>(a.v.codes, b.v.codes), "") << what << " v codes";
  EXPECT_EQ(compare_bytes<float>(a.v.scales, b.v.scales), "") << what << " v scales";
  ASSERT_EQ(a.delta.defined(), b.delta.defined()) << what;
  if (a.delta.defined()) {
    EXPECT_EQ(compare_bytes<float>(a.delta, b.delta), "") << what << " delta";
  }
}

TEST(Int8Quant, DeviceEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  const QuantCase cases[] = {
      {},
      {.qs = QSmooth::per_head, .ks = false, .seed = 2},
      {.hq = 4, .hkv = 2, .d = 128, .lq = 129, .lk = 64, .qs = QSmooth::off, .seed = 3},
      {.b = 2, .lq = 1, .lk = 1, .seed = 4},
      {.lq = 300, .lk = 333, .in = DType::bf16, .seed = 5},
  };
  for (const QuantCase& c : cases) {
    SCOPED_TRACE(c.name());
    const auto q = random_normal(std::size_t(c.b) * c.hq * c.lq * c.d, c.seed, 2.0f);
    auto k = random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 1);
    const auto v = random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 2);
    for (std::size_t i = 0; i < k.size(); ++i) k[i] += (i % c.d == 3) ? 20.0f : 0.0f;  // bias
    auto tq = attn::upload_pair(dev, cpu, q, c.in, {c.b, c.hq, c.lq, c.d});
    auto tk = attn::upload_pair(dev, cpu, k, c.in, {c.b, c.hkv, c.lk, c.d});
    auto tv = attn::upload_pair(dev, cpu, v, c.in, {c.b, c.hkv, c.lk, c.d});
    const AttentionOptions o{.precision = Precision::int8, .quant = {c.qs, c.ks}};
    expect_same_packed(sage8_quantize(dev, tq.dev, tk.dev, tv.dev, o),
                       sage8_quantize(cpu, tq.cpu, tk.cpu, tv.cpu, o), c.name());
  }
}

// The fallback against a direct evaluation of §2.4 / §5 (GQA, short last blocks, both smoothings).
TEST(Int8Quant, MatchesDefinition) {
  Context cpu = fallback_context();
  const int B = 1, hq = 2, hkv = 1, D = 64;
  const std::int64_t lq = 150, lk = 70, lk64 = 128;
  const auto q = random_normal(std::size_t(B) * hq * lq * D, 11, 3.0f);
  const auto k = random_normal(std::size_t(B) * hkv * lk * D, 12);
  const auto v = random_normal(std::size_t(B) * hkv * lk * D, 13);
  const AttentionOptions o{.precision = Precision::int8};
  const Sage8Packed p = sage8_quantize(cpu, cpu.upload(q, DType::f32, {B, hq, lq, D}),
                                       cpu.upload(k, DType::f32, {B, hkv, lk, D}),
                                       cpu.upload(v, DType::f32, {B, hkv, lk, D}), o);
  const float c = static_cast<float>((1.0 / std::sqrt(double{D})) * 1.4426950408889634);
  // K mean over all keys, then K - km per 64-token block.
  std::vector<float> km(D), ks(k.size());
  for (int d = 0; d < D; ++d) {
    float s = 0.0f;
    for (std::int64_t j = 0; j < lk; ++j) s = s + k[j * D + d];
    km[d] = s * static_cast<float>(1.0 / double(lk));
    for (std::int64_t j = 0; j < lk; ++j) ks[j * D + d] = k[j * D + d] - km[d];
  }
  const auto kc = p.k.codes.download<std::int8_t>();
  const auto ksc = p.k.scales.download<float>();
  for (std::int64_t blk = 0; blk < 2; ++blk) {
    std::uint32_t amax = 0;
    const std::int64_t j1 = std::min<std::int64_t>(lk, 64 * blk + 64);
    for (std::int64_t j = 64 * blk; j < j1; ++j)
      for (int d = 0; d < D; ++d) amax = std::max(amax, sq_i8_absbits(ks[j * D + d]));
    const float s = bits(amax) / 127.0f;
    EXPECT_EQ(ksc[blk], s);
    for (std::int64_t j = 64 * blk; j < j1; ++j)
      for (int d = 0; d < D; ++d) {
        const float y = ks[j * D + d] / s;
        const float t = std::clamp(y + (y >= 0 ? 0.5f : -0.5f), -127.0f, 127.0f);
        ASSERT_EQ(kc[j * D + d], static_cast<int>(t)) << "K code j=" << j << " d=" << d;
      }
  }
  // Q: per-128-row block mean of head 1, (Q - qm) * c, its block scale, and delta.
  const int h = 1;
  const auto qc = p.q.codes.download<std::int8_t>();
  const auto qsc = p.q.scales.download<float>();
  const auto delta = p.delta.download<float>();
  ASSERT_EQ(p.delta.shape(), (std::vector<std::int64_t>{B, hq, 2, lk}));
  for (std::int64_t blk = 0; blk < 2; ++blk) {
    const std::int64_t r0 = 128 * blk, r1 = std::min<std::int64_t>(lq, r0 + 128);
    std::vector<float> qm(D);
    for (int d = 0; d < D; ++d) {
      float s = 0.0f;
      for (std::int64_t r = r0; r < r1; ++r) s = s + q[(h * lq + r) * D + d];
      qm[d] = s * static_cast<float>(1.0 / double(r1 - r0));
    }
    std::uint32_t amax = 0;
    for (std::int64_t r = r0; r < r1; ++r)
      for (int d = 0; d < D; ++d)
        amax = std::max(amax, sq_i8_absbits((q[(h * lq + r) * D + d] - qm[d]) * c));
    const float s = bits(amax) / 127.0f;
    EXPECT_EQ(qsc[h * 2 + blk], s);
    for (std::int64_t r = r0; r < r1; ++r)
      for (int d = 0; d < D; ++d) {
        const float y = ((q[(h * lq + r) * D + d] - qm[d]) * c) / s;
        const float t = std::clamp(y + (y >= 0 ? 0.5f : -0.5f), -127.0f, 127.0f);
        ASSERT_EQ(qc[(h * lq + r) * D + d], static_cast<int>(t)) << "Q code r=" << r;
      }
    for (std::int64_t j = 0; j < lk; ++j) {
      float acc = 0.0f;
      for (int d = 0; d < D; ++d) acc = acc + qm[d] * ks[j * D + d];
      ASSERT_EQ(delta[(h * 2 + blk) * lk + j], acc) << "delta blk=" << blk << " j=" << j;
    }
  }
  // V: channel 5, groups of 16 tokens, transposed, zero past Lk.
  const auto vc = p.v.codes.download<std::int8_t>();
  const auto vsc = p.v.scales.download<float>();
  const int d = 5;
  for (std::int64_t g = 0; g < lk64 / 16; ++g) {
    std::uint32_t amax = 0;
    for (std::int64_t j = 16 * g; j < std::min<std::int64_t>(lk, 16 * g + 16); ++j)
      amax = std::max(amax, sq_i8_absbits(v[j * D + d]));
    const float s = bits(amax) / 127.0f;
    EXPECT_EQ(vsc[d * (lk64 / 16) + g], s);
    for (std::int64_t j = 16 * g; j < 16 * g + 16; ++j) {
      int want = 0;
      if (j < lk) {
        const float y = v[j * D + d] / s;
        want = static_cast<int>(std::clamp(y + (y >= 0 ? 0.5f : -0.5f), -127.0f, 127.0f));
      }
      ASSERT_EQ(vc[d * lk64 + j], want) << "V code j=" << j;
    }
  }
}

}  // namespace
}  // namespace sparq::test
