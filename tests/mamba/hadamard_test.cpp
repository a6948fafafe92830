// hadamard_transform / hadamard_quantize (MambaQuant rotation + per-token quantization):
// device == fallback bit for bit (transform, int8 and int4 codes, NaN/inf/zero rows), the
// transform against a float64 FWHT, orthogonality (H(H(x)) = x, norms kept) and the quantization
// round trip against float64; bad shapes raise sparq::Error.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "mamba/mamba_test_util.h"

namespace sparq::test::mamba_t {
namespace {

// Normalized Walsh-Hadamard transform of one row in float64 (any butterfly order is exact here
// up to double rounding).
std::vector<double> fwht64(const float* x, std::int64_t C) {
  std::vector<double> y(x, x + C);
  for (std::int64_t h = 1; h < C; h *= 2)
    for (std::int64_t i = 0; i < C; i += 2 * h)
      for (std::int64_t j = i; j < i + h; ++j) {
        const double a = y[static_cast<std::size_t>(j)], b = y[static_cast<std::size_t>(j + h)];
        y[static_cast<std::size_t>(j)] = a + b;
        y[static_cast<std::size_t>(j + h)] = a - b;
      }
  for (auto& v : y) v /= std::sqrt(static_cast<double>(C));
  return y;
}

int log2i(std::int64_t C) {
  int m = 0;
  while ((std::int64_t{1} << m) < C) ++m;
  return m;
}

TEST(MambaHadamard, DeviceMatchesFallbackBitwise) {
  auto dev = device_context();
  auto cpu = fallback_context();
  std::uint64_t seed = 610;
  for (std::int64_t C : {1, 2, 8, 64, 256, 512, 4096, 8192}) {
    const std::int64_t B = 2, L = C >= 4096 ? 2 : 5;
    auto x = random_normal(static_cast<std::size_t>(B * L * C), seed++);
    x[3 % x.size()] *= 1000.0f;  // an outlier channel the rotation spreads
    if (B * L > 3) {
      x[static_cast<std::size_t>(C)] = std::numeric_limits<float>::quiet_NaN();
      x[static_cast<std::size_t>(2 * C)] = INFINITY;
      for (std::int64_t j = 0; j < C; ++j) x[static_cast<std::size_t>(3 * C + j)] = 0.0f;
    }
    const std::string label = fmt::format("C{}", C);
    const std::vector<std::int64_t> shape{B, L, C};
    const Tensor xd = dev.upload(x, DType::f32, shape), xc = cpu.upload(x, DType::f32, shape);
    EXPECT_EQ(compare_bits(hadamard_transform(dev, xd).download<float>(),
                           hadamard_transform(cpu, xc).download<float>()),
              "")
        << label;
    for (auto bits : {InlierBits::Int8, InlierBits::Int4}) {
      const auto qd = hadamard_quantize(dev, xd, bits), qc = hadamard_quantize(cpu, xc, bits);
      EXPECT_EQ(qd.codes.download<std::uint8_t>(), qc.codes.download<std::uint8_t>()) << label;
      EXPECT_EQ(compare_bits(qd.scales.download<float>(), qc.scales.download<float>()), "")
          << label;
      EXPECT_EQ(qd.outlier_count.download<std::int32_t>(),
                std::vector<std::int32_t>(static_cast<std::size_t>(B * L), 0));
      EXPECT_EQ(compare_bits(dequantize(dev, qd).download<float>(),
                             dequantize(cpu, qc).download<float>()),
                "")
          << label;
      if (B * L > 3) {
        const auto s = qc.scales.download<float>();
        EXPECT_TRUE(std::isnan(s[1]) && std::isnan(s[2])) << "non-finite rows";
        EXPECT_EQ(s[3], 0.0f) << "all-zero row";
      }
    }
  }
}

TEST(MambaHadamard, Float64OrthogonalityAndRoundTrip) {
  auto cpu = fallback_context();
  std::uint64_t seed = 620;
  for (std::int64_t C : {1, 2, 32, 128, 2048}) {
    const int m = log2i(C);
    const std::int64_t R = 6;
    auto x = random_normal(static_cast<std::size_t>(R * C), seed++);
    for (std::size_t i = 0; i < x.size(); i += 37) x[i] *= 50.0f;  // outliers
    const Tensor xt = cpu.upload(x, DType::f32, {1, R, C});
    const auto y = hadamard_transform(cpu, xt).download<float>();
    const auto yy = hadamard_transform(cpu, cpu.upload(y, DType::f32, {1, R, C})).download<float>();
    for (auto bits : {InlierBits::Int8, InlierBits::Int4}) {
      const auto q = hadamard_quantize(cpu, xt, bits);
      const auto deq = dequantize(cpu, q).download<float>();
      const auto sc = q.scales.download<float>();
      const auto back =
          hadamard_transform(cpu, cpu.upload(deq, DType::f32, {1, R, C})).download<float>();
      for (std::int64_t r = 0; r < R; ++r) {
        const float* xr = x.data() + r * C;
        double l1 = 0, n2x = 0, n2q = 0, n2back = 0;
        for (std::int64_t j = 0; j < C; ++j) {
          l1 += std::fabs(xr[j]);
          n2x += static_cast<double>(xr[j]) * xr[j];
        }
        const double u = std::ldexp(1.0, -24);
        // Each stage rounds every partial sum once (|partial| <= sum |x|), then the rounded
        // constant c and the scaling: |y - ref| <= (m + 2) u c sum|x|.
        const double sqC = std::sqrt(static_cast<double>(C));
        const double bound = (m + 2) * u * l1 / sqC * 1.01;
        // A second transform maps an error vector e to H e with |(H e)_j| <= ||e||_2, plus its
        // own rounding <= (m + 2) u c sum|y| <= (m + 2) u ||x||_2.
        const double bound_hh = sqC * bound + (m + 2) * u * std::sqrt(n2x) * 1.01;
        const auto ref = fwht64(xr, C);
        for (std::int64_t j = 0; j < C; ++j) {
          const auto i = static_cast<std::size_t>(r * C + j);
          if (bits == InlierBits::Int8) {
            EXPECT_LE(std::fabs(y[i] - ref[static_cast<std::size_t>(j)]), bound)
                << "C" << C << " row " << r << " j " << j;
            // Involution: H(H(x)) = x (normalized H is symmetric and orthogonal).
            EXPECT_LE(std::fabs(yy[i] - xr[j]), bound_hh) << "H(H(x)) C" << C;
          }
          // Quantization: |y^ - y| <= s/2 (no clipping: s = max|y| / qmax), plus the rounding
          // of q * s (<= 127 u s).
          const double e = std::fabs(static_cast<double>(deq[i]) - y[i]);
          EXPECT_LE(e, sc[static_cast<std::size_t>(r)] * (0.5 + 1e-4)) << "C" << C;
          n2q += e * e;
          const double eb = static_cast<double>(back[i]) - xr[j];
          n2back += eb * eb;
        }
        // Orthogonality carries the quantization error back unchanged in the 2-norm.
        const double tol = sqC * bound_hh * 2;
        EXPECT_LE(std::sqrt(n2back), std::sqrt(n2q) + tol) << "C" << C << " row " << r;
      }
    }
  }
}

TEST(MambaHadamard, BadArguments) {
  auto ctx = fallback_context();
  auto up = [&](std::vector<std::int64_t> shape) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return ctx.upload(std::vector<float>(static_cast<std::size_t>(n), 1.0f), DType::f32, shape);
  };
  EXPECT_NO_THROW(hadamard_quantize(ctx, up({1, 2, 16})));
  EXPECT_THROW(hadamard_quantize(ctx, up({1, 2, 12})), Error);      // not a power of two
  EXPECT_THROW(hadamard_transform(ctx, up({1, 1, 16384})), Error);  // above 8192
  EXPECT_THROW(hadamard_transform(ctx, up({2, 16})), Error);        // rank
  EXPECT_THROW(
      hadamard_quantize(ctx, upload_as(ctx, std::vector<float>(16), DType::f16, {1, 1, 16})),
      Error);  // dtype
}

}  // namespace
}  // namespace sparq::test::mamba_t
