// sparq's headline guarantee (docs/attention.md, "Batch invariance"): the same token's output is
// bit-identical however the serving engine schedules it — one prefill, chunked prefill (chunks 1,
// 37, 64), paged KV written by kv_append (pages 16 / 64, NHD / HND), token-by-token decode, and
// inside batches of 1 / 7 / 64 sequences of other lengths and data. Checked here for fp32
// compute over f32 / f16 / bf16 / int8 pages, for sparse attention with an explicit index whose
// selection is the same in every call, for the batch composition of the index builders, and for
// the int8 / NVFP4 precisions exactly where their definition allows it (their per-block scales
// and means depend on which tokens one call holds; the doc lists what cannot hold and why). Every
// check runs on the test device and on the fallback and compares bit for bit; a failure names
// the first differing element. Tiny shapes (CI budget): D = 64, Hq = 4, Hkv = 2, L <= 256.
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <tuple>
#include <chrono>
#include <cstdio>

#include "attention/attention_test_util.h"
#include "sparq/sparse.h"
#include "sparse/sparse_test_util.h"

namespace sparq::test::attn {
namespace {

constexpr int kD = 64, kHq = 4, kHkv = 2;

// One sequence: q [Hq, len, D], k / v [Hkv, len, D].
struct Seq {
  std::int64_t len = 0;
  std::vector<float> q, k, v;
};
Seq make_seq(std::int64_t len, std::uint64_t seed) {
  const auto n = static_cast<std::size_t>(len * kD);
  return {len, random_normal(n * kHq, seed), random_normal(n * kHkv, seed + 1),
          random_normal(n * kHkv, seed + 2)};
}

// Rows [r0, r1) of every head of a host array [heads, len, w] -> [heads, r1 - r0, w].
std::vector<float> rows_of(const std::vector<float>& x, int heads, std::int64_t len,
                           std::int64_t r0, std::int64_t r1, int w) {
  std::vector<float> y;
  for (int h = 0; h < heads; ++h)
    y.insert(y.end(), x.begin() + (h * len + r0) * w, x.begin() + (h * len + r1) * w);
  return y;
}

// Appends rows [r0, r1) of [heads, len, D] to a packed [T, heads, D] array (varlen layout).
void pack(std::vector<float>& dst, const std::vector<float>& src, int heads, std::int64_t len,
          std::int64_t r0, std::int64_t r1) {
  for (std::int64_t i = r0; i < r1; ++i)
    for (int h = 0; h < heads; ++h)
      dst.insert(dst.end(), src.begin() + (h * len + i) * kD, src.begin() + (h * len + i + 1) * kD);
}

// The output rows of one token range: o [Hq, n, D], l [Hq, n] (empty without lse).
struct Rows {
  std::vector<float> o, l;
};
// Sequence b's rows of a dense / sparse / paged result (out [B, Hq, n, D] or [B, Hq, D]).
Rows rows_of_result(const AttentionResult& r, std::int64_t b, std::int64_t n) {
  Rows x{download_f32(r.out.view({kHq, n, kD}, {n * kD, kD, 1}, b * kHq * n * kD)), {}};
  if (r.lse.defined()) x.l = r.lse.view({kHq, n}, {n, 1}, b * kHq * n).download<float>();
  return x;
}
// Rows [t0, t0 + n) of a varlen result (out [T, Hq, D], lse [Hq, T]).
Rows rows_of_varlen(const AttentionResult& r, std::int64_t t0, std::int64_t n) {
  return {download_f32(r.out.view({kHq, n, kD}, {kD, kHq * kD, 1}, t0 * kHq * kD)),
          r.lse.view({kHq, n}, {r.out.dim(0), 1}, t0).download<float>()};
}

// "" when equal bit for bit (any NaN == any NaN); else the first differing element of
// [Hq, n, w] rows starting at token r0, as (head, token, d).
std::string first_diff(const std::vector<float>& got, const std::vector<float>& want,
                       std::int64_t n, int w, std::int64_t r0) {
  if (got.size() != want.size()) return fmt::format("size {} != {}", got.size(), want.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!same_bits(got[i], want[i]) && bad++ == 0) first = i;
  if (bad == 0) return "";
  const auto i = static_cast<std::int64_t>(first);
  return fmt::format("{} of {} differ; first at head {} token {} d {}: {:.9g}, want {:.9g}", bad,
                     got.size(), i / (n * w), r0 + i / w % n, i % w, got[first], want[first]);
}

// The one-prefill result of a sequence: o [Hq, len, D], l [Hq, len] (empty without lse).
struct Full {
  std::vector<float> o, l;
  std::int64_t len = 0;
};
Full full_of(const AttentionResult& r, std::int64_t len) {
  const Rows x = rows_of_result(r, 0, len);
  return {x.o, x.l, len};
}

// Rows [r0, r0 + n) of `full` == `got`; false (and a failure naming `what`) otherwise.
bool expect_rows(const Full& full, std::int64_t r0, const Rows& got, const std::string& what) {
  const auto n = static_cast<std::int64_t>(got.o.size()) / (kHq * kD);
  const std::string o = first_diff(got.o, rows_of(full.o, kHq, full.len, r0, r0 + n, kD), n, kD, r0);
  const std::string l =
      full.l.empty() ? "" : first_diff(got.l, rows_of(full.l, kHq, full.len, r0, r0 + n, 1), n, 1, r0);
  EXPECT_EQ(o, "") << what << ": O";
  EXPECT_EQ(l, "") << what << ": lse";
  return o.empty() && l.empty();
}

// ---- fp32 compute over f32 / f16 / bf16 / int8 KV -----------------------------------------

// A paged cache with room for caps[b] tokens of sequence b, pages in a seeded shuffled order;
// tokens are written by kv_append only.
struct Cache {
  PagedKV kv;
  std::vector<std::int32_t> table, lens;
  std::int64_t max_pages = 0;
};
Cache make_cache(Context& ctx, DType storage, PageLayout layout, int page,
                 const std::vector<std::int64_t>& caps, std::uint64_t seed) {
  Cache c;
  std::int64_t total = 0;
  for (auto n : caps) {
    total += (n + page - 1) / page;
    c.max_pages = std::max(c.max_pages, (n + page - 1) / page + 1);  // a spare -1 entry
  }
  c.kv = make_paged_kv(ctx, total + 2, page, kHkv, kD, storage, layout);
  std::vector<std::int32_t> order(static_cast<std::size_t>(total + 2));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  const auto batch = static_cast<std::int64_t>(caps.size());
  c.table.assign(static_cast<std::size_t>(batch * c.max_pages), -1);
  std::size_t next = 0;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t p = 0; p < (caps[b] + page - 1) / page; ++p)
      c.table[b * c.max_pages + p] = order[next++];
  c.lens.assign(caps.size(), 0);
  c.kv.page_table = ctx.upload(c.table, DType::i32, {batch, c.max_pages});
  c.kv.seq_lens = ctx.upload(c.lens, DType::i32, {batch});
  return c;
}

// kv_append of tokens [t0, t1) of s to sequence b (through a one-sequence view of the pages).
void append(Context& ctx, Cache& c, std::int64_t b, const Seq& s, std::int64_t t0,
            std::int64_t t1) {
  ASSERT_EQ(c.lens[b], t0);
  PagedKV one = c.kv;
  one.page_table = ctx.upload(std::vector<std::int32_t>(c.table.begin() + b * c.max_pages,
                                                        c.table.begin() + (b + 1) * c.max_pages),
                              DType::i32, {1, c.max_pages});
  one.seq_lens = ctx.upload(std::vector<std::int32_t>{c.lens[b]}, DType::i32, {1});
  const std::vector<std::int64_t> shape{1, kHkv, t1 - t0, kD};
  kv_append(ctx, one, ctx.upload(rows_of(s.k, kHkv, s.len, t0, t1, kD), DType::f32, shape),
            ctx.upload(rows_of(s.v, kHkv, s.len, t0, t1, kD), DType::f32, shape));
  c.lens[b] = static_cast<std::int32_t>(t1);
  c.kv.seq_lens = ctx.upload(c.lens, DType::i32, {static_cast<std::int64_t>(c.lens.size())});
}

// The values sequence b's K or V pages hold, [Hkv, len, D] (int8: fp32(code * scale)).
std::vector<float> stored(const Cache& c, const Tensor& pages, const Tensor& scales,
                          std::int64_t b) {
  std::vector<float> vals;
  if (pages.dtype() == DType::i8) {
    const auto codes = pages.download<std::int8_t>();
    const auto sc = scales.download<float>();
    for (std::size_t i = 0; i < codes.size(); ++i)
      vals.push_back(static_cast<float>(codes[i]) * sc[i / kD]);  // sq_att_deq_i8
  } else {
    vals = download_f32(pages);
  }
  const std::int64_t len = c.lens[b], page = c.kv.page_size;
  const bool nhd = c.kv.layout == PageLayout::nhd;
  std::vector<float> out(static_cast<std::size_t>(kHkv * len * kD));
  for (int h = 0; h < kHkv; ++h)
    for (std::int64_t j = 0; j < len; ++j) {
      const std::int64_t pg = c.table[b * c.max_pages + j / page], slot = j % page;
      const std::int64_t row = nhd ? (pg * page + slot) * kHkv + h : (pg * kHkv + h) * page + slot;
      std::copy_n(vals.begin() + row * kD, kD, out.begin() + (h * len + j) * kD);
    }
  return out;
}

// Sequences for a batch: `s` at index `at`, the others random with lengths 1..max_len.
std::vector<Seq> batch_around(const Seq& s, int batch, int at, std::int64_t max_len,
                              std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Seq> seqs;
  for (int b = 0; b < batch; ++b)
    seqs.push_back(b == at ? s
                           : make_seq(1 + static_cast<std::int64_t>(rng() % max_len), seed + 7 * b));
  return seqs;
}

void check_fp32_storage(Context& ctx, DType storage) {
  SCOPED_TRACE(fmt::format("{}, {} pages", ctx.device().name, dt(storage)));
  const std::int64_t L = 200;
  const Seq s = make_seq(L, 100);
  const AttentionOptions o{.causal = true, .return_lse = true};

  // One prefill over contiguous K/V holding what the cache stores (int8: dequantized, f32).
  Cache c0 = make_cache(ctx, storage, PageLayout::nhd, 16, {L}, 1);
  append(ctx, c0, 0, s, 0, L);
  const auto ks = stored(c0, c0.kv.k_pages, c0.kv.k_scales, 0);
  const auto vs = stored(c0, c0.kv.v_pages, c0.kv.v_scales, 0);
  const DType ct = storage == DType::i8 ? DType::f32 : storage;
  const std::vector<std::int64_t> st{kHkv * L * kD, L * kD, kD, 1};
  const Tensor q = ctx.upload(s.q, DType::f32, {1, kHq, L, kD});
  const Tensor k = upload_as(ctx, ks, ct, {1, kHkv, L, kD});
  const Tensor v = upload_as(ctx, vs, ct, {1, kHkv, L, kD});
  const Full full = full_of(attention(ctx, q, k, v, o), L);

  // Chunked prefill over contiguous K/V: rows [s0, e) against keys [0, e) (bottom-right causal).
  for (std::int64_t chunk : {37, 64})
    for (std::int64_t s0 = 0; s0 < L; s0 += chunk) {
      const std::int64_t e = std::min(s0 + chunk, L);
      const auto r = attention(ctx, q.view({1, kHq, e - s0, kD}, {kHq * L * kD, L * kD, kD, 1}, s0 * kD),
                               k.view({1, kHkv, e, kD}, st), v.view({1, kHkv, e, kD}, st), o);
      if (!expect_rows(full, s0, rows_of_result(r, 0, e - s0),
                       fmt::format("chunked prefill, chunk {}, rows [{}, {})", chunk, s0, e)))
        break;
    }

  // Paged: append a chunk with kv_append, attend its rows (chunk 1 = token-by-token decode).
  for (const auto& [page, layout, chunk] :
       {std::tuple{16, PageLayout::nhd, 1}, std::tuple{16, PageLayout::hnd, 37},
        std::tuple{64, PageLayout::nhd, 64}, std::tuple{64, PageLayout::hnd, 1}}) {
    Cache c = make_cache(ctx, storage, layout, page, {L}, 10 + page + chunk);
    for (std::int64_t s0 = 0; s0 < L; s0 += chunk) {
      const std::int64_t e = std::min<std::int64_t>(s0 + chunk, L), n = e - s0;
      append(ctx, c, 0, s, s0, e);
      const auto qc = rows_of(s.q, kHq, L, s0, e, kD);
      const Tensor qt = n == 1 ? ctx.upload(qc, DType::f32, {1, kHq, kD})
                               : ctx.upload(qc, DType::f32, {1, kHq, n, kD});
      if (!expect_rows(full, s0, rows_of_result(attention_paged(ctx, qt, c.kv, o), 0, n),
                       fmt::format("paged {} page {}, chunk {}, rows [{}, {})",
                                   layout == PageLayout::nhd ? "NHD" : "HND", page, chunk, s0, e)))
        break;
    }
  }

  // Paged batches: the sequence at index `at` among others of lengths 1..max_len; the last n
  // rows of every sequence in one call (rows before a short sequence's start see no key).
  for (const auto& [batch, at, max_len, n] :
       {std::tuple{7, 3, std::int64_t{200}, std::int64_t{37}},
        std::tuple{64, 40, std::int64_t{8}, std::int64_t{1}}}) {
    const auto seqs = batch_around(s, batch, at, max_len, 500 + batch);
    std::vector<std::int64_t> caps;
    for (const auto& x : seqs) caps.push_back(x.len);
    Cache c = make_cache(ctx, storage, PageLayout::nhd, 16, caps, batch);
    std::vector<float> qb;
    for (int b = 0; b < batch; ++b) {
      append(ctx, c, b, seqs[b], 0, seqs[b].len);
      const auto qr = b == at ? rows_of(s.q, kHq, L, L - n, L, kD)
                              : random_normal(static_cast<std::size_t>(kHq * n * kD), 900 + b);
      qb.insert(qb.end(), qr.begin(), qr.end());
    }
    const auto r = attention_paged(ctx, ctx.upload(qb, DType::f32, {batch, kHq, n, kD}), c.kv, o);
    expect_rows(full, L - n, rows_of_result(r, at, n),
                fmt::format("paged batch of {} at index {}, rows [{}, {})", batch, at, L - n, L));
  }

  // Varlen batches over contiguous K/V: the target's rows [r0, r1) against keys [0, r1) as
  // sequence `at`; the others have lengths 1..max_len and 1..len query rows.
  for (const auto& [batch, at, max_len, r0, r1] :
       {std::tuple{7, 3, std::int64_t{200}, std::int64_t{100}, std::int64_t{137}},
        std::tuple{64, 40, std::int64_t{8}, std::int64_t{199}, std::int64_t{200}}}) {
    const auto seqs = batch_around(s, batch, at, max_len, 700 + batch);
    std::vector<float> qp, kp, vp;
    std::vector<std::int32_t> cq{0}, ck{0};
    for (int b = 0; b < batch; ++b) {
      const Seq& x = seqs[b];
      const std::int64_t q0 = b == at ? r0 : x.len - 1 - (b % x.len), q1 = b == at ? r1 : x.len;
      const std::int64_t k1 = b == at ? r1 : x.len;
      pack(qp, x.q, kHq, x.len, q0, q1);
      pack(kp, b == at ? ks : x.k, kHkv, x.len, 0, k1);
      pack(vp, b == at ? vs : x.v, kHkv, x.len, 0, k1);
      cq.push_back(cq.back() + static_cast<std::int32_t>(q1 - q0));
      ck.push_back(ck.back() + static_cast<std::int32_t>(k1));
    }
    const auto r = attention_varlen(
        ctx, ctx.upload(qp, DType::f32, {cq.back(), kHq, kD}),
        upload_as(ctx, kp, ct, {ck.back(), kHkv, kD}), upload_as(ctx, vp, ct, {ck.back(), kHkv, kD}),
        ctx.upload(cq, DType::i32, {batch + 1}), ctx.upload(ck, DType::i32, {batch + 1}), o);
    expect_rows(full, r0, rows_of_varlen(r, cq[at], r1 - r0),
                fmt::format("varlen batch of {} at index {}, rows [{}, {})", batch, at, r0, r1));
  }
}

TEST(BatchInvariance, Fp32OverEveryPageStorage) {
  Context dev = device_context(), cpu = fallback_context();
  for (Context* ctx : {&dev, &cpu})
    for (DType storage : {DType::f32, DType::f16, DType::bf16, DType::i8}) {
      const auto t0 = std::chrono::steady_clock::now();
      check_fp32_storage(*ctx, storage);
      std::printf("%s %s %.0f ms\n", ctx->device().name.c_str(), dt(storage), std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
}

}  // namespace
}  // namespace sparq::test::attn
