// sparq's headline guarantee (docs/attention.md, "Batch invariance"): the same token's output is
// bit-identical however the serving engine schedules it — one prefill, chunked prefill (chunks 1,
// 37, 64), paged KV written by kv_append (pages 16 / 64, NHD / HND), token-by-token decode, and
// inside batches of 1 / 7 / 64 sequences of other lengths and data. Checked here for fp32
// compute over f32 / f16 / bf16 / int8 pages, for sparse attention with an explicit index whose
// selection is the same in every call, for the batch composition of the index builders, and for
// the int8 / NVFP4 precisions exactly where their definition allows it (their per-block scales
// and means depend on which tokens one call holds; the doc lists what cannot hold and why). The
// checks run on the test device and on the fallback (mask hooks, builders and Quest on the
// fallback only, see check_sparse) and compare bit for bit; a failure names the first differing
// element. Tiny shapes (CI budget): D = 64, Hq = 4, Hkv = 2, L <= 256 (one 4200-key case).
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <tuple>

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
  const std::string o =
      first_diff(got.o, rows_of(full.o, kHq, full.len, r0, r0 + n, kD), n, kD, r0);
  const std::string l =
      full.l.empty() ? ""
                     : first_diff(got.l, rows_of(full.l, kHq, full.len, r0, r0 + n, 1), n, 1, r0);
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
    seqs.push_back(
        b == at ? s : make_seq(1 + static_cast<std::int64_t>(rng() % max_len), seed + 7 * b));
  return seqs;
}

// o: causal, lse, and the masks under test (none, or window + soft-cap + ALiBi + sinks).
void check_fp32_storage(Context& ctx, DType storage, const AttentionOptions& o) {
  SCOPED_TRACE(fmt::format("{}, {} pages{}", ctx.device().name, dt(storage),
                           o.masks.sinks.defined() ? ", masks" : ""));
  const std::int64_t L = 200;
  const Seq s = make_seq(L, 100);

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
      const auto r =
          attention(ctx, q.view({1, kHq, e - s0, kD}, {kHq * L * kD, L * kD, kD, 1}, s0 * kD),
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
    const auto r = attention_varlen(ctx, ctx.upload(qp, DType::f32, {cq.back(), kHq, kD}),
                                    upload_as(ctx, kp, ct, {ck.back(), kHkv, kD}),
                                    upload_as(ctx, vp, ct, {ck.back(), kHkv, kD}),
                                    ctx.upload(cq, DType::i32, {batch + 1}),
                                    ctx.upload(ck, DType::i32, {batch + 1}), o);
    expect_rows(full, r0, rows_of_varlen(r, cq[at], r1 - r0),
                fmt::format("varlen batch of {} at index {}, rows [{}, {})", batch, at, r0, r1));
  }
}

// Past one 4096-key chunk the paged decode kernel merges chunk states in place (Lq > 16) or
// splits the chunks across work-groups and merges them in merge.cl (Lq <= 16): rows [L - 40, L)
// of a 4200-key sequence, as one dense call ≡ paged Lq = 20, 16 and 1 calls.
void check_long_context(Context& ctx, DType storage) {
  SCOPED_TRACE(fmt::format("{}, {} pages, 4200 keys", ctx.device().name, dt(storage)));
  const std::int64_t L = 4200;
  const Seq s = make_seq(L, 600);
  const AttentionOptions o{.causal = true, .return_lse = true};
  Cache c = make_cache(ctx, storage, PageLayout::nhd, 64, {L}, 3);
  append(ctx, c, 0, s, 0, L);
  const DType ct = storage == DType::i8 ? DType::f32 : storage;
  const auto q40 = rows_of(s.q, kHq, L, L - 40, L, kD);
  const Full last40 = full_of(
      attention(ctx, ctx.upload(q40, DType::f32, {1, kHq, 40, kD}),
                upload_as(ctx, stored(c, c.kv.k_pages, c.kv.k_scales, 0), ct, {1, kHkv, L, kD}),
                upload_as(ctx, stored(c, c.kv.v_pages, c.kv.v_scales, 0), ct, {1, kHkv, L, kD}), o),
      40);
  for (std::int64_t n : {20, 16, 1}) {
    const Tensor qt = ctx.upload(rows_of(s.q, kHq, L, L - n, L, kD), DType::f32, {1, kHq, n, kD});
    expect_rows(last40, 40 - n, rows_of_result(attention_paged(ctx, qt, c.kv, o), 0, n),
                fmt::format("paged Lq = {} (rows from {} of the last 40)", n, 40 - n));
  }
}

TEST(BatchInvariance, Fp32OverEveryPageStorage) {
  Context dev = device_context(), cpu = fallback_context();
  const AttentionOptions o{.causal = true, .return_lse = true};
  for (Context* ctx : {&dev, &cpu})
    for (DType storage : {DType::f32, DType::f16, DType::bf16, DType::i8}) {
      check_fp32_storage(*ctx, storage, o);
      if (storage == DType::f32 || storage == DType::i8) check_long_context(*ctx, storage);
    }
  // The mask hooks keep the guarantee (key padding aside: varlen refuses it, its cu_seqlens give
  // the keys). Fallback only: AttentionMasks.* check the hooked kernels against it bit for bit,
  // and first use of the hooked PoCL variants would cost seconds of CI.
  AttentionOptions m = o;
  m.masks.window_left = 60;
  m.masks.softcap = 2.5f;
  m.masks.alibi_slopes =
      cpu.upload(std::vector<float>{0.02f, 0.05f, 0.1f, 0.0f}, DType::f32, {kHq});
  m.masks.sinks = cpu.upload(std::vector<float>{1.0f, -0.5f, 3.0f, 0.0f}, DType::f32, {kHq});
  for (DType storage : {DType::f32, DType::i8}) check_fp32_storage(cpu, storage, m);
}

// ---- sparse attention with an explicit index --------------------------------------------------

// The explicit index of a sink + sliding-window selection for query rows [r0, r1) of B sequences
// (positions r0.., keys [0, r1)): per 64-row block, every 64-aligned key tile that holds a key
// some row of the block sees; the token-exact mask (index sink_tokens / window_tokens: key kp is
// visible to qp iff kp < sink || kp > qp - window) makes each row's visible keys independent of
// the block it shares, and 64-aligned tiles group the keys as dense attention does, so every
// chunking gives a row the same keys in the same tiles: the selection is the same.
HostIndex window_index(int batch, std::int64_t r0, std::int64_t r1, int sink, int window,
                       int max_cols = 1) {
  HostIndex h;
  h.B = batch;
  h.Hi = kHq;
  h.Lq = r1 - r0;
  h.Lk = r1;
  h.off = r0;
  h.causal = true;
  h.nqb = static_cast<int>((h.Lq + 63) / 64);
  h.max_tiles = static_cast<int>((r1 + 63) / 64);
  h.max_cols = max_cols;
  h.sink_tokens = sink;
  h.window_tokens = window;
  const auto rows = static_cast<std::size_t>(batch * kHq * h.nqb);
  h.tile_count.assign(rows, 0);
  h.col_count.assign(rows, 0);
  h.tile_start.assign(rows * static_cast<std::size_t>(h.max_tiles), -1);
  h.col_index.assign(rows * static_cast<std::size_t>(max_cols), -1);
  for (std::size_t row = 0; row < rows; ++row) {
    const std::int64_t qb = static_cast<std::int64_t>(row) % h.nqb;
    const std::int64_t p0 = r0 + 64 * qb, p1 = std::min(p0 + 63, r1 - 1);
    for (std::int32_t t = 0; t <= p1; t += 64)
      if (t < sink || t + 63 > p0 - window)
        h.tile_start[row * static_cast<std::size_t>(h.max_tiles) +
                     static_cast<std::size_t>(h.tile_count[row]++)] = t;
  }
  return h;
}

// Quest decode (sparq/quest.h) selects pages and computes per (sequence, head): the batch around
// a sequence and the page layout change no bit. (Its tiles are its pages and its splits are
// pages_per_split pages, so the page size and the split are part of its definition.)
void check_quest(Context& ctx, const Seq& s) {
  const QuestOptions qo{.page_size = 16, .token_budget = 64};  // 4 of 13 pages
  DecodeOptions d;
  d.return_lse = true;
  auto run = [&](PageLayout layout, int batch, int at) {
    const auto seqs = batch_around(s, batch, at, 200, 900 + batch);
    std::vector<std::int64_t> caps;
    for (const auto& x : seqs) caps.push_back(x.len);
    Cache c = make_cache(ctx, DType::f32, layout, 16, caps, 5 + batch);
    std::vector<float> qb;
    for (int b = 0; b < batch; ++b) {
      append(ctx, c, b, seqs[b], 0, seqs[b].len);
      const auto qr = b == at ? rows_of(s.q, kHq, s.len, s.len - 1, s.len, kD)
                              : random_normal(static_cast<std::size_t>(kHq * kD), 950 + b);
      qb.insert(qb.end(), qr.begin(), qr.end());
    }
    const QuestState st = quest_init(ctx, c.kv, qo);
    return rows_of_result(decode(ctx, ctx.upload(qb, DType::f32, {batch, kHq, kD}), c.kv, &st, d),
                          at, 1);
  };
  const Rows alone = run(PageLayout::nhd, 1, 0);
  const Full one{alone.o, alone.l, 1};
  expect_rows(one, 0, run(PageLayout::hnd, 1, 0), "Quest decode: HND pages == NHD pages");
  expect_rows(one, 0, run(PageLayout::nhd, 7, 3), "Quest decode: batch of 7 at index 3 == alone");
}

// all: also the window-hook and index-builder checks. The test runs them on the fallback only:
// their kernels equal the fallback bit for bit (AttentionMasks.DenseKernelMatchesFallback, the
// builders' DeviceEqualsFallback tests), and first use of those PoCL variants costs ~8 s of CI.
void check_sparse(Context& ctx, bool all) {
  SCOPED_TRACE(ctx.device().name);
  const std::int64_t L = 200;
  const int sink = 20, window = 70;
  const Seq s = make_seq(L, 200);
  const AttentionOptions o{.causal = true, .return_lse = true};
  const std::vector<std::int64_t> st{kHkv * L * kD, L * kD, kD, 1};
  const Tensor q = ctx.upload(s.q, DType::f32, {1, kHq, L, kD});
  const Tensor k = ctx.upload(s.k, DType::f32, {1, kHkv, L, kD});
  const Tensor v = ctx.upload(s.v, DType::f32, {1, kHkv, L, kD});
  auto rows = [&](std::int64_t s0, std::int64_t e) {
    return attention(ctx, q.view({1, kHq, e - s0, kD}, {kHq * L * kD, L * kD, kD, 1}, s0 * kD),
                     k.view({1, kHkv, e, kD}, st), v.view({1, kHkv, e, kD}, st),
                     upload_index(ctx, window_index(1, s0, e, sink, window)), o);
  };
  const Full full = full_of(rows(0, L), L);

  // Sliding window == its explicit index: dense attention with the window hook, the explicit
  // index (window only) with its token mask, and the same tiles with the window hook instead.
  if (all) {
    AttentionOptions w = o;
    w.masks.window_left = window - 1;
    const Full dense = full_of(attention(ctx, q, k, v, w), L);
    const SparseIndex x = upload_index(ctx, window_index(1, 0, L, 0, window));
    expect_rows(dense, 0, rows_of_result(attention(ctx, q, k, v, x, o), 0, L),
                "explicit window index == dense window hook");
    HostIndex hooked = window_index(1, 0, L, 0, window);
    hooked.window_tokens = 0;
    expect_rows(dense, 0,
                rows_of_result(attention(ctx, q, k, v, upload_index(ctx, hooked), w), 0, L),
                "explicit window tiles + window hook == dense window hook");
  }

  // Chunked prefill: each chunk's own index (its blocks start at other positions).
  for (std::int64_t chunk : {1, 37, 64})
    for (std::int64_t s0 = 0; s0 < L; s0 += chunk) {
      const std::int64_t e = std::min(s0 + chunk, L);
      if (!expect_rows(
              full, s0, rows_of_result(rows(s0, e), 0, e - s0),
              fmt::format("sparse chunked prefill, chunk {}, rows [{}, {})", chunk, s0, e)))
        break;
    }

  // Batches of 7 (rows [163, 200)) and 64 (the last row): the other sequences get random data and
  // random index rows (intervals and columns, sparse_test_util.h) under the same token mask.
  for (const auto& [batch, at, n] :
       {std::tuple{7, 3, std::int64_t{37}}, std::tuple{64, 40, std::int64_t{1}}}) {
    sparse::Shape sh{.B = batch, .Hq = kHq, .Hkv = kHkv, .D = kD, .Lq = n, .Lk = L};
    sh.sink = sink;
    sh.window = window;
    HostIndex h = sparse::random_index(sh, 40 + batch);
    const HostIndex mine = window_index(1, L - n, L, sink, window, h.max_cols);
    const auto per_b = static_cast<std::size_t>(kHq * h.nqb);
    std::copy(mine.tile_count.begin(), mine.tile_count.end(), h.tile_count.begin() + at * per_b);
    std::copy(mine.col_count.begin(), mine.col_count.end(), h.col_count.begin() + at * per_b);
    std::copy(mine.tile_start.begin(), mine.tile_start.end(),
              h.tile_start.begin() + at * per_b * h.max_tiles);
    std::copy(mine.col_index.begin(), mine.col_index.end(),
              h.col_index.begin() + at * per_b * h.max_cols);
    sparse::Inputs in = sparse::random_inputs(sh, 60 + batch);
    const auto qr = rows_of(s.q, kHq, L, L - n, L, kD);
    std::copy(qr.begin(), qr.end(), in.q.begin() + at * kHq * n * kD);
    std::copy(s.k.begin(), s.k.end(), in.k.begin() + at * kHkv * L * kD);
    std::copy(s.v.begin(), s.v.end(), in.v.begin() + at * kHkv * L * kD);
    const sparse::Uploaded t = sparse::upload(ctx, sh, in);
    const auto r = attention(ctx, t.q, t.k, t.v, upload_index(ctx, h), o);
    expect_rows(full, L - n, rows_of_result(r, at, n),
                fmt::format("sparse batch of {} at index {}", batch, at));
  }

  // The builders select per (sequence, head): a pattern's selection, hence its bits, does not
  // depend on the batch around it (B = 1 vs the sequence at index 2 of 5).
  if (!all) return;
  sparse::Shape sh{.B = 5, .Hq = kHq, .Hkv = kHkv, .D = kD, .Lq = L, .Lk = L};
  sparse::Inputs in = sparse::random_inputs(sh, 80);
  std::copy(s.q.begin(), s.q.end(), in.q.begin() + 2 * kHq * L * kD);
  std::copy(s.k.begin(), s.k.end(), in.k.begin() + 2 * kHkv * L * kD);
  std::copy(s.v.begin(), s.v.end(), in.v.begin() + 2 * kHkv * L * kD);
  const sparse::Uploaded t = sparse::upload(ctx, sh, in);
  for (const auto& [name, pattern] :
       {std::pair<std::string, Pattern>{"AShape", AShape{64, 64, true}},
        std::pair<std::string, Pattern>{"BlockSparse", BlockSparse{2}},
        std::pair<std::string, Pattern>{"VerticalSlash",
                                        VerticalSlash{.vertical = 30, .slash = 50}},
        std::pair<std::string, Pattern>{"XAttention",
                                        XAttention{.stride = 8, .threshold = 0.5f}}}) {
    const Full one = full_of(attention(ctx, q, k, v, pattern, o), L);
    expect_rows(one, 0, rows_of_result(attention(ctx, t.q, t.k, t.v, pattern, o), 2, L),
                name + ": batch of 5 at index 2 == alone");
  }
  check_quest(ctx, s);
}

TEST(BatchInvariance, SparseExplicitIndexAndPatterns) {
  Context dev = device_context(), cpu = fallback_context();
  for (Context* ctx : {&dev, &cpu}) check_sparse(*ctx, ctx == &cpu);
}

// ---- int8 and NVFP4 precisions -----------------------------------------------------------------

// attention(o) of rows [r0, r1) against keys [0, r1) of s, as contiguous copies (nvfp4 takes
// contiguous f32 only).
AttentionResult quant_rows(Context& ctx, const Seq& s, std::int64_t r0, std::int64_t r1,
                           const AttentionOptions& o) {
  return attention(
      ctx, ctx.upload(rows_of(s.q, kHq, s.len, r0, r1, kD), DType::f32, {1, kHq, r1 - r0, kD}),
      ctx.upload(rows_of(s.k, kHkv, s.len, 0, r1, kD), DType::f32, {1, kHkv, r1, kD}),
      ctx.upload(rows_of(s.v, kHkv, s.len, 0, r1, kD), DType::f32, {1, kHkv, r1, kD}), o);
}

// The sequence s at index `at` of a dense batch of `batch` sequences of its length (the others
// random) == s alone.
void expect_batch(Context& ctx, const Seq& s, int batch, int at, const AttentionOptions& o,
                  const std::string& what) {
  const std::int64_t L = s.len;
  std::vector<float> qb, kb, vb;
  for (int b = 0; b < batch; ++b) {
    const Seq x = b == at ? s : make_seq(L, 310 + 3 * b);
    qb.insert(qb.end(), x.q.begin(), x.q.end());
    kb.insert(kb.end(), x.k.begin(), x.k.end());
    vb.insert(vb.end(), x.v.begin(), x.v.end());
  }
  const auto r = attention(ctx, ctx.upload(qb, DType::f32, {batch, kHq, L, kD}),
                           ctx.upload(kb, DType::f32, {batch, kHkv, L, kD}),
                           ctx.upload(vb, DType::f32, {batch, kHkv, L, kD}), o);
  expect_rows(full_of(quant_rows(ctx, s, 0, L, o), L), 0, rows_of_result(r, at, L),
              fmt::format("{}: batch of {} at index {}", what, batch, at));
}

void check_quantized(Context& ctx, Precision p) {
  const std::string name = p == Precision::int8 ? "int8" : "nvfp4";
  SCOPED_TRACE(fmt::format("{}, {}", ctx.device().name, name));
  const std::int64_t L = 256;
  const Seq s = make_seq(L, 300);

  // Batch composition holds with every option: scales and means are per (sequence, head). (A
  // dense batch has one length: 130 tokens at batch 7, 16 at batch 64.)
  AttentionOptions o{.causal = true, .precision = p};  // default smoothing (per_block128, k_smooth)
  expect_batch(ctx, make_seq(130, 320), 7, 2, o, name);
  expect_batch(ctx, make_seq(16, 330), 64, 40, o, name);

  // Chunked prefill holds where every quantization group of the call is the one-prefill group:
  // rows in whole 128-row blocks (Q means and int8 Q scales are per 128 rows of the call), keys
  // ending on a 64-key block (int8 K scales per 64 keys, V scales per 16 tokens) and k_smooth off
  // (the mean key is over the call's keys). Probed: every other chunk, int8 decode and per_head
  // Q smoothing change bits (docs/attention.md lists why).
  o.quant = {.q_smooth = QSmooth::per_block128, .k_smooth = false};
  Full full = full_of(quant_rows(ctx, s, 0, L, o), L);
  for (std::int64_t s0 : {0, 128})
    expect_rows(full, s0, rows_of_result(quant_rows(ctx, s, s0, s0 + 128, o), 0, 128),
                fmt::format("{} chunk [{}, {})", name, s0, s0 + 128));
  if (p != Precision::nvfp4) return;

  // NVFP4 quantizes Q and K per row (groups of 16 along D) and P per row: without smoothing, any
  // chunk whose keys end on a 16-token V group boundary holds, decode of such a row included.
  o.quant = {.q_smooth = QSmooth::off, .k_smooth = false};
  full = full_of(quant_rows(ctx, s, 0, L, o), L);
  for (const auto& [r0, r1] : {std::pair<std::int64_t, std::int64_t>{0, 16},
                               {16, 80},
                               {80, 128},
                               {127, 128},
                               {128, 208},
                               {208, 256},
                               {255, 256}})
    expect_rows(full, r0, rows_of_result(quant_rows(ctx, s, r0, r1, o), 0, r1 - r0),
                fmt::format("nvfp4 (no smoothing) rows [{}, {})", r0, r1));
}

TEST(BatchInvariance, QuantizedWhereDefined) {
  Context dev = device_context(), cpu = fallback_context();
  for (Context* ctx : {&dev, &cpu})
    for (Precision p : {Precision::int8, Precision::nvfp4}) check_quantized(*ctx, p);
}

}  // namespace
}  // namespace sparq::test::attn
