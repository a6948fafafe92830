// Prefill over paged K/V (dense.cl / sparse_prefill.cl in paged mode, prefill_stage.h): kernel ==
// fallback bitwise, and paged == the same K/V stored contiguously bitwise (f32 / bf16 pages, and
// int8 pages == f32 K/V holding code * scale), for pages 16 / 64, NHD / HND, GQA, D 64 / 128,
// chunked prefill (causal, Lq < Lk), sequences of different lengths, past a 4096-key chunk; and
// sparse prefill over pages (attention_paged with a SparseIndex) == the contiguous sparse call.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "attention_test_util.h"
#include "kv_cache_util.h"

namespace sparq::test::attn {
namespace {

// K/V of B sequences ([Hkv, len_b, D] each) and the same keys in pages. int8: the values are
// code * scale (sq_att_deq_i8), the pages hold the codes and the row scales.
struct Source {
  std::vector<std::vector<float>> k, v;
  PagedHost pages, k_sc, v_sc;  // k_sc / v_sc: int8 row scales (d = 1)
  bool int8 = false;
};

Source make_source(const std::vector<std::int32_t>& lens, int hkv, int d, int page, bool nhd,
                   bool int8, std::uint64_t seed) {
  Source s;
  s.int8 = int8;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> code(-127, 127);
  std::uniform_real_distribution<float> scale(0.005f, 0.05f);
  std::vector<std::vector<float>> kc, vc, ks, vs;  // int8: codes and scales
  for (std::size_t b = 0; b < lens.size(); ++b) {
    const std::size_t rows = std::size_t(hkv) * lens[b];
    if (!int8) {
      s.k.push_back(random_normal(rows * d, seed + 10 * b + 1));
      s.v.push_back(random_normal(rows * d, seed + 10 * b + 2));
      continue;
    }
    for (auto* x : {&kc, &vc}) {
      x->emplace_back(rows * d);
      for (float& e : x->back()) e = static_cast<float>(code(rng));
    }
    for (auto* x : {&ks, &vs}) {
      x->emplace_back(rows);
      for (float& e : x->back()) e = scale(rng);
    }
    s.k.emplace_back(rows * d);
    s.v.emplace_back(rows * d);
    for (std::size_t i = 0; i < rows * d; ++i) {
      s.k[b][i] = kc[b][i] * ks[b][i / d];
      s.v[b][i] = vc[b][i] * vs[b][i / d];
    }
  }
  if (!int8) {
    s.pages = make_paged(s.k, s.v, lens, hkv, d, page, nhd, seed);
    return s;
  }
  s.pages = make_paged(kc, vc, lens, hkv, d, page, nhd, seed);
  s.k_sc = make_paged(ks, vs, lens, hkv, 1, page, nhd, seed);  // same page order
  return s;
}

PagedKV upload_source(Context& ctx, const Source& s, DType t) {
  if (!s.int8) return upload_paged(ctx, s.pages, t);
  PagedKV kv = upload_paged(ctx, s.pages, DType::f32);
  auto codes = [&](const std::vector<float>& x) {
    std::vector<std::int8_t> c(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      c[i] = std::isnan(x[i]) ? 0 : static_cast<std::int8_t>(x[i]);
    return ctx.upload(c, DType::i8, s.pages.pages_shape());
  };
  kv.k_pages = codes(s.pages.k_pages);
  kv.v_pages = codes(s.pages.v_pages);
  std::vector<std::int64_t> shape = s.k_sc.pages_shape();
  shape.pop_back();
  kv.k_scales = ctx.upload(s.k_sc.k_pages, DType::f32, shape);  // unused slots NaN
  kv.v_scales = ctx.upload(s.k_sc.v_pages, DType::f32, shape);
  return kv;
}

struct Case {
  DType storage;
  bool nhd;
  int page, d, hq, hkv, lq;
  std::vector<std::int32_t> lens;
  bool causal;
};

std::string name(const Case& c) {
  return fmt::format("{} {} page {} D{} Hq{}/Hkv{} Lq {} lens {} {}", dt(c.storage),
                     c.nhd ? "NHD" : "HND", c.page, c.d, c.hq, c.hkv, c.lq, fmt::join(c.lens, "/"),
                     c.causal ? "causal" : "full");
}

TEST(PagedPrefill, DenseKernelEqualsFallbackAndContiguous) {
  Context dev = device_context(), cpu = fallback_context();
  const std::vector<Case> cases = {
      {DType::f32, true, 16, 64, 4, 2, 40, {100, 77}, true},
      {DType::bf16, false, 64, 64, 4, 2, 40, {100, 77}, true},
      {DType::i8, true, 64, 128, 2, 1, 70, {130}, true},
      {DType::i8, false, 16, 64, 4, 2, 33, {33, 90}, false},
      {DType::f32, false, 16, 128, 2, 2, 32, {32, 50, 20}, true},  // 20 < Lq: early rows see
                                                                   // nothing
      {DType::f32, true, 64, 64, 2, 1, 64, {4200}, true},          // two 4096-key chunks
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(name(c));
    const int batch = static_cast<int>(c.lens.size());
    const Source s = make_source(c.lens, c.hkv, c.d, c.page, c.nhd, c.storage == DType::i8, 5);
    const auto q = random_normal(std::size_t(batch) * c.hq * c.lq * c.d, 9);
    const Pair tq = upload_pair(dev, cpu, q, DType::f32, {batch, c.hq, c.lq, c.d});
    const AttentionOptions o{.causal = c.causal, .return_lse = true};
    const AttentionResult r = attention_paged(dev, tq.dev, upload_source(dev, s, c.storage), o);
    expect_same(r, attention_paged(cpu, tq.cpu, upload_source(cpu, s, c.storage), o),
                "paged prefill: kernel vs fallback");
    // Sequence b alone, K/V contiguous (int8: f32 code * scale; else the pages' storage).
    const DType kv_t = c.storage == DType::i8 ? DType::f32 : c.storage;
    const auto out = download_f32(r.out), lse = r.lse.download<float>();
    const std::size_t rows = std::size_t(c.hq) * c.lq;
    for (int b = 0; b < batch; ++b) {
      const std::vector<std::int64_t> kv_shape = {1, c.hkv, c.lens[b], c.d};
      const std::vector<float> qb(q.begin() + b * rows * c.d, q.begin() + (b + 1) * rows * c.d);
      const AttentionResult one = attention(dev, dev.upload(qb, DType::f32, {1, c.hq, c.lq, c.d}),
                                            upload_as(dev, s.k[b], kv_t, kv_shape),
                                            upload_as(dev, s.v[b], kv_t, kv_shape), o);
      EXPECT_EQ(compare_bits(download_f32(one.out),
                             std::vector<float>(out.begin() + b * rows * c.d,
                                                out.begin() + (b + 1) * rows * c.d)),
                "")
          << "O of sequence " << b << ": paged vs contiguous";
      EXPECT_EQ(
          compare_bits(one.lse.download<float>(),
                       std::vector<float>(lse.begin() + b * rows, lse.begin() + (b + 1) * rows)),
          "")
          << "lse of sequence " << b << ": paged vs contiguous";
    }
  }
}

// Sparse prefill over pages: attention_paged(q, kv, index) == attention(q, k, v, index) over the
// same K/V contiguous, and kernel == fallback (columns, token A-shape mask, kv_group sharing).
TEST(PagedPrefill, SparseEqualsContiguousAndFallback) {
  Context dev = device_context(), cpu = fallback_context();
  struct SparseCase {
    Case c;
    Pattern pattern;
    IndexSharing sharing;
  };
  const std::vector<SparseCase> cases = {
      {{DType::f32, true, 16, 64, 4, 2, 96, {200, 200}, true},
       VerticalSlash{.vertical = 40, .slash = 60, .forced_cols = 3, .forced_diags = 5},
       IndexSharing::per_q_head},
      {{DType::i8, false, 64, 128, 4, 2, 70, {150}, true},
       AShape{.n_init = 16, .n_local = 40, .exact = true},
       IndexSharing::kv_group},
      {{DType::bf16, false, 16, 64, 2, 1, 64, {64}, false}, Dense{}, IndexSharing::per_q_head},
  };
  for (const SparseCase& sc : cases) {
    const Case& c = sc.c;
    SCOPED_TRACE(name(c));
    const int batch = static_cast<int>(c.lens.size()), lk = c.lens[0];
    const Source s = make_source(c.lens, c.hkv, c.d, c.page, c.nhd, c.storage == DType::i8, 6);
    std::vector<float> k, v;  // [B, Hkv, Lk, D]
    for (int b = 0; b < batch; ++b) {
      k.insert(k.end(), s.k[b].begin(), s.k[b].end());
      v.insert(v.end(), s.v[b].begin(), s.v[b].end());
    }
    const DType kv_t = c.storage == DType::i8 ? DType::f32 : c.storage;
    const std::vector<std::int64_t> kv_shape = {batch, c.hkv, lk, c.d};
    const auto q = random_normal(std::size_t(batch) * c.hq * c.lq * c.d, 19);
    const Pair tq = upload_pair(dev, cpu, q, DType::f32, {batch, c.hq, c.lq, c.d});
    const Pair tk = upload_pair(dev, cpu, k, kv_t, kv_shape);
    const Pair tv = upload_pair(dev, cpu, v, kv_t, kv_shape);
    const IndexOptions io{.causal = c.causal, .sharing = sc.sharing};
    const SparseIndex xd = build_index(dev, tq.dev, tk.dev, sc.pattern, io);
    const SparseIndex xc = build_index(cpu, tq.cpu, tk.cpu, sc.pattern, io);
    const AttentionOptions o{.causal = c.causal, .return_lse = true};
    const AttentionResult r = attention_paged(dev, tq.dev, upload_source(dev, s, c.storage), xd, o);
    expect_same(r, attention_paged(cpu, tq.cpu, upload_source(cpu, s, c.storage), xc, o),
                "sparse paged: kernel vs fallback");
    expect_same(r, attention(dev, tq.dev, tk.dev, tv.dev, xd, o), "sparse: paged vs contiguous");
  }
}

// NVFP4 pages written by kv_append (the same bytes on both contexts): dense paged prefill kernel
// == fallback, and the sparse entry with the dense index == dense paged prefill (as contiguous).
TEST(PagedPrefill, Nvfp4PagesDenseAndSparse) {
  Context dev = device_context(), cpu = fallback_context();
  const int hkv = 2, hq = 4, d = 64, lk = 100, lq = 40;
  Cache a = make_cache(dev, DType::u8, PageLayout::hnd, 1, 7, 16, hkv, d, {0});
  Cache b = make_cache(cpu, DType::u8, PageLayout::hnd, 1, 7, 16, hkv, d, {0});
  const auto k = random_normal(std::size_t(hkv) * lk * d, 31), v = random_normal(k.size(), 32);
  const std::vector<std::int64_t> shape = {1, hkv, lk, d};
  kv_append(dev, a.kv, dev.upload(k, DType::f32, shape), dev.upload(v, DType::f32, shape));
  kv_append(cpu, b.kv, cpu.upload(k, DType::f32, shape), cpu.upload(v, DType::f32, shape));
  const auto q = random_normal(std::size_t(hq) * lq * d, 33);
  const Pair tq = upload_pair(dev, cpu, q, DType::f32, {1, hq, lq, d});
  const AttentionOptions o{.causal = true, .return_lse = true};
  const AttentionResult r = attention_paged(dev, tq.dev, a.kv, o);
  expect_same(r, attention_paged(cpu, tq.cpu, b.kv, o), "NVFP4 paged prefill: kernel vs fallback");
  const SparseIndex xd = dense_index(dev, 1, hq, lq, lk, true);
  const SparseIndex xc = dense_index(cpu, 1, hq, lq, lk, true);
  const AttentionResult s = attention_paged(dev, tq.dev, a.kv, xd, o);
  expect_same(s, attention_paged(cpu, tq.cpu, b.kv, xc, o),
              "NVFP4 sparse paged: kernel vs fallback");
  expect_same(s, r, "NVFP4 pages: dense index == dense paged prefill");
}

TEST(PagedPrefill, SparseRefusesBadCalls) {
  Context ctx = fallback_context();
  const Source s = make_source({64, 50}, 1, 64, 16, true, false, 7);
  const PagedKV kv = upload_source(ctx, s, DType::f32);
  const Tensor q = ctx.upload(random_normal(2 * 64 * 64, 3), DType::f32, {2, 1, 64, 64});
  const SparseIndex x = dense_index(ctx, 2, 1, 64, 64, true);
  auto fails = [&](const PagedKV& c, const AttentionOptions& o, const std::string& text) {
    try {
      attention_paged(ctx, q, c, x, o);
      ADD_FAILURE() << "no sparq::Error; expected one mentioning '" << text << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  fails(kv, {.causal = true}, "kv.seq_lens[1] = 50");
  PagedKV full = kv;
  full.seq_lens = ctx.upload(std::vector<std::int32_t>{64, 64}, DType::i32, {2});
  fails(full, {.causal = false}, "causal");
  fails(full, {.causal = true, .out_dtype = DType::bf16}, "out_dtype");
  fails(full, {.causal = true, .precision = Precision::int8}, "precision");
  PagedKV small = full;
  small.page_size = 8;
  fails(small, {.causal = true}, "page_size");
}

}  // namespace
}  // namespace sparq::test::attn
