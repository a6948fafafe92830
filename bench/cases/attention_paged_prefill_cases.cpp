// Prefill over a paged KV cache (attention_paged with many query rows: dense.cl's paged mode), the
// pair of a contiguous prefill case of the same shape ("attention/prefill causal B1 H32 L8192
// D128 f32"), so issue 8's goal "paged prefill within 1.1x of contiguous" reads off two rows.
//
// Counting: as the contiguous prefill (attention_cases.cpp): flops = 4 * Hq * Lq * Lk * D, halved
// when causal; bytes = Q + K + V in their storage (int8 pages: codes + one fp32 scale per row) +
// O in fp32 + the page table. Validation: small cases run the paged fallback on the full shape;
// large cases compare the first and last query head on the first and last 128 rows with the
// CONTIGUOUS fallback over the same values (int8: code * scale) sliced to those rows, so a GPU
// run also checks paged == contiguous bit for bit.
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "cases/case.h"

namespace sparq::bench {
namespace {

constexpr double kFullValidationFlops = 4e9;
constexpr std::int64_t kSubsetRows = 128;

struct PagedPrefillShape {
  std::int64_t hq, hkv, lq, lk, dim, page_size;
  PageLayout layout;
  DType storage;  // f32, or i8 (codes and per-row scales)
  std::int64_t pages() const { return (lk + page_size - 1) / page_size; }
  double flops() const { return 4.0 * hq * lq * lk * dim * 0.5; }  // causal
};

class PagedPrefillInstance : public Instance {
 public:
  PagedPrefillInstance(Context& ctx, PagedPrefillShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    const auto rows = static_cast<std::size_t>(s.hkv * s.lk);
    const auto elems = rows * static_cast<std::size_t>(s.dim);
    q_ = random_normal(static_cast<std::size_t>(s.hq * s.lq * s.dim), seed * 4);
    if (s.storage == DType::i8) {  // values = code * scale, exactly what the pages mean
      std::mt19937_64 rng(seed * 4 + 1);
      for (auto* x : {&k8_, &v8_}) {
        x->resize(elems);
        for (auto& c : *x) c = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
      }
      ks_ = random_normal(rows, seed * 4 + 2, 0.002f);
      vs_ = random_normal(rows, seed * 4 + 3, 0.002f);
      for (auto* sc : {&ks_, &vs_})
        for (auto& x : *sc) x = 0.024f + std::fabs(x);
      k_.resize(elems);
      v_.resize(elems);
      for (std::size_t i = 0; i < elems; ++i) {
        k_[i] = static_cast<float>(k8_[i]) * ks_[i / s.dim];
        v_[i] = static_cast<float>(v8_[i]) * vs_[i / s.dim];
      }
    } else {
      k_ = random_normal(elems, seed * 4 + 1);
      v_ = random_normal(elems, seed * 4 + 2);
    }
    // Pages in a shuffled order (Fisher-Yates written out: std::shuffle is implementation-defined).
    table_.resize(static_cast<std::size_t>(s.pages()));
    std::iota(table_.begin(), table_.end(), 0);
    std::mt19937_64 rng(seed * 4 + 3);
    for (std::size_t i = table_.size(); i > 1; --i) std::swap(table_[i - 1], table_[rng() % i]);
    q_dev_ = ctx_.upload(q_, DType::f32, {1, s.hq, s.lq, s.dim});
    kv_dev_ = upload_cache(ctx_);
  }

  void run() override { out_ = attention_paged(ctx_, q_dev_, kv_dev_, {.causal = true}).out; }

  Validation validate(Context& fallback) override {
    const std::vector<float> got = out_.download<float>();
    BitComparer cmp;
    if (s_.flops() <= kFullValidationFlops) {
      auto q = fallback.upload(q_, DType::f32, {1, s_.hq, s_.lq, s_.dim});
      cmp.compare(got,
                  attention_paged(fallback, q, upload_cache(fallback), {.causal = true})
                      .out.download<float>(),
                  "out");
      return cmp.result("full");
    }
    const std::int64_t rows = std::min(kSubsetRows, s_.lq), d = s_.dim;
    std::vector<std::int64_t> heads{0, s_.hq - 1}, starts{0, s_.lq - rows};
    for (auto* list : {&heads, &starts})
      list->erase(std::unique(list->begin(), list->end()), list->end());
    for (std::int64_t h : heads)
      for (std::int64_t r0 : starts) {
        const std::int64_t keys = s_.lk - s_.lq + r0 + rows;  // causal, bottom-right
        if (keys < 1) continue;
        const std::int64_t hk = h / (s_.hq / s_.hkv);
        auto slice = [&](const std::vector<float>& x, std::int64_t i, std::int64_t len,
                         std::int64_t a, std::int64_t n) {
          auto first = x.begin() + (i * len + a) * d;
          return fallback.upload(std::vector<float>(first, first + n * d), DType::f32,
                                 {1, 1, n, d});
        };
        auto want =
            attention(fallback, slice(q_, h, s_.lq, r0, rows), slice(k_, hk, s_.lk, 0, keys),
                      slice(v_, hk, s_.lk, 0, keys), {.causal = true})
                .out.download<float>();
        cmp.compare(got.data() + (h * s_.lq + r0) * d, want.data(), want.size(),
                    fmt::format("out[h={}, rows {}..{}] vs contiguous", h, r0, r0 + rows - 1));
      }
    return cmp.result(
        fmt::format("subset vs contiguous fallback: heads {}, query rows {}..{} and "
                    "{}..{}",
                    fmt::join(heads, ","), starts.front(), starts.front() + rows - 1, starts.back(),
                    starts.back() + rows - 1));
  }

 private:
  // Pages from the contiguous [Hkv, Lk, D] values (codes for int8); unused tail slots zero.
  template <class T>
  std::vector<T> to_pages(const std::vector<T>& x, std::int64_t d) const {
    const bool nhd = s_.layout == PageLayout::nhd;
    const std::int64_t ps = s_.page_size;
    std::vector<T> p(static_cast<std::size_t>(s_.pages() * ps * s_.hkv * d), T{});
    for (std::int64_t h = 0; h < s_.hkv; ++h)
      for (std::int64_t j = 0; j < s_.lk; ++j) {
        const std::int64_t page = table_[j / ps], slot = j % ps;
        const std::int64_t row =
            nhd ? (page * ps + slot) * s_.hkv + h : (page * s_.hkv + h) * ps + slot;
        std::copy_n(x.begin() + (h * s_.lk + j) * d, d, p.begin() + row * d);
      }
    return p;
  }

  PagedKV upload_cache(Context& ctx) const {
    const std::int64_t n = s_.pages();
    std::vector<std::int64_t> shape =
        s_.layout == PageLayout::nhd ? std::vector<std::int64_t>{n, s_.page_size, s_.hkv, s_.dim}
                                     : std::vector<std::int64_t>{n, s_.hkv, s_.page_size, s_.dim};
    PagedKV kv;
    if (s_.storage == DType::i8) {
      kv.k_pages = ctx.upload(to_pages(k8_, s_.dim), DType::i8, shape);
      kv.v_pages = ctx.upload(to_pages(v8_, s_.dim), DType::i8, shape);
      shape.pop_back();
      kv.k_scales = ctx.upload(to_pages(ks_, 1), DType::f32, shape);
      kv.v_scales = ctx.upload(to_pages(vs_, 1), DType::f32, shape);
    } else {
      kv.k_pages = ctx.upload(to_pages(k_, s_.dim), DType::f32, shape);
      kv.v_pages = ctx.upload(to_pages(v_, s_.dim), DType::f32, shape);
    }
    kv.page_table = ctx.upload(table_, DType::i32, {1, n});
    kv.seq_lens =
        ctx.upload(std::vector<std::int32_t>{static_cast<std::int32_t>(s_.lk)}, DType::i32, {1});
    kv.page_size = static_cast<int>(s_.page_size);
    kv.layout = s_.layout;
    return kv;
  }

  Context ctx_;
  PagedPrefillShape s_;
  std::vector<float> q_, k_, v_, ks_, vs_;  // k_ / v_: the values (int8: code * scale)
  std::vector<std::int8_t> k8_, v8_;
  std::vector<std::int32_t> table_;
  Tensor q_dev_, out_;
  PagedKV kv_dev_;
};

Case paged_prefill_case(PagedPrefillShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = "prefill_paged";
  const std::string len =
      s.lq == s.lk ? fmt::format("L{}", s.lq) : fmt::format("Lq{}/Lk{}", s.lq, s.lk);
  c.name = fmt::format("attention/prefill_paged causal B1 {} {} D{} page{} {} {}",
                       head_label(s.hq, s.hkv), len, s.dim, s.page_size,
                       s.layout == PageLayout::nhd ? "nhd" : "hnd", dtype_name(s.storage));
  c.size = size;
  c.seed = seed;
  c.params = {{"B", 1},
              {"Hq", s.hq},
              {"Hkv", s.hkv},
              {"Lq", s.lq},
              {"Lk", s.lk},
              {"D", s.dim},
              {"page_size", s.page_size},
              {"causal", 1}};
  const double kv_row = s.storage == DType::i8 ? s.dim + 4.0 : 4.0 * s.dim;
  c.bytes_moved = 4.0 * 2.0 * s.hq * s.lq * s.dim + 2.0 * s.hkv * s.lk * kv_row + 4.0 * s.pages();
  c.flops = s.flops();
  c.prepare = [s, seed](Context& ctx) {
    return std::make_unique<PagedPrefillInstance>(ctx, s, seed);
  };
  return c;
}

}  // namespace

std::vector<Case> attention_paged_prefill_cases() {
  using S = SizeClass;
  const auto nhd = PageLayout::nhd, hnd = PageLayout::hnd;
  return {
      // Small: chunked prefill (Lq < Lk) off the tile grid; int8 HND pages.
      paged_prefill_case({4, 2, 100, 230, 64, 16, nhd, DType::f32}, S::small, 501),
      paged_prefill_case({2, 1, 70, 70, 128, 64, hnd, DType::i8}, S::small, 502),
      // Large: the contiguous pair is "attention/prefill causal B1 H32 L8192 D128 f32".
      paged_prefill_case({32, 32, 8192, 8192, 128, 16, nhd, DType::f32}, S::large, 601),
      paged_prefill_case({32, 32, 8192, 8192, 128, 64, nhd, DType::f32}, S::large, 602),
      paged_prefill_case({32, 32, 8192, 8192, 128, 16, nhd, DType::i8}, S::large, 603),
      paged_prefill_case({32, 32, 8192, 8192, 128, 64, hnd, DType::i8}, S::large, 604),
  };
}

}  // namespace sparq::bench
