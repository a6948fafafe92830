// Quantized decode cases: sage8_decode_packed (int8) and fp4_decode_packed (NVFP4) on KV
// quantized once, the serving shape of
// issue 8 (B = 8, Hq = 32 / Hkv = 8, context 32768, D = 128, Lq = 1 / 16 / 64).
//
// Timed call: the packed attention op (sage8_attention_packed / fp4_attention_packed), which
// runs the decode kernels for Lq <= 127; SPARQ_TUNE_SAGE8=decode=0 / SPARQ_TUNE_FP4=decode=0 keep
// it on the prefill kernels, so one case A/Bs the two (the same bits: it is validated against
// the decode op's fallback either way).
// Counting. The timed call is the attention op alone (K/V were quantized when they were appended,
// Q is quantized with them here: sage8_quantize is not timed). bytes = the compulsory traffic of
// the quantized KV: K codes (Lk * D) + V codes (D * Lk64), 1 byte each, K scales (one f32 per 64
// keys) + V scales (one f32 per 16 tokens per channel), per (b, kv head); plus Q codes + Q scales
// read and O written as f32. The split workspace (chunk states, B * Hq * Lq * nchunks * (D + 1)
// floats written once and read once by merge.cl) is not counted: it is the op's own business.
// NVFP4: K and V codes are half a byte per element, plus one E4M3 byte per 16 elements (K: per
// 16 channels of a key, V: per 16 tokens of a channel); Q likewise; no smoothing (delta null).
// flops = 4 * B * Hq * Lq * Lk * D (QK^T and PV, 2 ops per multiply-add), causal rows at the end
// of the context count every key they see (Lq << Lk: taken as all Lk).
// Options: SageAttention2's int8 default for decode, K smoothing on, Q smoothing off (per-block
// Q smoothing would add a f32 delta row per query head and key, 4 * Hq bytes per key).
// Validation: small cases run the fallback on the whole call; large ones quantize batch 0's first
// KV head group alone on the fallback (every scale and mean is per (b, head), so the slice has
// the same codes) and compare its G query heads' rows.
#include <fmt/format.h>

#include "cases/case.h"
#include "sparq/int8_attention.h"
#include "sparq/nvfp4.h"

namespace sparq::bench {
namespace {

struct DecodeShape {
  std::int64_t batch, hq, hkv, lq, lk, dim;
};

std::vector<float> head_rows(const std::vector<float>& x, std::int64_t h0, std::int64_t nh,
                             std::int64_t len, std::int64_t d) {
  return std::vector<float>(x.begin() + h0 * len * d, x.begin() + (h0 + nh) * len * d);
}

AttentionOptions decode_options() {
  return {.causal = true, .precision = Precision::int8, .quant = {QSmooth::off, true}};
}

class Sage8DecodeInstance : public Instance {
 public:
  Sage8DecodeInstance(Context& ctx, DecodeShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    q_ = random_normal(static_cast<std::size_t>(s.batch * s.hq * s.lq * s.dim), seed * 4 + 0);
    k_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 1);
    v_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 2);
    packed_ = sage8_quantize(ctx_, ctx_.upload(q_, DType::f32, {s.batch, s.hq, s.lq, s.dim}),
                             ctx_.upload(k_, DType::f32, {s.batch, s.hkv, s.lk, s.dim}),
                             ctx_.upload(v_, DType::f32, {s.batch, s.hkv, s.lk, s.dim}),
                             decode_options());
  }

  void run() override { out_ = sage8_attention_packed(ctx_, packed_, decode_options()).out; }

  Validation validate(Context& fb) override {
    const std::vector<float> got = out_.download<float>();
    const bool full = s_.batch * s_.hq * s_.lq * s_.lk * s_.dim <= (std::int64_t{1} << 26);
    const std::int64_t nb = full ? s_.batch : 1, g = s_.hq / s_.hkv;
    const std::int64_t nq = full ? s_.hq : g, nk = full ? s_.hkv : 1, d = s_.dim;
    auto q = full ? q_ : head_rows(q_, 0, nq, s_.lq, d);
    auto k = full ? k_ : head_rows(k_, 0, nk, s_.lk, d);
    auto v = full ? v_ : head_rows(v_, 0, nk, s_.lk, d);
    const Sage8Packed p =
        sage8_quantize(fb, fb.upload(q, DType::f32, {nb, nq, s_.lq, d}),
                       fb.upload(k, DType::f32, {nb, nk, s_.lk, d}),
                       fb.upload(v, DType::f32, {nb, nk, s_.lk, d}), decode_options());
    const auto want = sage8_decode_packed(fb, p, decode_options()).out.download<float>();
    BitComparer cmp;
    cmp.compare(got.data(), want.data(), want.size(), "out");
    return cmp.result(full ? "full" : fmt::format("subset: batch 0, query heads 0..{}", g - 1));
  }

 private:
  Context ctx_;
  DecodeShape s_;
  std::vector<float> q_, k_, v_;
  Sage8Packed packed_;
  Tensor out_;
};

class Fp4DecodeInstance : public Instance {
 public:
  Fp4DecodeInstance(Context& ctx, DecodeShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    q_ = random_normal(static_cast<std::size_t>(s.batch * s.hq * s.lq * s.dim), seed * 4 + 0);
    k_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 1);
    v_ = random_normal(static_cast<std::size_t>(s.batch * s.hkv * s.lk * s.dim), seed * 4 + 2);
    q4_ = fp4_quantize_rows(ctx_, ctx_.upload(q_, DType::f32, {s.batch, s.hq, s.lq, s.dim}));
    k4_ = fp4_quantize_rows(ctx_, ctx_.upload(k_, DType::f32, {s.batch, s.hkv, s.lk, s.dim}));
    v4_ = fp4_quantize_tokens(ctx_, ctx_.upload(v_, DType::f32, {s.batch, s.hkv, s.lk, s.dim}));
  }

  void run() override {
    out_ = fp4_attention_packed(ctx_, q4_, k4_, v4_, nullptr, {.causal = true});
  }

  Validation validate(Context& fb) override {
    const std::vector<float> got = out_.download<float>();
    const bool full = s_.batch * s_.hq * s_.lq * s_.lk * s_.dim <= (std::int64_t{1} << 26);
    const std::int64_t nb = full ? s_.batch : 1, g = s_.hq / s_.hkv;
    const std::int64_t nq = full ? s_.hq : g, nk = full ? s_.hkv : 1, d = s_.dim;
    const Tensor want = fp4_decode_packed(
        fb,
        fp4_quantize_rows(
            fb, fb.upload(head_rows(q_, 0, nb * nq, s_.lq, d), DType::f32, {nb, nq, s_.lq, d})),
        fp4_quantize_rows(
            fb, fb.upload(head_rows(k_, 0, nb * nk, s_.lk, d), DType::f32, {nb, nk, s_.lk, d})),
        fp4_quantize_tokens(
            fb, fb.upload(head_rows(v_, 0, nb * nk, s_.lk, d), DType::f32, {nb, nk, s_.lk, d})),
        nullptr, {.causal = true});
    const auto w = want.download<float>();
    BitComparer cmp;
    cmp.compare(got.data(), w.data(), w.size(), "out");
    return cmp.result(full ? "full" : fmt::format("subset: batch 0, query heads 0..{}", g - 1));
  }

 private:
  Context ctx_;
  DecodeShape s_;
  std::vector<float> q_, k_, v_;
  Fp4Packed q4_, k4_;
  Fp4PackedT v4_;
  Tensor out_;
};

Case decode_case(bool fp4, DecodeShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "attention";
  c.op = fp4 ? "decode_nvfp4" : "decode_int8";
  c.name = fmt::format("attention/decode {} B{} {} Lq{} ctx{} D{}", fp4 ? "nvfp4" : "int8", s.batch,
                       head_label(s.hq, s.hkv), s.lq, s.lk, s.dim);
  c.size = size;
  c.seed = seed;
  c.params = {{"B", s.batch}, {"Hq", s.hq}, {"Hkv", s.hkv},
              {"Lq", s.lq},   {"Lk", s.lk}, {"D", s.dim}};
  const double lk64 = static_cast<double>((s.lk + 63) / 64 * 64);
  const double kv_heads = static_cast<double>(s.batch * s.hkv);
  const double q_rows = static_cast<double>(s.batch * s.hq * s.lq);
  if (fp4) {
    const double kv =
        kv_heads * (s.lk * s.dim * (0.5 + 1.0 / 16) + s.dim * lk64 * (0.5 + 1.0 / 16));
    c.bytes_moved = kv + q_rows * s.dim * (0.5 + 1.0 / 16 + 4.0);
  } else {
    const double kv =
        kv_heads * (s.lk * s.dim + s.dim * lk64 + 4.0 * (lk64 / 64) + 4.0 * s.dim * (lk64 / 16));
    c.bytes_moved = kv + q_rows * s.dim * (1.0 + 4.0) + 4.0 * s.batch * s.hq;
  }
  c.flops = 4.0 * q_rows * s.lk * s.dim;
  c.prepare = [fp4, s, seed](Context& ctx) -> std::unique_ptr<Instance> {
    if (fp4) return std::make_unique<Fp4DecodeInstance>(ctx, s, seed);
    return std::make_unique<Sage8DecodeInstance>(ctx, s, seed);
  };
  return c;
}

}  // namespace

std::vector<Case> qdecode_cases() {
  using S = SizeClass;
  std::vector<Case> out;
  for (bool fp4 : {false, true}) {
    const std::uint64_t seed = fp4 ? 950 : 900;
    // Small: two chunks (split + merge), GQA, a few rows.
    out.push_back(decode_case(fp4, {1, 4, 2, 3, 4200, 64}, S::small, seed + 1));
    // Large: issue 8's decode / speculative-verification shapes.
    for (std::int64_t lq : {1, 16, 64})
      out.push_back(decode_case(fp4, {8, 32, 8, lq, 32768, 128}, S::large, seed + 10 + lq));
  }
  return out;
}

}  // namespace sparq::bench
