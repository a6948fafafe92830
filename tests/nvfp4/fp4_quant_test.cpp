// NVFP4 quantizers (specs/fp4_attention.md §2): device ≡ fallback byte for byte, the layouts of
// §2.5 against a direct host evaluation of quant16, padding, NaN/Inf groups, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/codecs.h"
#include "nvfp4/fp4_test_util.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using namespace sparq::cl_common;

// Host quant16 of 16 values: codes (unpacked) and scale code.
std::uint32_t host_quant16(const float* x, std::uint32_t* codes) {
  std::uint32_t amax = 0;
  for (int t = 0; t < 16; ++t) amax = sq_absmax_bits(amax, x[t]);
  const std::uint32_t sc = sq_fp4_group_scale(amax);
  for (int t = 0; t < 16; ++t) codes[t] = sq_fp4_element_code(x[t], sc);
  return sc;
}

std::vector<float> test_values(std::size_t n, std::uint64_t seed) {
  std::vector<float> x = random_normal(n, seed);
  for (std::size_t i = 0; i < n; i += 97) x[i] *= 1000.0f;  // some saturating groups
  for (std::size_t i = 5; i < n; i += 131) x[i] *= 1e-4f;   // and tiny ones
  return x;
}

TEST(Nvfp4Quant, RowsLayoutAndDeviceEqualsFallback) {
  const std::int64_t B = 2, H = 3, L = 37, D = 64;
  std::vector<float> x = test_values(B * H * L * D, 41);
  for (int t = 0; t < 16; ++t) x[16 * 5 + t] = 0.0f;  // an all-zero group
  x[16 * 7 + 3] = std::numeric_limits<float>::infinity();
  x[16 * 9 + 1] = std::numeric_limits<float>::quiet_NaN();
  Context fb = fallback_context();
  const Fp4Packed pf = fp4_quantize_rows(fb, fb.upload(x, DType::f32, {B, H, L, D}));
  const auto codes = pf.codes.download<std::uint8_t>();
  const auto scales = pf.scales.download<std::uint8_t>();
  ASSERT_EQ(codes.size(), x.size() / 2);
  ASSERT_EQ(scales.size(), x.size() / 16);
  for (std::size_t g = 0; g < scales.size(); ++g) {
    std::uint32_t c[16];
    ASSERT_EQ(scales[g], host_quant16(&x[16 * g], c)) << g;
    for (int k = 0; k < 8; ++k) ASSERT_EQ(codes[8 * g + k], sq_fp4_pack2(c[2 * k], c[2 * k + 1]));
  }
  EXPECT_EQ(scales[5], 0x00);
  EXPECT_EQ(scales[7], 0x7F);
  EXPECT_EQ(scales[9], 0x7F);
  Context dev = device_context();
  if (dev.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  const Fp4Packed pd = fp4_quantize_rows(dev, dev.upload(x, DType::f32, {B, H, L, D}));
  EXPECT_EQ(bytes_of(pd.codes, pd.scales), bytes_of(pf.codes, pf.scales));
}

TEST(Nvfp4Quant, TokensLayoutPaddingAndDeviceEqualsFallback) {
  for (std::int64_t L : {1, 16, 63, 64, 100}) {
    const std::int64_t B = 1, H = 2, D = 128, L64 = (L + 63) / 64 * 64;
    const std::vector<float> x = test_values(B * H * L * D, 43 + L);
    Context fb = fallback_context();
    const Fp4PackedT pf = fp4_quantize_tokens(fb, fb.upload(x, DType::f32, {B, H, L, D}));
    EXPECT_EQ(pf.tokens, L);
    ASSERT_EQ(pf.codes.shape(), (std::vector<std::int64_t>{B, H, D, L64 / 2}));
    ASSERT_EQ(pf.scales.shape(), (std::vector<std::int64_t>{B, H, D, L64 / 16}));
    const auto codes = pf.codes.download<std::uint8_t>();
    const auto scales = pf.scales.download<std::uint8_t>();
    for (std::int64_t bh = 0; bh < B * H; ++bh)
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t tg = 0; tg < L64 / 16; ++tg) {
          float v[16];
          for (int t = 0; t < 16; ++t) {
            const std::int64_t tok = tg * 16 + t;
            v[t] = tok < L ? x[(bh * L + tok) * D + d] : 0.0f;
          }
          std::uint32_t c[16];
          const std::size_t gi = static_cast<std::size_t>((bh * D + d) * (L64 / 16) + tg);
          ASSERT_EQ(scales[gi], host_quant16(v, c)) << L << " " << d << " " << tg;
          if (tg * 16 >= L) {
            ASSERT_EQ(scales[gi], 0u);  // padding groups
          }
          for (int k = 0; k < 8; ++k)
            ASSERT_EQ(codes[gi * 8 + k], sq_fp4_pack2(c[2 * k], c[2 * k + 1]));
        }
    Context dev = device_context();
    if (dev.backend() == Backend::fallback) continue;
    const Fp4PackedT pd = fp4_quantize_tokens(dev, dev.upload(x, DType::f32, {B, H, L, D}));
    EXPECT_EQ(bytes_of(pd.codes, pd.scales), bytes_of(pf.codes, pf.scales)) << "L " << L;
  }
}

TEST(Nvfp4Quant, Errors) {
  Context ctx = fallback_context();
  const std::vector<float> x(2 * 40, 1.0f);
  EXPECT_THROW(fp4_quantize_rows(ctx, ctx.upload(x, DType::f32, {1, 1, 2, 40})), Error);  // D % 16
  EXPECT_THROW(fp4_quantize_rows(ctx, ctx.upload(x, DType::f32, {2, 40})), Error);        // rank
  EXPECT_THROW(fp4_quantize_tokens(ctx, ctx.upload(x, DType::f32, {1, 1, 2, 40})), Error);
  const std::vector<std::uint16_t> h(64, 0);
  EXPECT_THROW(fp4_quantize_rows(ctx, ctx.upload(h, DType::f16, {1, 1, 1, 64})), Error);  // dtype
  Context other = fallback_context();
  EXPECT_THROW(
      fp4_quantize_rows(ctx, other.upload(std::vector<float>(64), DType::f32, {1, 1, 1, 64})),
      Error);
}

}  // namespace
}  // namespace sparq::test
