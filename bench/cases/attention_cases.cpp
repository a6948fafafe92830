// Dense exact attention cases: prefill (causal or not, GQA, bf16 storage), packed varlen
// batches, decode over a paged KV cache, and merge_states.
//
// Counting (attention_anchor.py's convention, so the ratios to the anchor are time ratios):
//   flops = 4 * B * Hq * Lq * Lk * D, halved when causal (QK^T and PV, 2 flops per fma);
//   bytes = Q, K, V read once in their storage dtype + O written once in fp32 (+ LSE when
//   returned, + page table / lengths for the paged cache). Softmax arithmetic is not counted.
// Validation: small cases run the fallback on the full shape. Large prefill cases compare a
// deterministic subset: the first and last batch entry and query head, on the first and last
// 128 query rows. Rows are independent and the op defines the same bits for a token whatever
// rows are computed with it (chunked prefill), so those rows must match the fallback run on
// just that slice (Q rows r0..r1 against keys 0..Lk-Lq+r1 when causal).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "cases/case.h"

namespace sparq::bench {
namespace {

// Above this many flops the fallback validates a subset (a 16K causal prefill is ~1.1 TFLOP:
// minutes on a CPU; the subset is ~2 GFLOP).
constexpr double kFullValidationFlops = 4e9;
constexpr std::int64_t kSubsetRows = 128;

// Copies rows [r0, r1) of matrix `m` (index i of the leading dims, rows x d) into a new vector.
std::vector<float> slice_rows(const std::vector<float>& m, std::int64_t i, std::int64_t rows,
                              std::int64_t d, std::int64_t r0, std::int64_t r1) {
  auto first = m.begin() + (i * rows + r0) * d;
  return std::vector<float>(first, first + (r1 - r0) * d);
}

// ---- prefill ----------------------------------------------------------------------------------

struct PrefillShape {
  std::int64_t batch, hq, hkv, lq, lk, dim;
  bool causal;
  DType dtype;
  double flops() const { return 4.0 * batch * hq * lq * lk * dim * (causal ? 0.5 : 1.0); }
};

class PrefillInstance : public Instance {
 public:
  PrefillInstance(Context& ctx, PrefillShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    q_ = random_normal(static_cast<std::size_t>(s.batch * s.hq * s.lq * s.dim), seed * 4 + 0);
    k_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 1);
    v_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 2);
    q_dev_ = upload_as(ctx_, q_, s.dtype, {s.batch, s.hq, s.lq, s.dim});
    k_dev_ = upload_as(ctx_, k_, s.dtype, {s.batch, s.hkv, s.lk, s.dim});
    v_dev_ = upload_as(ctx_, v_, s.dtype, {s.batch, s.hkv, s.lk, s.dim});
  }

  void run() override { out_ = attention(ctx_, q_dev_, k_dev_, v_dev_, options()).out; }

  Validation validate(Context& fallback) override {
    const std::vector<float> got = out_.download<float>();
    BitComparer cmp;
    if (s_.flops() <= kFullValidationFlops) {
      auto q = upload_as(fallback, q_, s_.dtype, {s_.batch, s_.hq, s_.lq, s_.dim});
      auto k = upload_as(fallback, k_, s_.dtype, {s_.batch, s_.hkv, s_.lk, s_.dim});
      auto v = upload_as(fallback, v_, s_.dtype, {s_.batch, s_.hkv, s_.lk, s_.dim});
      cmp.compare(got, attention(fallback, q, k, v, options()).out.download<float>(), "out");
      return cmp.result("full");
    }
    const std::int64_t rows = std::min(kSubsetRows, s_.lq);
    const std::int64_t group = s_.hq / s_.hkv;
    std::vector<std::int64_t> batches{0, s_.batch - 1}, heads{0, s_.hq - 1},
        starts{0, s_.lq - rows};
    for (auto* list : {&batches, &heads, &starts})
      list->erase(std::unique(list->begin(), list->end()), list->end());
    for (std::int64_t b : batches)
      for (std::int64_t h : heads)
        for (std::int64_t r0 : starts) {
          const std::int64_t r1 = r0 + rows;
          // Causal rows r0..r1 see keys up to Lk - Lq + r1 (bottom-right alignment); the slice's
          // own alignment puts them at the same positions.
          const std::int64_t keys = s_.causal ? s_.lk - s_.lq + r1 : s_.lk;
          if (keys < 1) continue;  // rows fully masked: nothing to slice
          const std::int64_t kv_head = b * s_.hkv + h / group;
          auto q = upload_as(fallback, slice_rows(q_, b * s_.hq + h, s_.lq, s_.dim, r0, r1),
                             s_.dtype, {1, 1, rows, s_.dim});
          auto k = upload_as(fallback, slice_rows(k_, kv_head, s_.lk, s_.dim, 0, keys), s_.dtype,
                             {1, 1, keys, s_.dim});
          auto v = upload_as(fallback, slice_rows(v_, kv_head, s_.lk, s_.dim, 0, keys), s_.dtype,
                             {1, 1, keys, s_.dim});
          auto want = attention(fallback, q, k, v, options()).out.download<float>();
          cmp.compare(got.data() + ((b * s_.hq + h) * s_.lq + r0) * s_.dim, want.data(),
                      want.size(), fmt::format("out[b={}, h={}, rows {}..{}]", b, h, r0, r1 - 1));
        }
    return cmp.result(fmt::format("subset: batch {}, heads {}, query rows {}..{} and {}..{}",
                                  fmt::join(batches, ","), fmt::join(heads, ","), starts.front(),
                                  starts.front() + rows - 1, starts.back(),
                                  starts.back() + rows - 1));
  }

 private:
  AttentionOptions options() const { return {.causal = s_.causal}; }
  Context ctx_;
  PrefillShape s_;
  std::vector<float> q_, k_, v_;
  Tensor q_dev_, k_dev_, v_dev_, out_;
};

Case prefill_case(PrefillShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = "prefill";
  const std::string len =
      s.lq == s.lk ? fmt::format("L{}", s.lq) : fmt::format("Lq{}/Lk{}", s.lq, s.lk);
  c.name = fmt::format("attention/prefill {} B{} {} {} D{} {}", s.causal ? "causal" : "full",
                       s.batch, head_label(s.hq, s.hkv), len, s.dim, dtype_name(s.dtype));
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch},
              {"Hq", s.hq},
              {"Hkv", s.hkv},
              {"Lq", s.lq},
              {"Lk", s.lk},
              {"D", s.dim},
              {"causal", s.causal ? 1 : 0}};
  const double es = static_cast<double>(dtype_size(s.dtype));
  c.bytes_moved = es * (s.batch * s.hq * s.lq * s.dim + 2.0 * s.batch * s.hkv * s.lk * s.dim) +
                  4.0 * s.batch * s.hq * s.lq * s.dim;
  c.flops = s.flops();
  if (s.hq == s.hkv && s.lq == s.lk) c.anchor = AnchorKey{s.batch, s.hq, s.lq, s.dim, s.causal};
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<PrefillInstance>(ctx, s, seed); };
  return c;
}

// ---- packed variable-length batch -------------------------------------------------------------

struct VarlenShape {
  std::vector<std::int32_t> lens_q, lens_k;
  std::int64_t hq, hkv, dim;
  bool causal;
  std::int64_t total(const std::vector<std::int32_t>& lens) const {
    std::int64_t t = 0;
    for (auto l : lens) t += l;
    return t;
  }
  double flops() const {
    double f = 0;
    for (std::size_t s = 0; s < lens_q.size(); ++s)
      f += 4.0 * hq * lens_q[s] * lens_k[s] * dim * (causal ? 0.5 : 1.0);
    return f;
  }
};

std::vector<std::int32_t> cumulative(const std::vector<std::int32_t>& lens) {
  std::vector<std::int32_t> cu{0};
  for (auto l : lens) cu.push_back(cu.back() + l);
  return cu;
}

class VarlenInstance : public Instance {
 public:
  VarlenInstance(Context& ctx, VarlenShape s, std::uint64_t seed) : ctx_(ctx), s_(std::move(s)) {
    const std::int64_t tq = s_.total(s_.lens_q), tk = s_.total(s_.lens_k);
    q_ = random_normal(static_cast<std::size_t>(tq * s_.hq * s_.dim), seed * 4 + 0);
    k_ = random_normal(static_cast<std::size_t>(tk * s_.hkv * s_.dim), seed * 4 + 1);
    v_ = random_normal(static_cast<std::size_t>(tk * s_.hkv * s_.dim), seed * 4 + 2);
    dev_ = upload(ctx_);
  }

  void run() override {
    out_ =
        attention_varlen(ctx_, dev_[0], dev_[1], dev_[2], dev_[3], dev_[4], {.causal = s_.causal})
            .out;
  }

  Validation validate(Context& fallback) override {
    auto t = upload(fallback);
    BitComparer cmp;
    cmp.compare(out_.download<float>(),
                attention_varlen(fallback, t[0], t[1], t[2], t[3], t[4], {.causal = s_.causal})
                    .out.download<float>(),
                "out");
    return cmp.result("full");
  }

 private:
  std::vector<Tensor> upload(Context& ctx) const {
    const std::int64_t tq = s_.total(s_.lens_q), tk = s_.total(s_.lens_k);
    const auto cu_q = cumulative(s_.lens_q), cu_k = cumulative(s_.lens_k);
    const auto n = static_cast<std::int64_t>(cu_q.size());
    return {ctx.upload(q_, DType::f32, {tq, s_.hq, s_.dim}),
            ctx.upload(k_, DType::f32, {tk, s_.hkv, s_.dim}),
            ctx.upload(v_, DType::f32, {tk, s_.hkv, s_.dim}), ctx.upload(cu_q, DType::i32, {n}),
            ctx.upload(cu_k, DType::i32, {n})};
  }
  Context ctx_;
  VarlenShape s_;
  std::vector<float> q_, k_, v_;
  std::vector<Tensor> dev_;
  Tensor out_;
};

Case varlen_case(VarlenShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = "varlen";
  c.name =
      fmt::format("attention/varlen {} seqs{} {} D{} f32 (q lens {})", s.causal ? "causal" : "full",
                  s.lens_q.size(), head_label(s.hq, s.hkv), s.dim, fmt::join(s.lens_q, ","));
  c.size = size;
  c.seed = seed;
  c.params = {{"seqs", static_cast<std::int64_t>(s.lens_q.size())},
              {"total_q", s.total(s.lens_q)},
              {"total_k", s.total(s.lens_k)},
              {"Hq", s.hq},
              {"Hkv", s.hkv},
              {"D", s.dim},
              {"causal", s.causal ? 1 : 0}};
  c.bytes_moved =
      4.0 * (2.0 * s.total(s.lens_q) * s.hq * s.dim + 2.0 * s.total(s.lens_k) * s.hkv * s.dim) +
      8.0 * (s.lens_q.size() + 1);
  c.flops = s.flops();
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<VarlenInstance>(ctx, s, seed); };
  return c;
}

}  // namespace

std::vector<Case> attention_cases() {
  using S = SizeClass;
  std::vector<Case> cases = {
      // Small: seconds on PoCL with 2 cores; lengths off the 64-key tile grid on purpose.
      prefill_case({1, 4, 4, 512, 512, 128, true, DType::f32}, S::small, 101),
      prefill_case({2, 8, 2, 100, 700, 64, false, DType::f32}, S::small, 102),
      prefill_case({1, 4, 1, 333, 333, 128, true, DType::bf16}, S::small, 103),
      varlen_case({{1, 200, 517}, {1, 200, 900}, 4, 2, 128, true}, S::small, 104),
      // Large: the GPU sizes the issue records against PyTorch's fp32 attention.
      prefill_case({1, 32, 32, 4096, 4096, 128, true, DType::f32}, S::large, 201),
      prefill_case({1, 32, 32, 16384, 16384, 128, true, DType::f32}, S::large, 202),
      // The contiguous pair of the paged prefill cases (attention_paged_prefill_cases.cpp).
      prefill_case({1, 32, 32, 8192, 8192, 128, true, DType::f32}, S::large, 203),
  };
  for (auto& c : attention_decode_cases()) cases.push_back(std::move(c));
  for (auto& c : attention_host_cases()) cases.push_back(std::move(c));
  for (auto& c : attention_paged_prefill_cases()) cases.push_back(std::move(c));
  return cases;
}

}  // namespace sparq::bench
