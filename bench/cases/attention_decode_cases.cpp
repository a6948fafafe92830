// Attention cases that are memory-bound: decode over a paged KV cache, and merge_states.
//
// Counting:
//   decode: flops = 4 * Hq * D * Lq * sum_b(seq_len_b) (every query row reads its sequence's
//           whole context; the causal triangle inside Lq > 1 rows is not subtracted);
//           bytes = Q + the K and V rows in use (storage dtype; int8 pages: codes + one fp32 scale
//           per row) + O (fp32) + page table + lengths.
//   merge_states: flops = 3 per output element (the multiply, the fma, the divide);
//           bytes = two fp32 partial outputs + two LSEs read, one output + one LSE written.
// Validation is always the full shape: both ops cost time linear in their inputs on the CPU.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "cases/case.h"

namespace sparq::bench {
namespace {

// ---- decode over a paged KV cache ---------------------------------------------------------

struct PagedShape {
  std::int64_t hq, hkv, dim, lq, page_size;
  PageLayout layout;
  std::vector<std::int32_t> seq_lens;
  DType storage = DType::f32;  // f32, or i8 (codes and per-row scales as kv_append writes them)
  std::int64_t batch() const { return static_cast<std::int64_t>(seq_lens.size()); }
  std::int64_t pages_of(std::int32_t len) const { return (len + page_size - 1) / page_size; }
  std::int64_t max_pages() const {
    std::int64_t m = 0;
    for (auto l : seq_lens) m = std::max(m, pages_of(l));
    return m;
  }
  std::int64_t total_pages() const {
    std::int64_t t = 0;
    for (auto l : seq_lens) t += pages_of(l);
    return t;
  }
  double total_keys() const { return std::accumulate(seq_lens.begin(), seq_lens.end(), 0.0); }
};

class PagedInstance : public Instance {
 public:
  PagedInstance(Context& ctx, PagedShape s, std::uint64_t seed) : ctx_(ctx), s_(std::move(s)) {
    const std::int64_t page_elems = s_.page_size * s_.hkv * s_.dim;
    q_ = random_normal(static_cast<std::size_t>(s_.batch() * s_.hq * s_.lq * s_.dim), seed * 4);
    const auto elems = static_cast<std::size_t>(s_.total_pages() * page_elems);
    if (s_.storage == DType::i8) {
      // Codes uniform in [-127, 127] and scales of N(0,1) rows (absmax about 3 / 127): the bytes
      // and the arithmetic of int8 pages without quantizing gigabytes on the host.
      std::mt19937_64 rng(seed * 4 + 1);
      k8_.resize(elems);
      v8_.resize(elems);
      for (auto& x : k8_) x = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
      for (auto& x : v8_) x = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
      const auto rows = elems / static_cast<std::size_t>(s_.dim);
      k_ = random_normal(rows, seed * 4 + 2, 0.002f);
      v_ = random_normal(rows, seed * 4 + 3, 0.002f);
      for (auto* sc : {&k_, &v_})
        for (auto& x : *sc) x = 0.024f + std::fabs(x);
    } else {
      k_ = random_normal(elems, seed * 4 + 1);
      v_ = random_normal(elems, seed * 4 + 2);
    }
    // Pages handed out in a shuffled order, as a serving engine's allocator ends up doing.
    // Fisher-Yates written out: std::shuffle's algorithm is implementation-defined.
    std::vector<std::int32_t> order(static_cast<std::size_t>(s_.total_pages()));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed * 4 + 3);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    table_.assign(static_cast<std::size_t>(s_.batch() * s_.max_pages()), 0);
    std::size_t next = 0;
    for (std::int64_t b = 0; b < s_.batch(); ++b)
      for (std::int64_t p = 0; p < s_.pages_of(s_.seq_lens[b]); ++p)
        table_[b * s_.max_pages() + p] = order[next++];
    q_dev_ = ctx_.upload(q_, DType::f32, {s_.batch(), s_.hq, s_.lq, s_.dim});
    kv_dev_ = upload_cache(ctx_);
  }

  void run() override { out_ = attention_paged(ctx_, q_dev_, kv_dev_, {.causal = true}).out; }

  Validation validate(Context& fallback) override {
    auto q = fallback.upload(q_, DType::f32, {s_.batch(), s_.hq, s_.lq, s_.dim});
    BitComparer cmp;
    cmp.compare(out_.download<float>(),
                attention_paged(fallback, q, upload_cache(fallback), {.causal = true})
                    .out.download<float>(),
                "out");
    return cmp.result("full");
  }

 private:
  PagedKV upload_cache(Context& ctx) const {
    const std::int64_t n = s_.total_pages();
    std::vector<std::int64_t> shape =
        s_.layout == PageLayout::nhd ? std::vector<std::int64_t>{n, s_.page_size, s_.hkv, s_.dim}
                                     : std::vector<std::int64_t>{n, s_.hkv, s_.page_size, s_.dim};
    PagedKV kv;
    if (s_.storage == DType::i8) {
      kv.k_pages = ctx.upload(k8_, DType::i8, shape);
      kv.v_pages = ctx.upload(v8_, DType::i8, shape);
      shape.pop_back();
      kv.k_scales = ctx.upload(k_, DType::f32, shape);
      kv.v_scales = ctx.upload(v_, DType::f32, shape);
    } else {
      kv.k_pages = ctx.upload(k_, DType::f32, shape);
      kv.v_pages = ctx.upload(v_, DType::f32, shape);
    }
    kv.page_table = ctx.upload(table_, DType::i32, {s_.batch(), s_.max_pages()});
    kv.seq_lens = ctx.upload(s_.seq_lens, DType::i32, {s_.batch()});
    kv.page_size = static_cast<int>(s_.page_size);
    kv.layout = s_.layout;
    return kv;
  }
  Context ctx_;
  PagedShape s_;
  std::vector<float> q_, k_, v_;  // int8 pages: k_ / v_ are the per-row scales
  std::vector<std::int8_t> k8_, v8_;
  std::vector<std::int32_t> table_;
  Tensor q_dev_, out_;
  PagedKV kv_dev_;
};

Case paged_case(PagedShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = "decode_paged";
  // Few contexts are listed; a serving batch is summarized by its range and total.
  const auto [shortest, longest] = std::minmax_element(s.seq_lens.begin(), s.seq_lens.end());
  const std::string contexts =
      s.seq_lens.size() <= 4
          ? fmt::format("ctx {}", fmt::join(s.seq_lens, ","))
          : fmt::format("ctx {}..{}, {} keys", *shortest, *longest, s.total_keys());
  c.name =
      fmt::format("attention/decode_paged B{} {} Lq{} D{} page{} {} {} ({})", s.batch(),
                  head_label(s.hq, s.hkv), s.lq, s.dim, s.page_size,
                  s.layout == PageLayout::nhd ? "nhd" : "hnd", dtype_name(s.storage), contexts);
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch()},
              {"Hq", s.hq},
              {"Hkv", s.hkv},
              {"Lq", s.lq},
              {"D", s.dim},
              {"page_size", s.page_size},
              {"total_keys", static_cast<std::int64_t>(s.total_keys())}};
  const double kv_row_bytes =
      s.storage == DType::i8 ? static_cast<double>(s.dim) + 4.0 : 4.0 * static_cast<double>(s.dim);
  c.bytes_moved = 4.0 * (2.0 * s.batch() * s.hq * s.lq * s.dim) +
                  2.0 * s.total_keys() * s.hkv * kv_row_bytes +
                  4.0 * (static_cast<double>(s.total_pages()) + s.batch());
  c.flops = 4.0 * s.hq * s.dim * s.lq * s.total_keys();
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<PagedInstance>(ctx, s, seed); };
  return c;
}

// ---- merge_states -------------------------------------------------------------------------

struct MergeShape {
  std::int64_t batch, heads, rows, dim;
  std::int64_t states() const { return batch * heads * rows; }
};

class MergeInstance : public Instance {
 public:
  MergeInstance(Context& ctx, MergeShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    const auto n = static_cast<std::size_t>(s.states());
    out_a_ = random_normal(n * static_cast<std::size_t>(s.dim), seed * 4);
    out_b_ = random_normal(n * static_cast<std::size_t>(s.dim), seed * 4 + 1);
    lse_a_ = random_normal(n, seed * 4 + 2, 8.0f);
    lse_b_ = random_normal(n, seed * 4 + 3, 8.0f);
    // Some empty partial states (a chunk that a row could not see): the other side must come
    // back unchanged.
    constexpr float kEmpty = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < n; i += 61) lse_a_[i] = kEmpty;
    for (std::size_t i = 30; i < n; i += 67) lse_b_[i] = kEmpty;
    dev_ = upload(ctx_);
  }

  void run() override { result_ = merge_states(ctx_, dev_[0], dev_[1], dev_[2], dev_[3]); }

  Validation validate(Context& fallback) override {
    auto t = upload(fallback);
    auto want = merge_states(fallback, t[0], t[1], t[2], t[3]);
    BitComparer cmp;
    cmp.compare(result_.out.download<float>(), want.out.download<float>(), "out");
    cmp.compare(result_.lse.download<float>(), want.lse.download<float>(), "lse");
    return cmp.result("full");
  }

 private:
  std::vector<Tensor> upload(Context& ctx) const {
    const std::vector<std::int64_t> out_shape{s_.batch, s_.heads, s_.rows, s_.dim},
        lse_shape{s_.batch, s_.heads, s_.rows};
    return {ctx.upload(out_a_, DType::f32, out_shape), ctx.upload(lse_a_, DType::f32, lse_shape),
            ctx.upload(out_b_, DType::f32, out_shape), ctx.upload(lse_b_, DType::f32, lse_shape)};
  }
  Context ctx_;
  MergeShape s_;
  std::vector<float> out_a_, out_b_, lse_a_, lse_b_;
  std::vector<Tensor> dev_;
  AttentionResult result_;
};

Case merge_case(MergeShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = "merge_states";
  c.name =
      fmt::format("attention/merge_states B{} H{} L{} D{} f32", s.batch, s.heads, s.rows, s.dim);
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch}, {"H", s.heads}, {"L", s.rows}, {"D", s.dim}};
  const double n = static_cast<double>(s.states());
  c.bytes_moved = 4.0 * (3.0 * n * s.dim + 3.0 * n);
  c.flops = 3.0 * n * s.dim;
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<MergeInstance>(ctx, s, seed); };
  return c;
}

}  // namespace

std::vector<Case> attention_decode_cases() {
  using S = SizeClass;
  const auto nhd = PageLayout::nhd, hnd = PageLayout::hnd;
  return {
      // Small: one context crosses the 4096-key chunk boundary, one is shorter than a page.
      paged_case({8, 2, 128, 1, 16, nhd, {1000, 4097, 300, 2048}}, S::small, 301),
      paged_case({4, 4, 64, 2, 32, hnd, {4500, 7}}, S::small, 302),
      merge_case({1, 8, 512, 128}, S::small, 303),
      // Large: a serving-style batch of long contexts; a 16K x 32-head merge.
      paged_case({32, 8, 128, 1, 16, nhd, {32768, 30001, 24576, 16384, 12000, 8192, 4097, 2048}},
                 S::large, 401),
      merge_case({1, 32, 16384, 128}, S::large, 402),
      // Serving decode over int8 pages (issue 8's bandwidth goal: batch >= 8, context >= 32K),
      // and the same batch over f32 pages.
      paged_case({32, 8, 128, 1, 16, nhd, {131072}, DType::i8}, S::large, 403),
      paged_case({32, 8, 128, 1, 16, nhd, std::vector<std::int32_t>(8, 32768), DType::i8}, S::large,
                 404),
      paged_case({32, 8, 128, 1, 16, nhd, std::vector<std::int32_t>(8, 131072), DType::i8},
                 S::large, 405),
      paged_case({32, 8, 128, 1, 16, nhd, std::vector<std::int32_t>(32, 32768), DType::i8},
                 S::large, 406),
      paged_case({32, 8, 128, 1, 64, hnd, std::vector<std::int32_t>(8, 32768), DType::i8}, S::large,
                 407),
      paged_case({32, 8, 128, 1, 16, nhd, std::vector<std::int32_t>(8, 32768)}, S::large, 408),
      // D=256 heads (Gemma-style) over int8 pages: decode_flat's wide-row path.
      paged_case({32, 8, 256, 1, 16, nhd, std::vector<std::int32_t>(8, 32768), DType::i8}, S::large,
                 409),
      // Small: int8 pages, one context past a chunk boundary.
      paged_case({4, 2, 64, 1, 16, nhd, {4200, 100}, DType::i8}, S::small, 304),
  };
}

}  // namespace sparq::bench
