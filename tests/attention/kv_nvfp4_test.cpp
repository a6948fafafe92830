// NVFP4 KV pages (u8 storage): kv_append writes the codes fp4_quantize_rows gives each token row,
// kernel == fallback bit for bit (pages, scales, decode; NHD / HND, pages of 16 and 64), NVFP4
// pages == f32 pages holding the dequantized values (the definition), accuracy against float64,
// and hostile calls refused.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "attention_test_util.h"
#include "kv_cache_util.h"
#include "reference/attention_ref.h"

namespace sparq::test::attn {
namespace {

// Element of an NVFP4 row, decoded independently of the library: E2M1 value times E4M3 scale.
float deq_fp4(std::uint8_t code, std::uint8_t scale) {
  static const float e2m1[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const int e = (scale >> 3) & 15, m = scale & 7;
  float s = e == 15 && m == 7 ? std::numeric_limits<float>::quiet_NaN()
            : e == 0          ? std::ldexp(static_cast<float>(m), -9)
                              : std::ldexp(1.0f + m / 8.0f, e - 7);
  if (scale & 0x80) s = -s;
  const float v = (code & 8) ? -e2m1[code & 7] : e2m1[code & 7];
  return v * s;
}

// f32 pages holding the dequantized values of u8 NVFP4 pages [..., D / 2] with scales
// [..., D / 16].
std::vector<float> dequantize(const Tensor& codes, const Tensor& scales) {
  const auto c = codes.download<std::uint8_t>();
  const auto s = scales.download<std::uint8_t>();
  std::vector<float> x(c.size() * 2);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint8_t byte = c[i / 2];
    x[i] = deq_fp4((i & 1) ? byte >> 4 : byte & 15, s[i / 16]);
  }
  return x;
}

std::vector<std::int64_t> with_d(std::vector<std::int64_t> shape, std::int64_t d) {
  shape.back() = d;
  return shape;
}

// Row (b, h, t) of an appended [B, Hkv, n, D] input sits at page table[b][t / P], slot t % P.
std::int64_t row_of(const Cache& c, PageLayout layout, int per_seq, int page, int hkv, int b, int h,
                    int t) {
  const std::int64_t pg = c.table[b * per_seq + t / page], slot = t % page;
  return layout == PageLayout::nhd ? (pg * page + slot) * hkv + h : (pg * hkv + h) * page + slot;
}

TEST(KvCacheNvfp4, AppendMatchesQuantizerAndDecodeKernelEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  struct Case {
    PageLayout layout;
    int d, page;
    DType in;
  };
  for (const Case c :
       {Case{PageLayout::nhd, 64, 16, DType::f32}, Case{PageLayout::hnd, 128, 64, DType::bf16}}) {
    SCOPED_TRACE(fmt::format("{} D={} page={} in={}", c.layout == PageLayout::nhd ? "NHD" : "HND",
                             c.d, c.page, dt(c.in)));
    const int batch = 3, hkv = 2, hq = 4, n = 21, more = 3, per_seq = 2;
    const std::vector<std::int32_t> zero(batch, 0);
    Cache a = make_cache(dev, DType::u8, c.layout, batch, per_seq, c.page, hkv, c.d, zero);
    Cache b = make_cache(cpu, DType::u8, c.layout, batch, per_seq, c.page, hkv, c.d, zero);
    const std::vector<std::int64_t> shape = {batch, hkv, n, c.d};
    auto k = random_normal(std::size_t(batch) * hkv * n * c.d, 41, 2.0f);
    auto v = random_normal(k.size(), 42);
    k[3] = 5000.0f;                               // saturating group (scale 448, codes +-6)
    for (int e = 16; e < 32; ++e) k[e] *= 1e-4f;  // a flushed group (scale 0)
    for (int e = 0; e < c.d; ++e) v[std::size_t(n) * c.d + e] = 0.0f;  // an all-zero row
    k[k.size() - 5] = std::numeric_limits<float>::infinity();  // NaN scale: seq 2, head 1 only
    std::vector<float> kr, vr;  // the values the op sees (bf16-rounded)
    kv_append(dev, a.kv, upload_as(dev, k, c.in, shape, &kr), upload_as(dev, v, c.in, shape, &vr));
    kv_append(cpu, b.kv, upload_as(cpu, k, c.in, shape), upload_as(cpu, v, c.in, shape));
    // Appending onto partly filled last pages (and into a second page for P = 16).
    const std::vector<std::int64_t> shape2 = {batch, hkv, more, c.d};
    const auto k2 = random_normal(std::size_t(batch) * hkv * more * c.d, 43);
    const auto v2 = random_normal(k2.size(), 44);
    kv_append(dev, a.kv, upload_as(dev, k2, c.in, shape2), upload_as(dev, v2, c.in, shape2));
    kv_append(cpu, b.kv, upload_as(cpu, k2, c.in, shape2), upload_as(cpu, v2, c.in, shape2));
    EXPECT_EQ(a.kv.seq_lens.download<std::int32_t>(), std::vector<std::int32_t>(batch, n + more));
    const Tensor* ta[] = {&a.kv.k_pages, &a.kv.v_pages, &a.kv.k_scales, &a.kv.v_scales};
    const Tensor* tb[] = {&b.kv.k_pages, &b.kv.v_pages, &b.kv.k_scales, &b.kv.v_scales};
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(ta[i]->download<std::uint8_t>(), tb[i]->download<std::uint8_t>()) << "tensor " << i;

    // Each token row holds exactly the bytes fp4_quantize_rows gives it.
    for (int which = 0; which < 2; ++which) {
      const Fp4Packed want = fp4_quantize_rows(cpu, cpu.upload(which ? vr : kr, DType::f32, shape));
      const auto wc = want.codes.download<std::uint8_t>(),
                 ws = want.scales.download<std::uint8_t>();
      const auto gc = (which ? b.kv.v_pages : b.kv.k_pages).download<std::uint8_t>();
      const auto gs = (which ? b.kv.v_scales : b.kv.k_scales).download<std::uint8_t>();
      const int cb = c.d / 2, sb = c.d / 16;
      for (int s = 0; s < batch; ++s)
        for (int h = 0; h < hkv; ++h)
          for (int t = 0; t < n; ++t) {
            const std::int64_t r = row_of(b, c.layout, per_seq, c.page, hkv, s, h, t);
            const std::size_t src = (std::size_t(s) * hkv + h) * n + t;
            ASSERT_TRUE(
                std::equal(wc.begin() + src * cb, wc.begin() + (src + 1) * cb,
                           gc.begin() + r * cb) &&
                std::equal(ws.begin() + src * sb, ws.begin() + (src + 1) * sb, gs.begin() + r * sb))
                << (which ? "V" : "K") << " row b=" << s << " h=" << h << " t=" << t;
          }
    }
    const auto q = random_normal(std::size_t(batch) * hq * 2 * c.d, 45);
    auto tq = upload_pair(dev, cpu, q, DType::f32, {batch, hq, 2, c.d});
    const AttentionOptions o{.causal = true, .return_lse = true};
    expect_same(attention_paged(dev, tq.dev, a.kv, o), attention_paged(cpu, tq.cpu, b.kv, o),
                "decode over NVFP4 pages");
  }
}

// The definition: NVFP4 pages give the bits of f32 pages holding e2m1 * e4m3 of every element;
// the result is close to float64 attention over the unquantized K/V.
TEST(KvCacheNvfp4, PagesAreFp32OverDequantizedValues) {
  Context dev = device_context();
  const int batch = 2, hkv = 2, hq = 8, d = 128, page = 16, n = 150;
  Cache c = make_cache(dev, DType::u8, PageLayout::nhd, batch, 10, page, hkv, d, {0, 0});
  const std::vector<std::int64_t> shape = {batch, hkv, n, d};
  const auto k = random_normal(std::size_t(batch) * hkv * n * d, 51);
  const auto v = random_normal(k.size(), 52);
  kv_append(dev, c.kv, dev.upload(k, DType::f32, shape), dev.upload(v, DType::f32, shape));
  PagedKV f = c.kv;
  const auto pages_shape = with_d(c.kv.k_pages.shape(), d);
  f.k_pages = dev.upload(dequantize(c.kv.k_pages, c.kv.k_scales), DType::f32, pages_shape);
  f.v_pages = dev.upload(dequantize(c.kv.v_pages, c.kv.v_scales), DType::f32, pages_shape);
  f.k_scales = f.v_scales = Tensor{};
  const auto q = random_normal(std::size_t(batch) * hq * d, 53);
  const Tensor qt = dev.upload(q, DType::f32, {batch, hq, d});
  const AttentionOptions o{.return_lse = true};
  const AttentionResult r4 = attention_paged(dev, qt, c.kv, o);
  expect_same(r4, attention_paged(dev, qt, f, o), "NVFP4 pages vs dequantized f32 pages");

  const auto got = download_f32(r4.out);
  double dot = 0, ng = 0, nw = 0;
  for (int b = 0; b < batch; ++b) {
    const std::size_t kv_n = std::size_t(hkv) * n * d;
    const std::vector<float> kb(k.begin() + b * kv_n, k.begin() + (b + 1) * kv_n);
    const std::vector<float> vb(v.begin() + b * kv_n, v.begin() + (b + 1) * kv_n);
    const std::vector<float> qb(q.begin() + b * hq * d, q.begin() + (b + 1) * hq * d);
    const ref::AttentionRef want = ref::attention(
        qb, kb, vb, {.batch = 1, .hq = hq, .hkv = hkv, .d = d, .lq = 1, .lk = n}, false);
    for (int i = 0; i < hq * d; ++i) {
      const double g = got[b * hq * d + i], w = want.out[i];
      dot += g * w;
      ng += g * g;
      nw += w * w;
    }
  }
  const double cosine = dot / std::sqrt(ng * nw);
  RecordProperty("cosine", std::to_string(cosine));
  EXPECT_GE(cosine, 0.99);
}

TEST(KvCacheNvfp4, HostileCallsRefused) {
  Context ctx = fallback_context();
  auto expect_error = [](auto&& call, const std::string& text) {
    try {
      call();
      ADD_FAILURE() << "no error; expected: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expect_error([&] { make_paged_kv(ctx, 4, 16, 1, 24, DType::u8); },
               "head_dim = 24 for NVFP4 (u8) pages; expected a positive multiple of 16");
  Cache c = make_cache(ctx, DType::u8, PageLayout::nhd, 1, 2, 16, 1, 64, {0});
  const Tensor k = ctx.upload(random_normal(3 * 64, 1), DType::f32, {1, 1, 3, 64});
  auto append_fails = [&](PagedKV kv, const std::string& text) {
    expect_error([&] { kv_append(ctx, kv, k, k); }, text);
  };
  PagedKV x = c.kv;
  x.v_scales = Tensor{};
  append_fails(x, "kv.v_scales is missing: NVFP4 pages need one u8 E4M3 scale per 16 elements");
  x = c.kv;
  x.k_scales = ctx.upload(std::vector<float>(2 * 16), DType::f32, {2, 16, 1});
  append_fails(x, "kv.k_scales is f32 [2, 16, 1]; expected contiguous u8 [2, 16, 1, 4]");
  x.k_scales = ctx.upload(std::vector<std::uint8_t>(2 * 16 * 8), DType::u8, {2, 16, 1, 8});
  append_fails(x, "expected contiguous u8 [2, 16, 1, 4]");
  x = c.kv;  // 12 bytes per row: D = 24 is not a multiple of the group
  x.k_pages = x.v_pages =
      ctx.upload(std::vector<std::uint8_t>(2 * 16 * 12), DType::u8, {2, 16, 1, 12});
  append_fails(x, "NVFP4 pages need D a multiple of 16");
  x = c.kv;
  x.v_pages = ctx.upload(std::vector<std::int8_t>(2 * 16 * 32), DType::i8, {2, 16, 1, 32});
  append_fails(x, "kv.k_pages is u8 and kv.v_pages i8");
  kv_append(ctx, c.kv, k, k);  // the unchanged cache is accepted (sanity of the cases above)
  const Tensor q = ctx.upload(random_normal(128, 2), DType::f32, {1, 1, 128});
  expect_error([&] { attention_paged(ctx, q, c.kv); }, "kv.k_pages has head dim 64, Q has 128");
}

}  // namespace
}  // namespace sparq::test::attn
