// quant_linear (W8A8 / W4A8 projection via CLBlast SGEMM in exact K-chunks): device == fallback
// bit for bit (K below and above the 1024 chunk bound, int4 and int8 operands, bias, a NaN
// activation row), the result equals the float64 integer dot product dequantized in the defined
// order, and the whole rotate -> quantize -> project chain approximates the fp32 projection;
// bad arguments raise sparq::Error.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "mamba/mamba_test_util.h"

namespace sparq::test::mamba_t {
namespace {

QuantizedRows quant_rows(Context& ctx, const std::vector<float>& v, std::int64_t B, std::int64_t L,
                         std::int64_t K, InlierBits bits) {
  OutlierQuantParams p;
  p.bits = bits;
  p.max_outliers = 0;
  return outlier_quantize(ctx, ctx.upload(v, DType::f32, {B, L, K}), p);
}

int code(const std::vector<std::uint8_t>& c, bool b8, std::int64_t K, std::int64_t r,
         std::int64_t j) {
  if (b8) return static_cast<std::int8_t>(c[static_cast<std::size_t>(r * K + j)]);
  const std::int64_t nb = (K + 1) / 2;
  const int n = (c[static_cast<std::size_t>(r * nb + j / 2)] >> ((j & 1) * 4)) & 0xf;
  return n >= 8 ? n - 16 : n;
}

TEST(MambaQuantLinear, DeviceMatchesFallbackAndIntegerReference) {
  auto dev = device_context();
  auto cpu = fallback_context();
  struct Shape {
    std::int64_t B, L, K, O;
    InlierBits xb, wb;
    bool bias;
  };
  // K: one chunk; three uneven chunks (Kc 834, padded to 2502); two chunks of 513 (int4 x).
  const Shape shapes[] = {{2, 3, 7, 5, InlierBits::Int8, InlierBits::Int8, false},
                          {1, 6, 2500, 17, InlierBits::Int8, InlierBits::Int4, true},
                          {1, 4, 1025, 3, InlierBits::Int4, InlierBits::Int8, false}};
  std::uint64_t seed = 700;
  for (const auto& s : shapes) {
    const std::string label =
        fmt::format("B{} L{} K{} O{} x{} w{}{}", s.B, s.L, s.K, s.O, static_cast<int>(s.xb),
                    static_cast<int>(s.wb), s.bias ? " bias" : "");
    SCOPED_TRACE(label);
    auto x = random_normal(static_cast<std::size_t>(s.B * s.L * s.K), seed++);
    // Saturated rows: every code at +-qmax, the largest partial sums (K * 127 * 127).
    for (std::int64_t j = 0; j < s.K; ++j) x[static_cast<std::size_t>(j)] = 3.0f;
    if (s.B * s.L > 2)
      x[static_cast<std::size_t>(2 * s.K)] = std::numeric_limits<float>::quiet_NaN();
    auto w = random_normal(static_cast<std::size_t>(s.O * s.K), seed++, 0.05f);
    for (std::int64_t j = 0; j < s.K; ++j) w[static_cast<std::size_t>(j)] = -0.5f;
    const auto bias = random_normal(static_cast<std::size_t>(s.O), seed++);
    auto run = [&](Context& ctx) {
      QuantLinearArgs a;
      a.x = quant_rows(ctx, x, s.B, s.L, s.K, s.xb);
      a.w = quant_rows(ctx, w, 1, s.O, s.K, s.wb);
      if (s.bias) a.bias = ctx.upload(bias, DType::f32, {s.O});
      return quant_linear(ctx, a).download<float>();
    };
    const auto d = run(dev);
    const auto f = run(cpu);
    EXPECT_EQ(compare_bits(d, f), "") << "device vs fallback";
    // Reference: the integer dot product in int64, then the defined epilogue.
    const auto qx = quant_rows(cpu, x, s.B, s.L, s.K, s.xb);
    const auto qw = quant_rows(cpu, w, 1, s.O, s.K, s.wb);
    const auto xc = qx.codes.download<std::uint8_t>(), wc = qw.codes.download<std::uint8_t>();
    const auto sx = qx.scales.download<float>(), sw = qw.scales.download<float>();
    const bool x8 = s.xb == InlierBits::Int8, w8 = s.wb == InlierBits::Int8;
    std::size_t bad = 0;
    for (std::int64_t r = 0; r < s.B * s.L; ++r)
      for (std::int64_t o = 0; o < s.O; ++o) {
        std::int64_t acc = 0;
        for (std::int64_t k = 0; k < s.K; ++k)
          acc += static_cast<std::int64_t>(code(xc, x8, s.K, r, k)) * code(wc, w8, s.K, o, k);
        float y = static_cast<float>(acc);
        y = y * sx[static_cast<std::size_t>(r)];
        y = y * sw[static_cast<std::size_t>(o)];
        if (s.bias) y = y + bias[static_cast<std::size_t>(o)];
        if (!same_bits(f[static_cast<std::size_t>(r * s.O + o)], y) && bad++ < 3)
          ADD_FAILURE() << "r " << r << " o " << o << ": "
                        << f[static_cast<std::size_t>(r * s.O + o)] << " vs " << y;
      }
    EXPECT_EQ(bad, 0u);
    if (s.B * s.L > 2) {
      for (std::int64_t o = 0; o < s.O; ++o)
        EXPECT_TRUE(std::isnan(f[static_cast<std::size_t>(2 * s.O + o)])) << "NaN row";
    }
  }
}

// Rotation -> int8 quantization -> W8A8 projection against the fp32 product x W^T: with weights
// rotated by the same Hadamard transform (H orthogonal: x W^T = (Hx)(HW)^T), the error is the
// quantization error only.
// (On the fallback: the device gives the same bits, checked above, and CLBlast's kernel build
// is paid once per test process.)
TEST(MambaQuantLinear, RotatedW8A8ApproximatesFp32) {
  auto dev = fallback_context();
  const std::int64_t L = 8, K = 256, O = 12;
  auto x = random_normal(static_cast<std::size_t>(L * K), 711);
  for (std::size_t i = 0; i < x.size(); i += 41) x[i] *= 40.0f;  // outlier channels
  const auto w = random_normal(static_cast<std::size_t>(O * K), 712, 0.1f);
  QuantLinearArgs a;
  a.x = hadamard_quantize(dev, dev.upload(x, DType::f32, {1, L, K}));
  a.w = hadamard_quantize(dev, dev.upload(w, DType::f32, {1, O, K}));
  const auto got = quant_linear(dev, a).download<float>();
  const auto yx = hadamard_transform(dev, dev.upload(x, DType::f32, {1, L, K})).download<float>();
  const auto yw = hadamard_transform(dev, dev.upload(w, DType::f32, {1, O, K})).download<float>();
  const auto sx = a.x.scales.download<float>(), sw = a.w.scales.download<float>();
  for (std::int64_t r = 0; r < L; ++r)
    for (std::int64_t o = 0; o < O; ++o) {
      // |x^.w^ - y.v| <= sum_k (sx/2 |v_k| + sw/2 |y_k| + sx sw / 4), plus fp32 roundings of
      // the transforms and the epilogue (relative 1e-5 of sum |y_k v_k|).
      double ref = 0, bound = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        ref += static_cast<double>(x[static_cast<std::size_t>(r * K + k)]) *
               w[static_cast<std::size_t>(o * K + k)];
        const double ay = std::fabs(yx[static_cast<std::size_t>(r * K + k)]);
        const double av = std::fabs(yw[static_cast<std::size_t>(o * K + k)]);
        bound +=
            sx[static_cast<std::size_t>(r)] / 2 * av + sw[static_cast<std::size_t>(o)] / 2 * ay +
            sx[static_cast<std::size_t>(r)] * sw[static_cast<std::size_t>(o)] / 4 + 1e-5 * ay * av;
      }
      EXPECT_NEAR(got[static_cast<std::size_t>(r * O + o)], ref, bound) << "r " << r << " o " << o;
    }
}

TEST(MambaQuantLinear, BadArguments) {
  auto ctx = fallback_context();
  const auto x = random_normal(3 * 16, 1);
  QuantLinearArgs a;
  a.x = quant_rows(ctx, x, 1, 3, 16, InlierBits::Int8);
  a.w = quant_rows(ctx, x, 1, 3, 16, InlierBits::Int4);
  EXPECT_NO_THROW(quant_linear(ctx, a));
  QuantLinearArgs b = a;
  b.w = quant_rows(ctx, x, 3, 1, 16, InlierBits::Int8);  // weights must be [1, O, K]
  EXPECT_THROW(quant_linear(ctx, b), Error);
  b = a;
  b.w = quant_rows(ctx, random_normal(3 * 8, 2), 1, 3, 8, InlierBits::Int8);  // K differs
  EXPECT_THROW(quant_linear(ctx, b), Error);
  b = a;
  OutlierQuantParams p;
  p.max_outliers = 2;
  b.x = outlier_quantize(ctx, ctx.upload(x, DType::f32, {1, 3, 16}), p);  // outliers
  EXPECT_THROW(quant_linear(ctx, b), Error);
  b = a;
  b.bias = ctx.upload(std::vector<float>(4), DType::f32, {4});  // O = 3
  EXPECT_THROW(quant_linear(ctx, b), Error);
}

}  // namespace
}  // namespace sparq::test::mamba_t
