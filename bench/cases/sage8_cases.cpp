// Precision::int8 attention cases (SageAttention 1/2 style, specs/fp4_attention.md §5).
//
// Counting (attention_anchor.py's convention, as attention_cases.cpp, so ratios to the anchor are
// time ratios): flops = 4 * B * Hq * Lq * Lk * D, halved when causal (QK^T and PV counted as
// 2 ops per multiply-add, whatever the precision); bytes = Q, K, V read once as fp32 + O written
// once as fp32 (the int8 intermediates are not counted: they are the op's own business).
// The timed call is the whole op: smoothing, quantizers and the attention kernel.
// The large cases use SageAttention2's int8 default (K smoothing on, Q smoothing off); the small
// ones also cover per-block Q smoothing.
// Validation: small cases run the fallback on the full shape. Large cases compare a subset: the
// first and last query head, query rows 0..127 and the last 128. Each is checked as: the
// fallback quantizes that head alone (quantization is per head), the packed tensors are sliced
// to those rows and the keys they can see (multiples of 64 / 128, so every scale block stays
// whole and the causal alignment is the same), and sage8_attention_packed runs on the slice.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "cases/case.h"
#include "sparq/int8_attention.h"

namespace sparq::bench {
namespace {

constexpr double kFullValidationFlops = 4e9;
constexpr std::int64_t kRows = 128;

struct Sage8Shape {
  std::int64_t batch, hq, hkv, lq, lk, dim;
  bool causal;
  QSmooth qs;
  double flops() const { return 4.0 * batch * hq * lq * lk * dim * (causal ? 0.5 : 1.0); }
};

std::vector<float> rows_of(const std::vector<float>& m, std::int64_t i, std::int64_t rows,
                           std::int64_t d) {
  auto first = m.begin() + i * rows * d;
  return std::vector<float>(first, first + rows * d);
}

template <class T>
std::vector<T> slice2(const std::vector<T>& m, std::int64_t outer, std::int64_t inner,
                      std::int64_t c0, std::int64_t c1) {
  std::vector<T> out;
  for (std::int64_t o = 0; o < outer; ++o)
    out.insert(out.end(), m.begin() + o * inner + c0, m.begin() + o * inner + c1);
  return out;
}

class Sage8Instance : public Instance {
 public:
  Sage8Instance(Context& ctx, Sage8Shape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    q_ = random_normal(static_cast<std::size_t>(s.batch * s.hq * s.lq * s.dim), seed * 4 + 0);
    k_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 1);
    v_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 2);
    q_dev_ = ctx_.upload(q_, DType::f32, {s.batch, s.hq, s.lq, s.dim});
    k_dev_ = ctx_.upload(k_, DType::f32, {s.batch, s.hkv, s.lk, s.dim});
    v_dev_ = ctx_.upload(v_, DType::f32, {s.batch, s.hkv, s.lk, s.dim});
  }

  void run() override { out_ = attention(ctx_, q_dev_, k_dev_, v_dev_, options()).out; }

  Validation validate(Context& fb) override {
    const std::vector<float> got = out_.download<float>();
    BitComparer cmp;
    if (s_.flops() <= kFullValidationFlops) {
      auto q = fb.upload(q_, DType::f32, {s_.batch, s_.hq, s_.lq, s_.dim});
      auto k = fb.upload(k_, DType::f32, {s_.batch, s_.hkv, s_.lk, s_.dim});
      auto v = fb.upload(v_, DType::f32, {s_.batch, s_.hkv, s_.lk, s_.dim});
      cmp.compare(got, attention(fb, q, k, v, options()).out.download<float>(), "out");
      return cmp.result("full");
    }
    const std::int64_t d = s_.dim, group = s_.hq / s_.hkv, lk64 = (s_.lk + 63) / 64 * 64;
    std::vector<std::int64_t> heads{0, s_.hq - 1}, starts{0, (s_.lq - 1) / kRows * kRows};
    for (auto* list : {&heads, &starts})
      list->erase(std::unique(list->begin(), list->end()), list->end());
    for (std::int64_t h : heads) {
      const std::int64_t hk = h / group;
      const Sage8Packed p = sage8_quantize(
          fb, fb.upload(rows_of(q_, h, s_.lq, d), DType::f32, {1, 1, s_.lq, d}),
          fb.upload(rows_of(k_, hk, s_.lk, d), DType::f32, {1, 1, s_.lk, d}),
          fb.upload(rows_of(v_, hk, s_.lk, d), DType::f32, {1, 1, s_.lk, d}), options());
      const auto q8 = p.q.codes.download<std::int8_t>(), k8 = p.k.codes.download<std::int8_t>(),
                 v8 = p.v.codes.download<std::int8_t>();
      const auto sq = p.q.scales.download<float>(), sk = p.k.scales.download<float>(),
                 sv = p.v.scales.download<float>();
      for (std::int64_t r0 : starts) {
        const std::int64_t r1 = std::min(s_.lq, r0 + kRows);
        const std::int64_t keys = s_.causal ? std::min(s_.lk, s_.lk - s_.lq + r1) : s_.lk;
        if (keys < 1) continue;
        const std::int64_t k64 = (keys + 63) / 64 * 64;
        Sage8Packed sl;
        const std::vector<std::int8_t> qs(q8.begin() + r0 * d, q8.begin() + r1 * d);
        sl.q.codes = fb.upload(qs, DType::i8, {1, 1, r1 - r0, d});
        sl.q.scales = fb.upload(std::vector<float>{sq[r0 / 128]}, DType::f32, {1, 1, 1});
        const std::vector<std::int8_t> ks(k8.begin(), k8.begin() + keys * d);
        sl.k.codes = fb.upload(ks, DType::i8, {1, 1, keys, d});
        const std::vector<float> sks(sk.begin(), sk.begin() + k64 / 64);
        sl.k.scales = fb.upload(sks, DType::f32, {1, 1, k64 / 64});
        auto vs = slice2(v8, d, lk64, 0, k64);
        for (std::int64_t e = 0; e < d; ++e)  // codes past `keys` are 0 in a packed tensor
          std::fill(vs.begin() + e * k64 + keys, vs.begin() + (e + 1) * k64, std::int8_t{0});
        sl.v.codes = fb.upload(vs, DType::i8, {1, 1, d, k64});
        sl.v.scales =
            fb.upload(slice2(sv, d, lk64 / 16, 0, k64 / 16), DType::f32, {1, 1, d, k64 / 16});
        if (p.delta.defined()) {  // per-block Q smoothing: delta row of block r0 / 128
          const auto dl = p.delta.download<float>();
          const std::vector<float> row(dl.begin() + (r0 / 128) * s_.lk,
                                       dl.begin() + (r0 / 128) * s_.lk + keys);
          sl.delta = fb.upload(row, DType::f32, {1, 1, 1, keys});
        }
        const auto want = sage8_attention_packed(fb, sl, options()).out.download<float>();
        const std::int64_t b = 0;
        cmp.compare(got.data() + ((b * s_.hq + h) * s_.lq + r0) * d, want.data(), want.size(),
                    fmt::format("out[b=0, h={}, rows {}..{}]", h, r0, r1 - 1));
      }
    }
    return cmp.result(fmt::format("subset: batch 0, heads {}, query rows {}..{} and {}..{}",
                                  fmt::join(heads, ","), starts.front(), starts.front() + kRows - 1,
                                  starts.back(), std::min(s_.lq, starts.back() + kRows) - 1));
  }

 private:
  AttentionOptions options() const {
    return {.causal = s_.causal, .precision = Precision::int8, .quant = {s_.qs, true}};
  }
  Context ctx_;
  Sage8Shape s_;
  std::vector<float> q_, k_, v_;
  Tensor q_dev_, k_dev_, v_dev_, out_;
};

Case sage8_case(Sage8Shape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = "prefill_int8";
  const std::string len =
      s.lq == s.lk ? fmt::format("L{}", s.lq) : fmt::format("Lq{}/Lk{}", s.lq, s.lk);
  const char* qs =
      s.qs == QSmooth::off ? "" : (s.qs == QSmooth::per_head ? " qsmooth=head" : " qsmooth=block");
  c.name = fmt::format("attention/prefill int8 {} B{} {} {} D{}{}", s.causal ? "causal" : "full",
                       s.batch, head_label(s.hq, s.hkv), len, s.dim, qs);
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch},
              {"Hq", s.hq},
              {"Hkv", s.hkv},
              {"Lq", s.lq},
              {"Lk", s.lk},
              {"D", s.dim},
              {"causal", s.causal ? 1 : 0},
              {"q_smooth", static_cast<std::int64_t>(s.qs)}};
  c.bytes_moved =
      4.0 * (2.0 * s.batch * s.hq * s.lq * s.dim + 2.0 * s.batch * s.hkv * s.lk * s.dim);
  c.flops = s.flops();
  if (s.hq == s.hkv && s.lq == s.lk) c.anchor = AnchorKey{s.batch, s.hq, s.lq, s.dim, s.causal};
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<Sage8Instance>(ctx, s, seed); };
  return c;
}

}  // namespace

std::vector<Case> sage8_cases() {
  using S = SizeClass;
  const QSmooth off = QSmooth::off, blk = QSmooth::per_block128;
  return {
      // Small: seconds on PoCL with 2 cores; lengths off the tile grid, GQA, Lq != Lk.
      sage8_case({1, 4, 4, 333, 333, 128, true, off}, S::small, 301),
      sage8_case({1, 4, 2, 200, 450, 64, true, blk}, S::small, 302),
      sage8_case({2, 2, 2, 130, 70, 128, false, blk}, S::small, 303),
      // Large: issue 5's sizes, compared with PyTorch's bf16 FlashAttention-2 backend (--anchor).
      sage8_case({1, 32, 32, 4096, 4096, 128, true, off}, S::large, 401),
      sage8_case({1, 32, 32, 16384, 16384, 128, true, off}, S::large, 402),
      sage8_case({1, 32, 32, 65536, 65536, 128, true, off}, S::large, 403),
      sage8_case({1, 32, 32, 131072, 131072, 128, true, off}, S::large, 404),
      sage8_case({1, 32, 32, 16384, 16384, 128, true, blk}, S::large, 405),
  };
}

}  // namespace sparq::bench
