// outlier_quantize / dequantize (specs/mamba_scan.md §5): device == fallback bit for bit (int4 and
// int8 inliers, f32/f16/int8 outliers, dynamic and static scales, window carry, NaN/inf rows),
// the §5.6 properties (planted outliers, carry, capacity tie-break, K = 0, C = 1, all-zero rows,
// odd C with int4, round-trip bound) and bad arguments.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "mamba/mamba_test_util.h"

namespace sparq::test::mamba_t {
namespace {

// Every field of a QuantizedRows as raw bytes (bitwise comparison), plus the decoded pieces.
struct QHost {
  std::vector<std::uint8_t> codes, val;
  std::vector<std::uint32_t> scales, oscale;
  std::vector<std::int32_t> count, idx;
  std::vector<float> deq;
};

template <class T>
std::vector<T> raw(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return {};
  return t.download<T>();
}

QHost run_q(Context& ctx, const std::vector<float>& x, std::vector<std::int64_t> shape,
            const OutlierQuantParams& p, const std::vector<float>& st = {}) {
  const Tensor xt = ctx.upload(x, DType::f32, shape);
  const Tensor s = st.empty() ? Tensor() : ctx.upload(st, DType::f32, {shape[1]});
  const QuantizedRows q = outlier_quantize(ctx, xt, p, s);
  QHost h;
  h.codes = raw<std::uint8_t>(q.codes);
  h.val = raw<std::uint8_t>(q.outlier_val);
  h.scales = raw<std::uint32_t>(q.scales);
  h.oscale = raw<std::uint32_t>(q.outlier_scale);
  h.count = raw<std::int32_t>(q.outlier_count);
  h.idx = raw<std::int32_t>(q.outlier_idx);
  h.deq = dequantize(ctx, q).download<float>();
  return h;
}

void expect_same(const QHost& a, const QHost& b, const std::string& label) {
  EXPECT_EQ(a.codes, b.codes) << label;
  EXPECT_EQ(a.val, b.val) << label;
  EXPECT_EQ(a.scales, b.scales) << label;
  EXPECT_EQ(a.oscale, b.oscale) << label;
  EXPECT_EQ(a.count, b.count) << label;
  EXPECT_EQ(a.idx, b.idx) << label;
  EXPECT_EQ(compare_bits(a.deq, b.deq), "") << label;
}

float f32_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

int code_at(const QHost& h, bool bits8, std::int64_t C, std::int64_t row, std::int64_t j) {
  if (bits8) return static_cast<std::int8_t>(h.codes[static_cast<std::size_t>(row * C + j)]);
  const std::int64_t nb = (C + 1) / 2;
  const int n = (h.codes[static_cast<std::size_t>(row * nb + j / 2)] >> ((j & 1) * 4)) & 0xf;
  return n >= 8 ? n - 16 : n;
}

// Uniform values in [-1, 1) (so mean + 3 std of |x| ~ 1.37 flags nothing by itself).
std::vector<float> uniform(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(g() >> 40) / static_cast<float>(1 << 23) - 1.0f;
  return x;
}

// Uniform rows with a few planted channels at +-40..60.
std::vector<float> planted(std::int64_t rows, std::int64_t C, std::uint64_t seed,
                           std::vector<std::vector<int>>* where = nullptr) {
  auto x = uniform(static_cast<std::size_t>(rows * C), seed);
  std::mt19937_64 g(seed + 7);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::vector<int> w;
    const int n = static_cast<int>(g() % 4);
    for (int k = 0; k < n; ++k) {
      const int j = static_cast<int>(g() % static_cast<std::uint64_t>(C));
      x[static_cast<std::size_t>(r * C + j)] =
          (g() % 2 ? 1.0f : -1.0f) * (40.0f + static_cast<float>(g() % 20));
      w.push_back(j);
    }
    std::sort(w.begin(), w.end());
    w.erase(std::unique(w.begin(), w.end()), w.end());
    if (where) where->push_back(w);
  }
  return x;
}

TEST(MambaOutlierQuant, DeviceMatchesFallbackBitwise) {
  auto dev = device_context();
  auto cpu = fallback_context();
  struct Shape {
    std::int64_t B, L, C;
  };
  const Shape shapes[] = {{1, 1, 1}, {2, 5, 7}, {1, 12, 64}, {2, 3, 300}, {1, 2, 513}};
  int seed = 1;
  for (const auto& sh : shapes)
    for (auto bits : {InlierBits::Int4, InlierBits::Int8})
      for (auto fmt : {OutlierFormat::F32, OutlierFormat::F16, OutlierFormat::Int8})
        for (int window : {1, 4}) {
          OutlierQuantParams p;
          p.bits = bits;
          p.outlier_format = fmt;
          p.window = window;
          p.max_outliers = static_cast<int>(std::min<std::int64_t>(sh.C, 3));
          auto x = planted(sh.B * sh.L, sh.C, static_cast<std::uint64_t>(seed++));
          // A NaN row, an inf row, an all-zero row and a row of magnitude ties where they fit.
          const auto rows = sh.B * sh.L;
          if (rows > 2) x[static_cast<std::size_t>(sh.C)] = std::numeric_limits<float>::quiet_NaN();
          if (rows > 3) x[static_cast<std::size_t>(3 * sh.C)] = -INFINITY;
          if (rows > 4)
            for (std::int64_t j = 0; j < sh.C; ++j) x[static_cast<std::size_t>(4 * sh.C + j)] = 0;
          if (rows > 5)
            for (std::int64_t j = 0; j < sh.C; ++j)
              x[static_cast<std::size_t>(5 * sh.C + j)] = (j % 5 == 0) ? -30.0f : 0.25f;
          const std::string label =
              fmt::format("B{} L{} C{} bits{} fmt{} window{}", sh.B, sh.L, sh.C,
                          static_cast<int>(bits), static_cast<int>(fmt), window);
          const std::vector<std::int64_t> shape{sh.B, sh.L, sh.C};
          expect_same(run_q(dev, x, shape, p), run_q(cpu, x, shape, p), label);
          // Static scales: the gate sometimes passes, sometimes not.
          p.static_scale = true;
          std::vector<float> st(static_cast<std::size_t>(sh.L));
          for (std::size_t l = 0; l < st.size(); ++l) st[l] = l % 2 ? 0.5f : 20.0f;
          expect_same(run_q(dev, x, shape, p, st), run_q(cpu, x, shape, p, st), label + " static");
          if (rows > 2) {  // the NaN row
            p.static_scale = false;
            const auto h = run_q(cpu, x, shape, p);
            EXPECT_EQ(h.scales[1], 0x7fc00000u);
            EXPECT_EQ(h.count[1], 0);
            for (std::int64_t j = 0; j < sh.C; ++j)
              EXPECT_TRUE(std::isnan(h.deq[static_cast<std::size_t>(sh.C + j)]));
          }
        }
}

TEST(MambaOutlierQuant, PlantedOutliersAndRoundTrip) {
  auto cpu = fallback_context();
  const std::int64_t rows = 40, C = 96;
  for (auto bits : {InlierBits::Int4, InlierBits::Int8}) {
    std::vector<std::vector<int>> where;
    const auto x = planted(rows, C, 77, &where);
    OutlierQuantParams p;
    p.bits = bits;
    p.max_outliers = 8;
    const auto h = run_q(cpu, x, {1, rows, C}, p);
    const bool b8 = bits == InlierBits::Int8;
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto& w = where[static_cast<std::size_t>(r)];
      ASSERT_EQ(h.count[static_cast<std::size_t>(r)], static_cast<int>(w.size())) << "row " << r;
      for (std::size_t k = 0; k < w.size(); ++k)
        EXPECT_EQ(h.idx[static_cast<std::size_t>(r * 8) + k], w[k]);
      for (std::size_t k = w.size(); k < 8; ++k)
        EXPECT_EQ(h.idx[static_cast<std::size_t>(r * 8) + k], -1);
      const float s = f32_of(h.scales[static_cast<std::size_t>(r)]);
      for (std::int64_t j = 0; j < C; ++j) {
        const auto i = static_cast<std::size_t>(r * C + j);
        const bool out = std::binary_search(w.begin(), w.end(), static_cast<int>(j));
        if (out) {
          EXPECT_EQ(h.deq[i], x[i]);  // F32 outliers are exact
          EXPECT_EQ(code_at(h, b8, C, r, j), 0);
        } else {
          EXPECT_LE(std::fabs(h.deq[i] - x[i]), s / 2 * (1 + 1e-6f)) << r << " " << j;
        }
      }
    }
  }
}

TEST(MambaOutlierQuant, WindowCarry) {
  auto cpu = fallback_context();
  const std::int64_t L = 7, C = 32;
  auto x = uniform(static_cast<std::size_t>(L * C), 5);
  x[static_cast<std::size_t>(1 * C + 9)] = 50.0f;  // detected at l = 1 only
  OutlierQuantParams p;
  p.window = 4;  // windows [0, 4), [4, 7)
  p.max_outliers = 4;
  const auto h = run_q(cpu, x, {1, L, C}, p);
  for (std::int64_t l = 0; l < L; ++l) {
    const bool carried = l >= 1 && l < 4;
    const auto r = static_cast<std::size_t>(l);
    bool has9 = false;
    for (int k = 0; k < h.count[r]; ++k) has9 |= h.idx[r * 4 + static_cast<std::size_t>(k)] == 9;
    EXPECT_EQ(has9, carried) << "l " << l;
  }
  // The carried channel keeps its exact value (F32) although it is small at l = 2, 3.
  EXPECT_EQ(h.deq[static_cast<std::size_t>(2 * C + 9)], x[static_cast<std::size_t>(2 * C + 9)]);
}

TEST(MambaOutlierQuant, CapacityTieBreakAndEdges) {
  auto cpu = fallback_context();
  auto dev = device_context();
  // Four equal outliers at 3, 10, 20, 30 and a larger one at 25; K = 3 keeps 25, then 3 and 10.
  const std::int64_t C = 40;
  std::vector<float> x(static_cast<std::size_t>(C), 0.5f);
  for (int j : {3, 10, 20, 30}) x[static_cast<std::size_t>(j)] = (j % 2 ? 1 : -1) * 50.0f;
  x[25] = 60.0f;
  OutlierQuantParams p;
  p.max_outliers = 3;
  p.k_sigma = 1.0f;
  auto h = run_q(cpu, x, {1, 1, C}, p);
  ASSERT_EQ(h.count[0], 3);
  EXPECT_EQ(h.idx, (std::vector<std::int32_t>{3, 10, 25}));
  expect_same(h, run_q(dev, x, {1, 1, C}, p), "ties");
  // Dropped candidates are inliers: the scale covers them.
  EXPECT_EQ(f32_of(h.scales[0]), 50.0f / 7.0f);
  // K = 0: nothing is an outlier.
  p.max_outliers = 0;
  h = run_q(cpu, x, {1, 1, C}, p);
  EXPECT_EQ(h.count[0], 0);
  EXPECT_EQ(f32_of(h.scales[0]), 60.0f / 7.0f);
  expect_same(h, run_q(dev, x, {1, 1, C}, p), "K0");
  // C = 1 (var = 0: thr = mean = |x|, never an outlier), int4 odd C: high nibble 0.
  p.max_outliers = 1;
  h = run_q(cpu, {-3.0f}, {1, 1, 1}, p);
  EXPECT_EQ(h.count[0], 0);
  EXPECT_EQ(h.codes, (std::vector<std::uint8_t>{0x9}));  // -7
  EXPECT_NEAR(h.deq[0], -3.0f, 1e-6f);
  // All-zero rows: s = 0, codes 0, dequantized +0.
  h = run_q(cpu, std::vector<float>(6, 0.0f), {2, 1, 3}, p);
  EXPECT_EQ(h.scales, (std::vector<std::uint32_t>{0, 0}));
  EXPECT_EQ(h.codes, (std::vector<std::uint8_t>(4, 0)));
  EXPECT_EQ(h.count, (std::vector<std::int32_t>{0, 0}));
  // Odd C int4 packing: 1, -1, 7 -> bytes 0xF1, 0x07.
  p.max_outliers = 0;
  h = run_q(cpu, {1.0f, -1.0f, 7.0f}, {1, 1, 3}, p);
  EXPECT_EQ(h.codes, (std::vector<std::uint8_t>{0xF1, 0x07}));
}

TEST(MambaOutlierQuant, OutlierFormats) {
  auto cpu = fallback_context();
  const std::int64_t C = 64;
  std::vector<std::vector<int>> where;
  const auto x = planted(8, C, 123, &where);
  OutlierQuantParams p;
  p.max_outliers = 4;
  p.outlier_format = OutlierFormat::F16;
  auto h = run_q(cpu, x, {1, 8, C}, p);
  for (std::int64_t r = 0; r < 8; ++r)
    for (int k = 0; k < h.count[static_cast<std::size_t>(r)]; ++k) {
      const auto j = h.idx[static_cast<std::size_t>(r * 4 + k)];
      const auto i = static_cast<std::size_t>(r * C + j);
      EXPECT_EQ(h.deq[i], cl_common::sq_f16_to_f32(cl_common::sq_f32_to_f16_rne(x[i])));
    }
  p.outlier_format = OutlierFormat::Int8;
  h = run_q(cpu, x, {1, 8, C}, p);
  for (std::int64_t r = 0; r < 8; ++r) {
    const float so = f32_of(h.oscale[static_cast<std::size_t>(r)]);
    if (h.count[static_cast<std::size_t>(r)] == 0) {
      EXPECT_EQ(so, 1e-8f / 127.0f);
    }
    for (int k = 0; k < h.count[static_cast<std::size_t>(r)]; ++k) {
      const auto j = h.idx[static_cast<std::size_t>(r * 4 + k)];
      const auto i = static_cast<std::size_t>(r * C + j);
      EXPECT_LE(std::fabs(h.deq[i] - x[i]), so / 2 * (1 + 1e-6f));
    }
  }
}

TEST(MambaOutlierQuant, StaticScaleGate) {
  auto cpu = fallback_context();
  const std::int64_t C = 32;
  auto x = random_normal(static_cast<std::size_t>(2 * C), 9, 0.1f);
  x[5] = 3.0f;
  x[static_cast<std::size_t>(C + 5)] = 3.0f;
  OutlierQuantParams p;
  p.static_scale = true;
  p.max_outliers = 2;
  // Row 0: 3 <= 1 * 7, no detection; row 1: 3 > 0.1 * 7, channel 5 is an outlier.
  const auto h = run_q(cpu, x, {1, 2, C}, p, {1.0f, 0.1f});
  EXPECT_EQ(h.count, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(h.idx[2], 5);
  EXPECT_EQ(f32_of(h.scales[0]), 1.0f);
  EXPECT_EQ(f32_of(h.scales[1]), 0.1f);
  EXPECT_EQ(code_at(h, false, C, 0, 5), 3);
}

TEST(MambaOutlierQuant, BadArgumentsThrow) {
  auto ctx = fallback_context();
  const Tensor x = ctx.upload(std::vector<float>(24, 1.0f), DType::f32, {2, 3, 4});
  auto check = [&](auto call, const std::string& what) {
    try {
      call();
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  OutlierQuantParams p;
  p.max_outliers = 2;
  check([&] { outlier_quantize(ctx, ctx.empty(DType::f32, {2, 12}), p); }, "x");
  check([&] { outlier_quantize(ctx, ctx.empty(DType::f16, {2, 3, 4}), p); }, "x has dtype");
  auto bad = p;
  bad.max_outliers = 5;
  check([&] { outlier_quantize(ctx, x, bad); }, "max_outliers");
  bad = p;
  bad.window = 0;
  check([&] { outlier_quantize(ctx, x, bad); }, "window");
  bad = p;
  bad.k_sigma = NAN;
  check([&] { outlier_quantize(ctx, x, bad); }, "k_sigma");
  bad = p;
  bad.k_sigma = -1.0f;
  check([&] { outlier_quantize(ctx, x, bad); }, "k_sigma");
  bad = p;
  bad.static_scale = true;
  check([&] { outlier_quantize(ctx, x, bad); }, "static_scales");
  check(
      [&] {
        outlier_quantize(ctx, x, bad, ctx.upload(std::vector<float>{1, 0, 1}, DType::f32, {3}));
      },
      "static_scales");
  check(
      [&] {
        outlier_quantize(ctx, x, bad, ctx.upload(std::vector<float>{1, 1}, DType::f32, {2}));
      },
      "static_scales");
  check(
      [&] {
        outlier_quantize(ctx, x, p, ctx.upload(std::vector<float>{1, 1, 1}, DType::f32, {3}));
      },
      "static_scales");
  auto q = outlier_quantize(ctx, x, p);
  auto q2 = q;
  q2.outlier_idx = ctx.upload(std::vector<std::int32_t>(12, 9), DType::i32, {2, 3, 2});
  q2.outlier_count = ctx.upload(std::vector<std::int32_t>(6, 1), DType::i32, {2, 3});
  check([&] { dequantize(ctx, q2); }, "outlier_idx");
  q2 = q;
  q2.codes = ctx.empty(DType::i8, {2, 3, 2});
  check([&] { dequantize(ctx, q2); }, "codes");
  q2 = q;
  q2.outlier_count = ctx.upload(std::vector<std::int32_t>(6, 3), DType::i32, {2, 3});
  check([&] { dequantize(ctx, q2); }, "outlier_count");
  EXPECT_NO_THROW(dequantize(ctx, q));
}

}  // namespace
}  // namespace sparq::test::mamba_t
