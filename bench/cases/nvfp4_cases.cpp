// NVFP4 (SageAttention3-style) cases: the quantizers and attention with Precision::nvfp4
// (specs/fp4_attention.md; docs/fp4_attention.md).
//
// Counting:
//   quantize_rows / quantize_tokens: bytes = fp32 input read + codes (n/2) + scales (n/16)
//   written; flops = 0 (a bandwidth op).
//   attention nvfp4: flops = 4 * B * Hq * Lq * Lk * D, halved when causal (attention_anchor.py's
//   convention, so ratios to the anchor are time ratios); bytes = fp32 Q, K, V read once + fp32
//   O written once (the compulsory traffic of the fp32-in, fp32-out op).
// Validation: small cases run the fallback on the full shape. Large attention cases compare a
// deterministic subset: query heads 0 and H-1 (the fallback gets just that head's Q and its K/V
// head, whole length: the smoothing means depend on all rows), query rows 0..127 and the last
// 128, computed by the fallback for those rows only. Large quantizer cases compare in full.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "cases/case.h"
#include "context_impl.h"
#include "host/src/nvfp4/nvfp4_common.h"

namespace sparq::bench {
namespace {

constexpr double kFullValidationFlops = 4e9;
constexpr std::int64_t kSubsetRows = 128;

std::vector<std::uint8_t> packed_bytes(const Tensor& codes, const Tensor& scales) {
  std::vector<std::uint8_t> a = codes.download<std::uint8_t>();
  const std::vector<std::uint8_t> b = scales.download<std::uint8_t>();
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Validation compare_bytes(const std::vector<std::uint8_t>& got,
                         const std::vector<std::uint8_t>& want) {
  Validation v;
  v.scope = "full";
  v.values_compared = got.size();
  v.exact = got == want;
  if (!v.exact) {
    std::size_t i = 0;
    while (i < std::min(got.size(), want.size()) && got[i] == want[i]) ++i;
    v.detail =
        fmt::format("{} vs {} bytes; first difference at byte {}", got.size(), want.size(), i);
  }
  return v;
}

// ---- quantizers -------------------------------------------------------------------------------

struct QuantShape {
  std::int64_t batch, heads, len, dim;
  bool tokens;  // fp4_quantize_tokens (V layout) instead of fp4_quantize_rows
};

class QuantInstance : public Instance {
 public:
  QuantInstance(Context& ctx, QuantShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    x_ = random_normal(static_cast<std::size_t>(s.batch * s.heads * s.len * s.dim), seed);
    x_dev_ = ctx_.upload(x_, DType::f32, shape());
  }
  void run() override {
    if (s_.tokens)
      toks_ = fp4_quantize_tokens(ctx_, x_dev_);
    else
      rows_ = fp4_quantize_rows(ctx_, x_dev_);
  }
  Validation validate(Context& fallback) override {
    const Tensor x = fallback.upload(x_, DType::f32, shape());
    if (s_.tokens) {
      const Fp4PackedT want = fp4_quantize_tokens(fallback, x);
      return compare_bytes(packed_bytes(toks_.codes, toks_.scales),
                           packed_bytes(want.codes, want.scales));
    }
    const Fp4Packed want = fp4_quantize_rows(fallback, x);
    return compare_bytes(packed_bytes(rows_.codes, rows_.scales),
                         packed_bytes(want.codes, want.scales));
  }

 private:
  std::vector<std::int64_t> shape() const { return {s_.batch, s_.heads, s_.len, s_.dim}; }
  Context ctx_;
  QuantShape s_;
  std::vector<float> x_;
  Tensor x_dev_;
  Fp4Packed rows_;
  Fp4PackedT toks_;
};

Case quant_case(QuantShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "nvfp4";
  c.op = s.tokens ? "quantize_tokens" : "quantize_rows";
  c.name = fmt::format("nvfp4/{} B{} H{} L{} D{}", c.op, s.batch, s.heads, s.len, s.dim);
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch}, {"H", s.heads}, {"L", s.len}, {"D", s.dim}};
  const double n = static_cast<double>(s.batch * s.heads * s.len * s.dim);
  const double padded =
      s.tokens ? static_cast<double>(s.batch * s.heads * ((s.len + 63) / 64 * 64) * s.dim) : n;
  c.bytes_moved = 4.0 * n + padded / 2 + padded / 16;
  c.flops = 0;
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<QuantInstance>(ctx, s, seed); };
  return c;
}

// ---- attention --------------------------------------------------------------------------------

struct AttnShape {
  std::int64_t batch, hq, hkv, len, dim;
  bool causal;
  double flops() const { return 4.0 * batch * hq * len * len * dim * (causal ? 0.5 : 1.0); }
};

class AttnInstance : public Instance {
 public:
  AttnInstance(Context& ctx, AttnShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    q_ = random_normal(static_cast<std::size_t>(s.batch * s.hq * s.len * s.dim), seed * 4 + 0);
    k_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.len * s.dim), seed * 4 + 1);
    v_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.len * s.dim), seed * 4 + 2);
    q_dev_ = ctx_.upload(q_, DType::f32, {s.batch, s.hq, s.len, s.dim});
    k_dev_ = ctx_.upload(k_, DType::f32, {s.batch, s.hkv, s.len, s.dim});
    v_dev_ = ctx_.upload(v_, DType::f32, {s.batch, s.hkv, s.len, s.dim});
  }

  void run() override { out_ = attention(ctx_, q_dev_, k_dev_, v_dev_, options()).out; }

  Validation validate(Context& fallback) override {
    const std::vector<float> got = out_.download<float>();
    BitComparer cmp;
    if (s_.flops() <= kFullValidationFlops) {
      auto q = fallback.upload(q_, DType::f32, {s_.batch, s_.hq, s_.len, s_.dim});
      auto k = fallback.upload(k_, DType::f32, {s_.batch, s_.hkv, s_.len, s_.dim});
      auto v = fallback.upload(v_, DType::f32, {s_.batch, s_.hkv, s_.len, s_.dim});
      cmp.compare(got, attention(fallback, q, k, v, options()).out.download<float>(), "out");
      return cmp.result("full");
    }
    const std::int64_t rows = std::min(kSubsetRows, s_.len), L = s_.len, D = s_.dim;
    std::vector<std::int64_t> heads{0, s_.hq - 1}, starts{0, L - rows};
    for (auto* list : {&heads, &starts})
      list->erase(std::unique(list->begin(), list->end()), list->end());
    for (std::int64_t h : heads) {
      const std::int64_t kvh = h / (s_.hq / s_.hkv);
      auto slice = [&](const std::vector<float>& x, std::int64_t head) {
        return std::vector<float>(x.begin() + head * L * D, x.begin() + (head + 1) * L * D);
      };
      auto q = fallback.upload(slice(q_, h), DType::f32, {1, 1, L, D});
      auto k = fallback.upload(slice(k_, kvh), DType::f32, {1, 1, L, D});
      auto v = fallback.upload(slice(v_, kvh), DType::f32, {1, 1, L, D});
      for (std::int64_t r0 : starts) {
        std::vector<float> want;
        {
          std::lock_guard lock(fallback.impl()->mutex);
          want = nvfp4_detail::attention_nvfp4(fallback, q, k, v, options(), static_cast<int>(r0),
                                               static_cast<int>(r0 + rows))
                     .download<float>();
        }
        cmp.compare(got.data() + (h * L + r0) * D, want.data() + r0 * D,
                    static_cast<std::size_t>(rows * D),
                    fmt::format("out[h={}, rows {}..{}]", h, r0, r0 + rows - 1));
      }
    }
    return cmp.result(fmt::format("subset: batch 0, heads {}, query rows {}..{} and {}..{}",
                                  fmt::join(heads, ","), starts.front(), starts.front() + rows - 1,
                                  starts.back(), starts.back() + rows - 1));
  }

 private:
  AttentionOptions options() const { return {.causal = s_.causal, .precision = Precision::nvfp4}; }
  Context ctx_;
  AttnShape s_;
  std::vector<float> q_, k_, v_;
  Tensor q_dev_, k_dev_, v_dev_, out_;
};

Case attn_case(AttnShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "nvfp4";
  c.op = "attention";
  c.name = fmt::format("nvfp4/attention {} B{} {} L{} D{}", s.causal ? "causal" : "full", s.batch,
                       head_label(s.hq, s.hkv), s.len, s.dim);
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch}, {"Hq", s.hq}, {"Hkv", s.hkv},
              {"L", s.len},   {"D", s.dim}, {"causal", s.causal ? 1 : 0}};
  c.bytes_moved =
      4.0 * (2 * s.batch * s.hq * s.len * s.dim + 2.0 * s.batch * s.hkv * s.len * s.dim);
  c.flops = s.flops();
  if (s.hq == s.hkv) c.anchor = AnchorKey{s.batch, s.hq, s.len, s.dim, s.causal};
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<AttnInstance>(ctx, s, seed); };
  return c;
}

}  // namespace

std::vector<Case> nvfp4_cases() {
  using S = SizeClass;
  std::vector<Case> cases = {
      // Small: seconds on PoCL with 2 cores; lengths off the 64-key tile grid on purpose.
      quant_case({1, 4, 300, 128, false}, S::small, 301),
      quant_case({1, 4, 300, 128, true}, S::small, 302),
      attn_case({1, 4, 4, 320, 128, true}, S::small, 303),
      attn_case({2, 8, 2, 200, 64, false}, S::small, 304),
      // Large: issue 5's dense causal shapes (B=1, H=32, D=128).
      quant_case({1, 32, 16384, 128, false}, S::large, 401),
      quant_case({1, 32, 16384, 128, true}, S::large, 402),
  };
  for (std::int64_t L : {4096, 16384, 65536, 131072})
    cases.push_back(attn_case({1, 32, 32, L, 128, true}, S::large, 500 + L / 4096));
  return cases;
}

}  // namespace sparq::bench
