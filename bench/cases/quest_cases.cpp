// Quest page-sparse decode (specs/sparse_attention.md §8) and MMInference permutation copies.
//
// Counting (tokens_b = seq_len_b, pages_b = ceil(tokens_b / Pg), Hi = Hq or Hkv (kv_group),
// sel_b = min(pages_b, page_budget) pages per index head, keys_b = their valid tokens):
//   metadata (quest_init): bytes = 4*Hkv*D*sum_b tokens_b (K read) + 2*4*Hkv*D*sum_b pages_b
//       (kmin/kmax written); flops = 2*Hkv*D*sum_b tokens_b (one min and one max per element).
//   select (bounds + top-k): bytes = 4*Hq*D*B (Q) + 2*4*D*Hq*sum_b pages_b (kmin/kmax, read once
//       per query head) + 4*Hi*sum_b(max_pages) (bounds) + 4*Hi*sum_b(sel_b); flops =
//       4*D*Hq*sum_b pages_b (two products, the max, the add).
//   decode (select + kernel + merge): select's bytes + 2*4*D*Hi*sum_b keys_b (K and V of the
//       selected pages, once per index head) + 2*4*Hq*D*B (Q read again, O written);
//       flops = select's + 4*D*Hq*sum_b keys_b.
//   permute: bytes = 2*numel*esize + 4*B*L (perm); flops 0.
// Validation is always the full shape (the fallback runs the same op on the same inputs).
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "cases/case.h"

namespace sparq::bench {
namespace {

enum class QuestOp { metadata, select, decode };

const char* op_name(QuestOp op) {
  return op == QuestOp::metadata ? "quest_metadata"
                                 : (op == QuestOp::select ? "quest_select" : "quest_decode");
}

struct QuestShape {
  std::int64_t hq, hkv, dim, page_size, token_budget;
  bool kv_group;
  std::vector<std::int32_t> seq_lens;
  std::int64_t batch() const { return static_cast<std::int64_t>(seq_lens.size()); }
  std::int64_t pages_of(std::int64_t len) const { return (len + page_size - 1) / page_size; }
  std::int64_t max_pages() const {
    std::int64_t m = 1;
    for (auto l : seq_lens) m = std::max(m, pages_of(l));
    return m;
  }
  std::int64_t total_pages() const {
    std::int64_t t = 0;
    for (auto l : seq_lens) t += pages_of(l);
    return t;
  }
  std::int64_t index_heads() const { return kv_group ? hkv : hq; }
  std::int64_t page_budget() const { return std::max<std::int64_t>(token_budget / page_size, 1); }
  // Valid tokens of the pages one index head reads in sequence b (random keys: the count of
  // pages is exact; their tokens are taken as full pages except the always-kept last one).
  double selected_keys(std::int32_t len) const {
    const std::int64_t n = pages_of(len);
    if (n <= page_budget()) return len;
    return static_cast<double>((page_budget() - 1) * page_size + (len - (n - 1) * page_size));
  }
};

class QuestInstance : public Instance {
 public:
  QuestInstance(Context& ctx, QuestShape s, QuestOp op, std::uint64_t seed)
      : ctx_(ctx), s_(std::move(s)), op_(op) {
    const std::size_t pool =
        static_cast<std::size_t>(s_.total_pages() * s_.hkv * s_.page_size * s_.dim);
    k_ = random_normal(pool, seed * 4 + 1);
    v_ = random_normal(pool, seed * 4 + 2);
    q_ = random_normal(static_cast<std::size_t>(s_.batch() * s_.hq * s_.dim), seed * 4);
    std::vector<std::int32_t> order(static_cast<std::size_t>(s_.total_pages()));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed * 4 + 3);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    table_.assign(static_cast<std::size_t>(s_.batch() * s_.max_pages()), 0);
    std::size_t next = 0;
    for (std::int64_t b = 0; b < s_.batch(); ++b)
      for (std::int64_t p = 0; p < s_.pages_of(s_.seq_lens[b]); ++p)
        table_[static_cast<std::size_t>(b * s_.max_pages() + p)] = order[next++];
    opts_.page_size = static_cast<int>(s_.page_size);
    opts_.token_budget = static_cast<int>(s_.token_budget);
    opts_.sharing = s_.kv_group ? IndexSharing::kv_group : IndexSharing::per_q_head;
    dec_.layer = 2;
    kv_ = upload(ctx_);
    q_dev_ = ctx_.upload(q_, DType::f32, {s_.batch(), s_.hq, s_.dim});
    if (op_ != QuestOp::metadata) state_ = quest_init(ctx_, kv_, opts_);
  }

  void run() override {
    if (op_ == QuestOp::metadata)
      state_ = quest_init(ctx_, kv_, opts_);
    else if (op_ == QuestOp::select)
      sel_ = quest_select(ctx_, q_dev_, kv_, state_, dec_);
    else
      out_ = decode(ctx_, q_dev_, kv_, &state_, dec_).out;
  }

  Validation validate(Context& fallback) override {
    const PagedKV kv = upload(fallback);
    const Tensor q = fallback.upload(q_, DType::f32, {s_.batch(), s_.hq, s_.dim});
    const QuestState st = quest_init(fallback, kv, opts_);
    BitComparer cmp;
    if (op_ == QuestOp::metadata) {
      cmp.compare(state_.kmin.download<float>(), st.kmin.download<float>(), "kmin");
      cmp.compare(state_.kmax.download<float>(), st.kmax.download<float>(), "kmax");
    } else if (op_ == QuestOp::select) {
      const QuestSelection want = quest_select(fallback, q, kv, st, dec_);
      cmp.compare(sel_.bounds.download<float>(), want.bounds.download<float>(), "bounds");
      auto as_float = [](const Tensor& t) {
        const auto v = t.download<std::int32_t>();
        return std::vector<float>(v.begin(), v.end());
      };
      cmp.compare(as_float(sel_.pages), as_float(want.pages), "pages");
      cmp.compare(as_float(sel_.counts), as_float(want.counts), "counts");
    } else {
      cmp.compare(out_.download<float>(), decode(fallback, q, kv, &st, dec_).out.download<float>(),
                  "out");
    }
    return cmp.result("full");
  }

 private:
  PagedKV upload(Context& ctx) const {
    PagedKV kv;
    const std::vector<std::int64_t> shape{s_.total_pages(), s_.hkv, s_.page_size, s_.dim};
    kv.k_pages = ctx.upload(k_, DType::f32, shape);
    kv.v_pages = ctx.upload(v_, DType::f32, shape);
    kv.page_table = ctx.upload(table_, DType::i32, {s_.batch(), s_.max_pages()});
    kv.seq_lens = ctx.upload(s_.seq_lens, DType::i32, {s_.batch()});
    kv.page_size = static_cast<int>(s_.page_size);
    kv.layout = PageLayout::hnd;
    return kv;
  }
  Context ctx_;
  QuestShape s_;
  QuestOp op_;
  std::vector<float> q_, k_, v_;
  std::vector<std::int32_t> table_;
  QuestOptions opts_;
  DecodeOptions dec_;
  PagedKV kv_;
  Tensor q_dev_, out_;
  QuestState state_;
  QuestSelection sel_;
};

Case quest_case(QuestShape s, QuestOp op, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "sparse";
  c.op = op_name(op);
  const auto [lo, hi] = std::minmax_element(s.seq_lens.begin(), s.seq_lens.end());
  const std::string ctx =
      *lo == *hi ? fmt::format("ctx {}", *hi) : fmt::format("ctx {}..{}", *lo, *hi);
  c.name = fmt::format("sparse/{} B{} {} D{} page{} budget{} {} ({})", c.op, s.batch(),
                       head_label(s.hq, s.hkv), s.dim, s.page_size, s.token_budget,
                       s.kv_group ? "kv_group" : "per_q_head", ctx);
  c.size = size;
  c.seed = seed;
  double tokens = 0, pages = static_cast<double>(s.total_pages()), keys = 0, sel_pages = 0;
  for (auto l : s.seq_lens) {
    tokens += l;
    keys += s.selected_keys(l);
    sel_pages += static_cast<double>(std::min(s.pages_of(l), s.page_budget()));
  }
  c.params = {{"B", s.batch()},
              {"Hq", s.hq},
              {"Hkv", s.hkv},
              {"D", s.dim},
              {"page_size", s.page_size},
              {"token_budget", s.token_budget},
              {"kv_group", s.kv_group},
              {"total_keys", static_cast<std::int64_t>(tokens)},
              {"selected_keys_per_head", static_cast<std::int64_t>(keys)}};
  const double hi_n = static_cast<double>(s.index_heads()), d = static_cast<double>(s.dim);
  const double select_bytes = 4.0 * s.hq * d * s.batch() + 8.0 * d * s.hq * pages +
                              4.0 * hi_n * s.batch() * s.max_pages() + 4.0 * hi_n * sel_pages;
  const double select_flops = 4.0 * d * s.hq * pages;
  if (op == QuestOp::metadata) {
    c.bytes_moved = 4.0 * s.hkv * d * tokens + 8.0 * s.hkv * d * pages;
    c.flops = 2.0 * s.hkv * d * tokens;
  } else if (op == QuestOp::select) {
    c.bytes_moved = select_bytes;
    c.flops = select_flops;
  } else {
    c.bytes_moved = select_bytes + 8.0 * d * hi_n * keys + 8.0 * s.hq * d * s.batch();
    c.flops = select_flops + 4.0 * d * s.hq * keys;
  }
  c.prepare = [s, op, seed](Context& ctx) {
    return std::make_unique<QuestInstance>(ctx, s, op, seed);
  };
  return c;
}

// ---- permutation copies -----------------------------------------------------------------------

struct PermShape {
  std::int64_t batch, heads, len, dim;
  DType dtype;
};

class PermuteInstance : public Instance {
 public:
  PermuteInstance(Context& ctx, PermShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    x_ = random_normal(static_cast<std::size_t>(s.batch * s.heads * s.len * s.dim), seed);
    // A grid permutation of a video segment covering the middle of every sequence.
    const auto one = grid_permutation(s.len, {{s.len / 8, s.len - s.len / 8, 256}});
    for (std::int64_t b = 0; b < s.batch; ++b) perm_.insert(perm_.end(), one.begin(), one.end());
    x_dev_ = upload_as(ctx_, x_, s_.dtype, {s.batch, s.heads, s.len, s.dim});
    perm_dev_ = ctx_.upload(perm_, DType::i32, {s.batch, s.len});
  }
  void run() override { out_ = permute_rows(ctx_, x_dev_, perm_dev_); }
  Validation validate(Context& fallback) override {
    const Tensor x = upload_as(fallback, x_, s_.dtype, {s_.batch, s_.heads, s_.len, s_.dim});
    const Tensor want =
        permute_rows(fallback, x, fallback.upload(perm_, DType::i32, {s_.batch, s_.len}));
    BitComparer cmp;
    auto bits = [](const Tensor& t) {  // 16-bit halves as exact floats: a bitwise comparison
      const auto v = t.download<std::uint16_t>();
      return std::vector<float>(v.begin(), v.end());
    };
    cmp.compare(bits(out_), bits(want), "out");
    return cmp.result("full");
  }

 private:
  Context ctx_;
  PermShape s_;
  std::vector<float> x_;
  std::vector<std::int32_t> perm_;
  Tensor x_dev_, perm_dev_, out_;
};

Case permute_case(PermShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "sparse";
  c.op = "permute_rows";
  c.name = fmt::format("sparse/permute_rows B{} H{} L{} D{} {} (grid, 256 tokens/frame)", s.batch,
                       s.heads, s.len, s.dim, dtype_name(s.dtype));
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch}, {"H", s.heads}, {"L", s.len}, {"D", s.dim}};
  const double numel = static_cast<double>(s.batch * s.heads * s.len * s.dim);
  c.bytes_moved = 2.0 * numel * static_cast<double>(dtype_size(s.dtype)) + 4.0 * s.batch * s.len;
  c.flops = 0;
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<PermuteInstance>(ctx, s, seed); };
  return c;
}

}  // namespace

std::vector<Case> quest_cases() {
  using S = SizeClass;
  using O = QuestOp;
  std::vector<Case> cases;
  // Small: partial last pages, one sequence under the budget (dense), GQA both ways.
  const QuestShape small_kv{8, 2, 128, 16, 256, true, {1500, 200, 777}};
  const QuestShape small_pq{4, 2, 64, 32, 256, false, {1000, 33}};
  for (const O op : {O::metadata, O::select, O::decode}) {
    cases.push_back(quest_case(small_kv, op, S::small, 501 + static_cast<int>(op)));
    if (op != O::metadata)
      cases.push_back(quest_case(small_pq, op, S::small, 511 + static_cast<int>(op)));
  }
  cases.push_back(permute_case({1, 4, 1000, 64, DType::f32}, S::small, 521));
  // Large: Hq 32 / Hkv 8, D 128, budget 2048, 32K-128K contexts, B 1..8.
  const QuestShape l1_32k{32, 8, 128, 16, 2048, true, {32768}};
  const QuestShape l1_128k{32, 8, 128, 16, 2048, true, {131072}};
  const QuestShape l8_32k{32, 8, 128, 16, 2048, true, std::vector<std::int32_t>(8, 32768)};
  const QuestShape l1_128k_pq{32, 8, 128, 16, 2048, false, {131072}};
  for (const O op : {O::metadata, O::select, O::decode})
    cases.push_back(quest_case(l1_128k, op, S::large, 601 + static_cast<int>(op)));
  for (const O op : {O::select, O::decode}) {
    cases.push_back(quest_case(l1_32k, op, S::large, 611 + static_cast<int>(op)));
    cases.push_back(quest_case(l8_32k, op, S::large, 621 + static_cast<int>(op)));
    cases.push_back(quest_case(l1_128k_pq, op, S::large, 631 + static_cast<int>(op)));
  }
  cases.push_back(permute_case({1, 32, 131072, 128, DType::bf16}, S::large, 641));
  return cases;
}

}  // namespace sparq::bench
