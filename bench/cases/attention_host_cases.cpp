// Host overhead per attention call: the same decode shape issued `calls` times back to back
// (no wait between calls, as a model's layers issue them) through the one-shot op, through a
// sparq::Plan (made once, outside the timing; output tensor and workspace reused), and for paged
// decode through a plan given the tables from the host (sparq::PagedTables: no download, so no
// wait for the device), for sparse prefill over an A-shape index (built once, outside the
// timing) through attention(q, k, v, index) and a make_sparse_attention_plan plan, and for int8
// attention on packed inputs (quantized once) through sage8_attention_packed and a
// make_sage8_packed_plan plan (its own kernel object). Each case
// reports the host time of the loop of calls per call
// (Instance::host_us_per_call: validation, table downloads, allocation, kernel lookup, argument
// setting, enqueue; on the fallback the whole execution), next to the wall time per call of the
// loop plus one finish().
//
// Counting: bytes and flops of one call as attention/decode_paged and prefill count them
// (4 * Hq * D * Lq * Lk flops; Q, K, V, O in fp32; sparse prefill: as dense, an upper bound).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "cases/case.h"

namespace sparq::bench {
namespace {

// one-shot op; plan (tables downloaded by each paged run, as the one-shot op does); plan with
// the tables given from the host (PagedTables: no download, no wait).
enum class Variant { one_shot, plan, plan_host_tables };
const char* variant_name(Variant v) {
  return v == Variant::one_shot ? "one-shot" : v == Variant::plan ? "plan" : "plan+host-tables";
}

// decode: attention() on contiguous K/V, one query row; paged: attention_paged over a page pool;
// sparse: prefill of `context` rows over an A-shape index; sage8: prefill of `context` rows
// through sage8_attention_packed on inputs quantized once (make_sage8_packed_plan).
enum class Kind { decode, paged, sparse, sage8 };

struct HostShape {
  Kind kind;
  std::int64_t hq, hkv, dim, context, page_size;
  int calls;
  bool paged() const { return kind == Kind::paged; }
  std::int64_t lq() const { return kind == Kind::sparse || kind == Kind::sage8 ? context : 1; }
};

const Pattern kSparsePattern = AShape{128, 1024};

class HostInstance : public Instance {
 public:
  HostInstance(Context& ctx, HostShape s, Variant variant, std::uint64_t seed)
      : ctx_(ctx),
        s_(s),
        use_plan_(variant != Variant::one_shot),
        host_tables_(variant == Variant::plan_host_tables) {
    q_ = random_normal(static_cast<std::size_t>(s_.hq * s_.lq() * s_.dim), seed * 4);
    const std::int64_t pages = (s_.context + s_.page_size - 1) / s_.page_size;
    const std::int64_t rows = s_.paged() ? pages * s_.page_size : s_.context;
    k_ = random_normal(static_cast<std::size_t>(rows * s_.hkv * s_.dim), seed * 4 + 1);
    v_ = random_normal(k_.size(), seed * 4 + 2);
    table_.resize(static_cast<std::size_t>(pages));
    std::iota(table_.begin(), table_.end(), 0);
    context_ = static_cast<std::int32_t>(s_.context);
    upload(ctx_, q_dev_, k_dev_, v_dev_, kv_dev_);
    if (s_.kind == Kind::sparse) index_ = build_index(ctx_, q_dev_, k_dev_, kSparsePattern);
    if (s_.kind == Kind::sage8) packed_ = sage8_quantize(ctx_, q_dev_, k_dev_, v_dev_, int8());
    if (!use_plan_) return;
    if (s_.kind == Kind::sage8)
      plan_ = make_sage8_packed_plan(ctx_, packed_, options());
    else if (s_.kind == Kind::sparse)
      plan_ = make_sparse_attention_plan(ctx_, q_dev_.desc(), k_dev_.desc(), v_dev_.desc(), index_,
                                         options());
    else if (s_.paged())
      plan_ = make_attention_paged_plan(ctx_, q_dev_.desc(), kv_dev_, options());
    else
      plan_ = make_attention_plan(ctx_, q_dev_.desc(), k_dev_.desc(), v_dev_.desc(), options());
    out_ = ctx_.empty(plan_.out_desc().dtype, plan_.out_desc().shape);
  }

  void run() override {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < s_.calls; ++i) {
      if (use_plan_ && s_.kind == Kind::sage8)
        plan_.run(packed_, {.out = out_});
      else if (s_.kind == Kind::sage8)
        out_ = sage8_attention_packed(ctx_, packed_, options()).out;
      else if (use_plan_ && s_.kind == Kind::sparse)
        plan_.run_sparse(q_dev_, k_dev_, v_dev_, index_, {.out = out_});
      else if (use_plan_ && s_.paged() && host_tables_)
        plan_.run(q_dev_, kv_dev_, {.out = out_}, {&context_, table_.data()});
      else if (use_plan_ && s_.paged())
        plan_.run(q_dev_, kv_dev_, {.out = out_});
      else if (use_plan_)
        plan_.run(q_dev_, k_dev_, v_dev_, {.out = out_});
      else if (s_.kind == Kind::sparse)
        out_ = attention(ctx_, q_dev_, k_dev_, v_dev_, index_, options()).out;
      else if (s_.paged())
        out_ = attention_paged(ctx_, q_dev_, kv_dev_, options()).out;
      else
        out_ = attention(ctx_, q_dev_, k_dev_, v_dev_, options()).out;
    }
    host_ms_.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }

  std::optional<double> host_us_per_call() const override {
    if (host_ms_.empty()) return std::nullopt;
    std::vector<double> v = host_ms_;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2] * 1000.0 / s_.calls;
  }

  Validation validate(Context& fallback) override {
    Tensor q, k, v;
    PagedKV kv;
    upload(fallback, q, k, v, kv);
    Tensor want;
    if (s_.kind == Kind::sage8)
      want = sage8_attention_packed(fallback, sage8_quantize(fallback, q, k, v, int8()), options())
                 .out;
    else if (s_.kind == Kind::sparse)
      want =
          attention(fallback, q, k, v, build_index(fallback, q, k, kSparsePattern), options()).out;
    else if (s_.paged())
      want = attention_paged(fallback, q, kv, options()).out;
    else
      want = attention(fallback, q, k, v, options()).out;
    BitComparer cmp;
    cmp.compare(out_.download<float>(), want.download<float>(), "out");
    return cmp.result("full");
  }

 private:
  static AttentionOptions options() { return {.causal = true}; }
  static AttentionOptions int8() { return {.causal = true, .precision = Precision::int8}; }

  void upload(Context& ctx, Tensor& q, Tensor& k, Tensor& v, PagedKV& kv) const {
    q = ctx.upload(q_, DType::f32, {1, s_.hq, s_.lq(), s_.dim});
    if (!s_.paged()) {
      k = ctx.upload(k_, DType::f32, {1, s_.hkv, s_.context, s_.dim});
      v = ctx.upload(v_, DType::f32, {1, s_.hkv, s_.context, s_.dim});
      return;
    }
    const std::int64_t pages = (s_.context + s_.page_size - 1) / s_.page_size;
    const std::vector<std::int64_t> shape{pages, s_.page_size, s_.hkv, s_.dim};
    kv.k_pages = ctx.upload(k_, DType::f32, shape);
    kv.v_pages = ctx.upload(v_, DType::f32, shape);
    std::vector<std::int32_t> table(static_cast<std::size_t>(pages));
    std::iota(table.begin(), table.end(), 0);
    kv.page_table = ctx.upload(table, DType::i32, {1, pages});
    kv.seq_lens = ctx.upload(std::vector<std::int32_t>{static_cast<std::int32_t>(s_.context)},
                             DType::i32, {1});
    kv.page_size = static_cast<int>(s_.page_size);
  }

  Context ctx_;
  HostShape s_;
  bool use_plan_, host_tables_;
  std::vector<float> q_, k_, v_;
  std::vector<std::int32_t> table_;
  std::int32_t context_ = 0;
  Tensor q_dev_, k_dev_, v_dev_, out_;
  PagedKV kv_dev_;
  SparseIndex index_;
  Sage8Packed packed_;
  Plan plan_;
  std::vector<double> host_ms_;
};

Case host_case(HostShape s, Variant variant, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = "host_overhead";
  const char* kind = s.kind == Kind::sage8    ? "prefill_int8_packed"
                     : s.kind == Kind::sparse ? "prefill_sparse"
                     : s.paged()              ? "decode_paged"
                                              : "decode";
  c.name = fmt::format("attention/host_overhead {} B1 {} D{} ctx {}{} {} x{} {}", kind,
                       head_label(s.hq, s.hkv), s.dim, s.context,
                       s.paged() ? fmt::format(" page{}", s.page_size) : "",
                       s.kind == Kind::sage8 ? "int8" : "f32", s.calls, variant_name(variant));
  c.size = size;
  c.seed = seed;
  c.params = {{"Hq", s.hq},           {"Hkv", s.hkv},     {"D", s.dim},
              {"context", s.context}, {"calls", s.calls}, {"variant", static_cast<int>(variant)}};
  c.bytes_moved = s.calls * 4.0 * (2.0 * s.hq * s.lq() * s.dim + 2.0 * s.context * s.hkv * s.dim);
  c.flops = s.calls * 4.0 * s.hq * s.dim * s.lq() * s.context;
  c.steps_per_call = s.calls;
  c.wall_time = true;
  c.prepare = [s, variant, seed](Context& ctx) {
    return std::make_unique<HostInstance>(ctx, s, variant, seed);
  };
  return c;
}

}  // namespace

std::vector<Case> attention_host_cases() {
  using S = SizeClass;
  std::vector<Case> cases;
  const auto one = Variant::one_shot, plan = Variant::plan, host = Variant::plan_host_tables;
  // Small (one chunk; CI runs every small case, each test process compiling its kernels).
  const Kind paged = Kind::paged, decode = Kind::decode, sparse = Kind::sparse;
  for (Variant v : {one, host})
    cases.push_back(host_case({paged, 4, 2, 64, 2000, 16, 20}, v, S::small, 501));
  cases.push_back(host_case({sparse, 4, 2, 64, 256, 16, 5}, plan, S::small, 502));
  cases.push_back(host_case({Kind::sage8, 4, 2, 64, 256, 16, 5}, plan, S::small, 507));
  // Large: one decode step of a Llama-style layer at 32K context (split-KV), 60 layers.
  for (Variant v : {one, plan, host})
    cases.push_back(host_case({paged, 32, 8, 128, 32768, 16, 60}, v, S::large, 503));
  for (Variant v : {one, plan})
    cases.push_back(host_case({decode, 32, 8, 128, 32768, 16, 60}, v, S::large, 504));
  // Large: a sparse prefill chunk of 4K rows (A-shape, one index), 60 layers.
  for (Variant v : {one, plan})
    cases.push_back(host_case({sparse, 32, 8, 128, 4096, 16, 60}, v, S::large, 505));
  // Large: int8 attention of a 4K chunk on inputs quantized once, 60 layers.
  for (Variant v : {one, plan})
    cases.push_back(host_case({Kind::sage8, 32, 8, 128, 4096, 16, 60}, v, S::large, 506));
  return cases;
}

}  // namespace sparq::bench
