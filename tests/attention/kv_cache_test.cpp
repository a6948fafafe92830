// kv_append and int8 KV pages: kernel == fallback bit for bit (pages, scales, decode), int8
// pages == f32 pages holding the dequantized values (the definition), token-by-token decode ==
// one chunked call, accuracy of int8 pages against float64, and hostile calls refused.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "attention_test_util.h"
#include "kv_cache_util.h"
#include "reference/attention_ref.h"

namespace sparq::test::attn {
namespace {

// Appends [B, Hkv, n, D] (values x, stored as `in`) to the caches on both contexts.
void append_both(Context& dev, Context& cpu, Cache& a, Cache& b, const std::vector<float>& k,
                 const std::vector<float>& v, DType in, const std::vector<std::int64_t>& shape) {
  kv_append(dev, a.kv, upload_as(dev, k, in, shape), upload_as(dev, v, in, shape));
  kv_append(cpu, b.kv, upload_as(cpu, k, in, shape), upload_as(cpu, v, in, shape));
}

template <class T>
std::vector<T> bytes_of(const Tensor& t) {
  return t.download<T>();
}

TEST(KvCacheExact, AppendAndDecodeKernelEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  struct Case {
    DType storage;
    PageLayout layout;
    int d, page;
    DType in;
  };
  for (const Case c : {Case{DType::i8, PageLayout::nhd, 128, 16, DType::bf16},
                       Case{DType::i8, PageLayout::hnd, 64, 32, DType::f32},
                       Case{DType::f16, PageLayout::nhd, 64, 16, DType::f32}}) {
    SCOPED_TRACE(fmt::format("{} {} D={} page={} in={}", dt(c.storage),
                             c.layout == PageLayout::nhd ? "NHD" : "HND", c.d, c.page, dt(c.in)));
    const int batch = 3, hkv = 2, hq = 4, n = 21;
    const std::vector<std::int32_t> lens = {0, 5, 17};
    Cache a = make_cache(dev, c.storage, c.layout, batch, 4, c.page, hkv, c.d, lens);
    Cache b = make_cache(cpu, c.storage, c.layout, batch, 4, c.page, hkv, c.d, lens);
    // Old slots hold the same bytes on both sides: append their tokens first from one shape.
    const std::vector<std::int64_t> shape = {batch, hkv, n, c.d};
    auto k = random_normal(std::size_t(batch) * hkv * n * c.d, 11, 2.0f);
    auto v = random_normal(k.size(), 12);
    k[5] = 0.0f;  // a zero row part, an outlier
    k[7] = 40.0f;
    for (int e = 0; e < c.d; ++e) v[std::size_t(n) * c.d + e] = 0.0f;  // an all-zero row
    // Positions below the starting lengths were never written: fill them through a first append
    // onto an empty cache of the same table, then continue from `lens`.
    a.kv.seq_lens = dev.upload(std::vector<std::int32_t>(batch, 0), DType::i32, {batch});
    b.kv.seq_lens = cpu.upload(std::vector<std::int32_t>(batch, 0), DType::i32, {batch});
    append_both(dev, cpu, a, b, k, v, c.in, shape);
    EXPECT_EQ(a.kv.seq_lens.download<std::int32_t>(), (std::vector<std::int32_t>{n, n, n}));
    a.kv.seq_lens = dev.upload(lens, DType::i32, {batch});
    b.kv.seq_lens = cpu.upload(lens, DType::i32, {batch});
    append_both(dev, cpu, a, b, v, k, c.in, shape);  // overwrites from lens[b] on
    EXPECT_EQ(b.kv.seq_lens.download<std::int32_t>(), (std::vector<std::int32_t>{21, 26, 38}));
    if (c.storage == DType::i8) {
      EXPECT_EQ(bytes_of<std::int8_t>(a.kv.k_pages), bytes_of<std::int8_t>(b.kv.k_pages));
      EXPECT_EQ(bytes_of<std::int8_t>(a.kv.v_pages), bytes_of<std::int8_t>(b.kv.v_pages));
      EXPECT_EQ(compare_bits(a.kv.k_scales.download<float>(), b.kv.k_scales.download<float>()), "");
      EXPECT_EQ(compare_bits(a.kv.v_scales.download<float>(), b.kv.v_scales.download<float>()), "");
    } else {
      EXPECT_EQ(compare_bits(download_f32(a.kv.k_pages), download_f32(b.kv.k_pages)), "");
    }
    const auto q = random_normal(std::size_t(batch) * hq * 2 * c.d, 13);
    auto tq = upload_pair(dev, cpu, q, DType::f32, {batch, hq, 2, c.d});
    const AttentionOptions o{.causal = true, .return_lse = true};
    expect_same(attention_paged(dev, tq.dev, a.kv, o), attention_paged(cpu, tq.cpu, b.kv, o),
                "decode over appended pages");
  }
}

// The definition: an int8 element is fp32(code * scale); f32 pages holding exactly those
// values give the same bits, and the result is close to attention over the unquantized K/V.
TEST(KvCacheExact, Int8PagesAreFp32OverDequantizedValues) {
  Context dev = device_context();
  const int batch = 2, hkv = 2, hq = 8, d = 128, page = 16, n = 150;
  Cache c = make_cache(dev, DType::i8, PageLayout::nhd, batch, 10, page, hkv, d, {0, 0});
  const std::vector<std::int64_t> shape = {batch, hkv, n, d};
  const auto k = random_normal(std::size_t(batch) * hkv * n * d, 21);
  const auto v = random_normal(k.size(), 22);
  kv_append(dev, c.kv, dev.upload(k, DType::f32, shape), dev.upload(v, DType::f32, shape));

  // Dequantize on the host into f32 pages of the same table.
  auto deq = [](const Tensor& codes, const Tensor& scales) {
    const auto q8 = codes.download<std::int8_t>();
    const auto s = scales.download<float>();
    std::vector<float> x(q8.size());
    const std::size_t row = q8.size() / s.size();
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>(q8[i]) * s[i / row];  // sq_att_deq_i8
    return x;
  };
  PagedKV f = c.kv;
  f.k_pages = dev.upload(deq(c.kv.k_pages, c.kv.k_scales), DType::f32, c.kv.k_pages.shape());
  f.v_pages = dev.upload(deq(c.kv.v_pages, c.kv.v_scales), DType::f32, c.kv.v_pages.shape());
  f.k_scales = f.v_scales = Tensor{};
  const auto q = random_normal(std::size_t(batch) * hq * d, 23);
  const Tensor qt = dev.upload(q, DType::f32, {batch, hq, d});
  const AttentionOptions o{.return_lse = true};
  const AttentionResult r8 = attention_paged(dev, qt, c.kv, o);
  expect_same(r8, attention_paged(dev, qt, f, o), "int8 pages vs dequantized f32 pages");

  // Accuracy against float64 attention over the unquantized K/V (per sequence: [1, H, L, D]).
  const auto got = download_f32(r8.out);
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
  EXPECT_GE(dot / std::sqrt(ng * nw), 0.999);
}

// The same token's output: token-by-token append + decode == one causal call over the cache
// (int8 and NVFP4 pages).
TEST(KvCacheExact, TokenByTokenDecodeEqualsOneCall) {
  Context dev = device_context();
  for (const DType storage : {DType::i8, DType::u8}) {  // int8 and NVFP4 pages
    SCOPED_TRACE(dt(storage));
    const int hkv = 2, hq = 4, d = 64, page = 16, n = 5, pre = 60;
    Cache c = make_cache(dev, storage, PageLayout::hnd, 1, 5, page, hkv, d, {0});
    const auto k = random_normal(std::size_t(hkv) * (pre + n) * d, 31);
    const auto v = random_normal(k.size(), 32);
    const auto q = random_normal(std::size_t(hq) * n * d, 33);
    auto slice = [&](const std::vector<float>& x, int t0, int t1) {  // tokens [t0, t1) per head
      std::vector<float> y;
      for (int h = 0; h < hkv; ++h)
        y.insert(y.end(), x.begin() + (std::size_t(h) * (pre + n) + t0) * d,
                 x.begin() + (std::size_t(h) * (pre + n) + t1) * d);
      return y;
    };
    kv_append(dev, c.kv, dev.upload(slice(k, 0, pre), DType::f32, {1, hkv, pre, d}),
              dev.upload(slice(v, 0, pre), DType::f32, {1, hkv, pre, d}));
    std::vector<float> steps;  // [n][hq][d]
    for (int t = 0; t < n; ++t) {
      kv_append(dev, c.kv, dev.upload(slice(k, pre + t, pre + t + 1), DType::f32, {1, hkv, 1, d}),
                dev.upload(slice(v, pre + t, pre + t + 1), DType::f32, {1, hkv, 1, d}));
      std::vector<float> qt;
      for (int h = 0; h < hq; ++h)
        qt.insert(qt.end(), q.begin() + (std::size_t(h) * n + t) * d,
                  q.begin() + (std::size_t(h) * n + t + 1) * d);
      const auto o =
          download_f32(attention_paged(dev, dev.upload(qt, DType::f32, {1, hq, d}), c.kv).out);
      steps.insert(steps.end(), o.begin(), o.end());
    }
    const auto all = download_f32(
        attention_paged(dev, dev.upload(q, DType::f32, {1, hq, n, d}), c.kv, {.causal = true}).out);
    for (int t = 0; t < n; ++t)
      for (int h = 0; h < hq; ++h)
        for (int e = 0; e < d; ++e)
          ASSERT_TRUE(same_bits(steps[(std::size_t(t) * hq + h) * d + e],
                                all[(std::size_t(h) * n + t) * d + e]))
              << "token " << t << " head " << h << " d " << e;
  }
}

TEST(KvCacheErrors, HostileCallsRefused) {
  Context ctx = fallback_context();
  Cache c = make_cache(ctx, DType::i8, PageLayout::nhd, 2, 2, 16, 1, 64, {0, 30});
  const Tensor k = ctx.upload(random_normal(2 * 64 * 3, 1), DType::f32, {2, 1, 3, 64});
  auto fails = [&](PagedKV kv, const Tensor& kn, const std::string& text) {
    try {
      kv_append(ctx, kv, kn, kn);
      ADD_FAILURE() << "no error; expected: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  fails(c.kv, k, "needs 3 pages of 16 but page_table has 2");  // 30 + 3 tokens
  PagedKV x = c.kv;
  x.seq_lens = ctx.upload(std::vector<std::int32_t>{0, 0}, DType::i32, {2});
  x.k_scales = Tensor{};
  fails(x, k, "kv.k_scales is missing");
  x = c.kv;
  x.seq_lens = ctx.upload(std::vector<std::int32_t>{0, 0}, DType::i32, {2});
  x.page_table = ctx.upload(std::vector<std::int32_t>{0, 1, 0, 2}, DType::i32, {2, 2});
  fails(x, k, "page 0 receives tokens of sequences 0 and 1");
  x.page_table = ctx.upload(std::vector<std::int32_t>{0, 1, 9, 2}, DType::i32, {2, 2});
  fails(x, k, "page_table[1][0] = 9 is out of range");
  x = c.kv;
  x.seq_lens = ctx.upload(std::vector<std::int32_t>{0, 0}, DType::i32, {2});
  fails(x, ctx.upload(random_normal(2 * 2 * 3 * 64, 2), DType::f32, {2, 2, 3, 64}),
        "k_new has 2 heads of dim 64; the pages hold 1 heads");
  PagedKV f = make_paged_kv(ctx, 4, 16, 1, 64, DType::f32);
  f.page_table = c.kv.page_table;
  f.seq_lens = x.seq_lens;
  f.k_scales = c.kv.k_scales;
  fails(f, k, "scales belong to int8 and NVFP4 pages only");
  try {
    make_paged_kv(ctx, 4, 16, 1, 64, DType::i32);
    ADD_FAILURE() << "i32 pages accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not f32, f16, bf16, i8 (int8) or u8"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace sparq::test::attn
