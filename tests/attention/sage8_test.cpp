// Precision::int8 attention (kernels_cl/attention/sage8.cl): kernel == fallback bit for bit over
// shapes, options and seeds; the staged API (sage8_quantize + sage8_attention_packed) == the one
// call; accuracy of the fallback against the float64 reference (tests/reference/attention_ref.h)
// on normal, heavy-tailed and channel-outlier inputs; NaN propagation; errors.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "attention/attention_test_util.h"
#include "reference/attention_ref.h"
#include "runtime/runtime_test_util.h"
#include "sparq/int8_attention.h"

namespace sparq::test::attn {
namespace {

struct S8Case {
  int b = 1, hq = 2, hkv = 2, d = 64;
  std::int64_t lq = 100, lk = 100;
  bool causal = false;
  QSmooth qs = QSmooth::per_block128;
  bool ks = true;
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format(
        "B={} Hq={} Hkv={} D={} Lq={} Lk={} causal={} q_smooth={} k_smooth={} seed={}", b, hq, hkv,
        d, lq, lk, causal, static_cast<int>(qs), ks, seed);
  }
  AttentionOptions options() const {
    return {.causal = causal, .precision = Precision::int8, .quant = {qs, ks}};
  }
};

struct Inputs {
  std::vector<float> q, k, v;
};
Inputs make_inputs(const S8Case& c, float k_bias = 0.0f) {
  Inputs in{random_normal(std::size_t(c.b) * c.hq * c.lq * c.d, c.seed),
            random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 1),
            random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 2)};
  for (std::size_t i = 0; i < in.k.size(); ++i) in.k[i] += (i % c.d) % 7 == 1 ? k_bias : 0.0f;
  return in;
}

void check_exact(Context& dev, Context& cpu, const S8Case& c) {
  SCOPED_TRACE(c.name());
  const Inputs in = make_inputs(c, 4.0f);
  auto q = upload_pair(dev, cpu, in.q, DType::f32, {c.b, c.hq, c.lq, c.d});
  auto k = upload_pair(dev, cpu, in.k, DType::f32, {c.b, c.hkv, c.lk, c.d});
  auto v = upload_pair(dev, cpu, in.v, DType::f32, {c.b, c.hkv, c.lk, c.d});
  expect_same(attention(dev, q.dev, k.dev, v.dev, c.options()),
              attention(cpu, q.cpu, k.cpu, v.cpu, c.options()), c.name());
}

TEST(Sage8Exact, KernelEqualsFallbackD64) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 10;
  for (const S8Case& c : {
           S8Case{},
           S8Case{.causal = true},
           S8Case{.hq = 4, .hkv = 1, .lq = 70, .lk = 200, .causal = true},  // GQA, Lq < Lk
           S8Case{.lq = 200, .lk = 70, .causal = true},                     // Lq > Lk: empty rows
           S8Case{.b = 2, .lq = 260, .lk = 130, .qs = QSmooth::per_head},
           S8Case{.lq = 129, .lk = 1, .qs = QSmooth::off, .ks = false},
           S8Case{.lq = 1, .lk = 65, .causal = true},
       }) {
    S8Case x = c;
    x.seed = seed++;
    check_exact(dev, cpu, x);
  }
}

TEST(Sage8Exact, KernelEqualsFallbackD128) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 40;
  for (const S8Case& c : {
           S8Case{.d = 128, .lq = 150, .lk = 150, .causal = true},
           S8Case{.hq = 4, .hkv = 2, .d = 128, .lq = 64, .lk = 300},
           S8Case{.d = 128, .lq = 300, .lk = 190, .causal = true, .qs = QSmooth::off},
       }) {
    S8Case x = c;
    x.seed = seed++;
    check_exact(dev, cpu, x);
  }
}

// The MMA path's fragment indexing, with each mma.sync emulated in local memory (the GPU run of
// the same tests covers the real instructions): same bits as the fallback.
TEST(Sage8Exact, MmaPathEmulated) {
  const ScopedEnv mma("SPARQ_SAGE8_MMA", "emulate");
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 70;
  // the default, and the other knob value; decode=0: Lq <= 127 stays on this kernel too
  for (const char* rows : {"rows=128,decode=0", "rows=64,decode=0"}) {
    const ScopedEnv tune("SPARQ_TUNE_SAGE8", rows);
    for (const S8Case& c : {
             S8Case{.hq = 4, .hkv = 2, .d = 128, .lq = 200, .lk = 150, .causal = true},
             S8Case{.d = 128, .lq = 70, .lk = 130, .qs = QSmooth::per_head},
         }) {
      S8Case x = c;
      x.seed = seed++;
      SCOPED_TRACE(rows);
      check_exact(dev, cpu, x);
    }
  }
}

// attention() with Lq <= 127 runs the decode kernel (sage8_decode.cl; its fallback on the CPU):
// the same bits as the prefill kernel (SPARQ_TUNE_SAGE8=decode=0), past one 4096-key chunk too,
// on the device and on the fallback; GQA, causal, per-block Q smoothing.
TEST(Sage8Exact, ShortQueriesRoutedToDecodeKeepBits) {
  Context dev = device_context(), cpu = fallback_context();
  const S8Case c{.hq = 2, .hkv = 1, .lq = 20, .lk = 4200, .causal = true, .seed = 80};
  const Inputs in = make_inputs(c, 4.0f);
  for (Context* ctx : {&dev, &cpu}) {
    const Tensor q = ctx->upload(in.q, DType::f32, {c.b, c.hq, c.lq, c.d});
    const Tensor k = ctx->upload(in.k, DType::f32, {c.b, c.hkv, c.lk, c.d});
    const Tensor v = ctx->upload(in.v, DType::f32, {c.b, c.hkv, c.lk, c.d});
    const AttentionResult routed = attention(*ctx, q, k, v, c.options());
    const ScopedEnv off("SPARQ_TUNE_SAGE8", "decode=0");
    expect_same(routed, attention(*ctx, q, k, v, c.options()), c.name());
  }
}

// The staged API gives the one call's bits (same quantizers, same kernel).
TEST(Sage8Exact, PackedEqualsFused) {
  Context ctx = device_context();
  const S8Case c{.hq = 4, .hkv = 2, .lq = 140, .lk = 90, .causal = true};
  const Inputs in = make_inputs(c);
  auto q = ctx.upload(in.q, DType::f32, {c.b, c.hq, c.lq, c.d});
  auto k = ctx.upload(in.k, DType::f32, {c.b, c.hkv, c.lk, c.d});
  auto v = ctx.upload(in.v, DType::f32, {c.b, c.hkv, c.lk, c.d});
  const auto fused = attention(ctx, q, k, v, c.options()).out.download<float>();
  const auto packed =
      sage8_attention_packed(ctx, sage8_quantize(ctx, q, k, v, c.options()), c.options())
          .out.download<float>();
  EXPECT_EQ(compare_bits(packed, fused), "");
}

// Accuracy of the definition (fallback) against float64 exact attention.
struct Accuracy {
  double cosine = 0, rel_l1 = 0, max_abs = 0;
};
Accuracy accuracy(const std::vector<float>& got, const std::vector<double>& want) {
  double dot = 0, n1 = 0, n2 = 0, l1 = 0, l1w = 0;
  Accuracy a;
  for (std::size_t i = 0; i < got.size(); ++i) {
    dot += got[i] * want[i];
    n1 += double{got[i]} * got[i];
    n2 += want[i] * want[i];
    l1 += std::abs(got[i] - want[i]);
    l1w += std::abs(want[i]);
    a.max_abs = std::max(a.max_abs, std::abs(got[i] - want[i]));
  }
  a.cosine = dot / std::sqrt(n1 * n2);
  a.rel_l1 = l1 / l1w;
  return a;
}

enum class Dist { normal, heavy_tailed, channel_outlier };

Accuracy run_accuracy(Dist dist, QSmooth qs, bool ks, bool causal) {
  Context cpu = fallback_context();
  const S8Case c{.hq = 2, .hkv = 2, .d = 128, .lq = 1024, .lk = 1024, .causal = causal, .seed = 77};
  Inputs in = make_inputs(c);
  if (dist == Dist::heavy_tailed) {  // Student-t with 3 degrees of freedom (Q, K, V)
    std::mt19937_64 rng(5);
    std::student_t_distribution<float> t3(3.0f);
    for (auto* x : {&in.q, &in.k, &in.v})
      for (auto& e : *x) e = t3(rng);
  }
  if (dist == Dist::channel_outlier)  // a large per-channel K bias (what K smoothing removes)
    for (std::size_t i = 0; i < in.k.size(); ++i) in.k[i] += (i % c.d) % 16 == 5 ? 30.0f : 1.0f;
  const auto ref = ref::attention(in.q, in.k, in.v, {c.b, c.hq, c.hkv, c.d, c.lq, c.lk}, causal);
  AttentionOptions o = c.options();
  o.quant = {qs, ks};
  const auto got = attention(cpu, cpu.upload(in.q, DType::f32, {c.b, c.hq, c.lq, c.d}),
                             cpu.upload(in.k, DType::f32, {c.b, c.hkv, c.lk, c.d}),
                             cpu.upload(in.v, DType::f32, {c.b, c.hkv, c.lk, c.d}), o)
                       .out.download<float>();
  return accuracy(got, ref.out);
}

TEST(Sage8Accuracy, AgainstFloat64Reference) {
  struct Row {
    const char* what;
    Dist dist;
    QSmooth qs;
    bool ks, causal;
    double min_cosine;
  };
  const Row rows[] = {
      {"normal, causal", Dist::normal, QSmooth::per_block128, true, true, 0.999},
      {"normal, full", Dist::normal, QSmooth::per_block128, true, false, 0.999},
      {"normal, no smoothing", Dist::normal, QSmooth::off, false, true, 0.999},
      {"heavy-tailed t3", Dist::heavy_tailed, QSmooth::per_block128, true, true, 0.99},
      {"channel outlier K, smoothed", Dist::channel_outlier, QSmooth::per_block128, true, true,
       0.999},
      {"channel outlier K, no smoothing", Dist::channel_outlier, QSmooth::off, false, true, 0.0},
  };
  for (const Row& r : rows) {
    const Accuracy a = run_accuracy(r.dist, r.qs, r.ks, r.causal);
    std::printf("[sage8 accuracy] %-34s cosine %.6f  rel-L1 %.5f  max abs %.5f\n", r.what, a.cosine,
                a.rel_l1, a.max_abs);
    EXPECT_GE(a.cosine, r.min_cosine) << r.what;
  }
}

// NaN reaches the rows whose quantization group holds it and no other row.
TEST(Sage8Exact, NanPropagation) {
  Context dev = device_context(), cpu = fallback_context();
  const S8Case c{.d = 64, .lq = 256, .lk = 256, .causal = true, .qs = QSmooth::off, .ks = false};
  Inputs in = make_inputs(c);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  in.q[(std::size_t(0) * c.lq + 200) * c.d + 7] = nan;  // head 0, row 200: Q block 1 (128..255)
  in.v[(std::size_t(1) * c.lk + 100) * c.d + 3] = nan;  // head 1, key 100, channel 3
  AttentionResult out[2];
  int n = 0;
  for (Context* ctx : {&dev, &cpu}) {
    out[n++] = attention(*ctx, ctx->upload(in.q, DType::f32, {c.b, c.hq, c.lq, c.d}),
                         ctx->upload(in.k, DType::f32, {c.b, c.hkv, c.lk, c.d}),
                         ctx->upload(in.v, DType::f32, {c.b, c.hkv, c.lk, c.d}), c.options());
  }
  expect_same(out[0], out[1], c.name());
  const auto o = out[1].out.download<float>();
  auto row_has_nan = [&](int h, std::int64_t i) {
    for (int e = 0; e < c.d; ++e)
      if (std::isnan(o[(h * c.lq + i) * c.d + e])) return true;
    return false;
  };
  for (std::int64_t i = 0; i < c.lq; ++i) {
    EXPECT_EQ(row_has_nan(0, i), i >= 128) << "head 0 row " << i;  // the Q block's scale is NaN
    // head 1: V group 96..111 of channel 3 has a NaN scale; rows that see key 96 or later
    // give that group weight. Only channel 3 is affected.
    EXPECT_EQ(row_has_nan(1, i), i >= 96) << "head 1 row " << i;
  }
}

TEST(Sage8Errors, BadInputs) {
  Context ctx = fallback_context();
  auto t = [&](std::int64_t l, std::int64_t d) {
    return ctx.upload(std::vector<float>(std::size_t(2 * l * d), 0.5f), DType::f32, {1, 2, l, d});
  };
  const AttentionOptions o{.precision = Precision::int8};
  auto code_of = [&](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::internal;  // no error
  };
  // D > 128 is refused (D < 128 runs zero-padded: HeadDimPad tests)
  EXPECT_EQ(code_of([&] { attention(ctx, t(8, 200), t(8, 200), t(8, 200), o); }),
            ErrorCode::unsupported);
  AttentionOptions lse = o;
  lse.return_lse = true;
  EXPECT_EQ(code_of([&] { attention(ctx, t(8, 64), t(8, 64), t(8, 64), lse); }),
            ErrorCode::unsupported);
  AttentionOptions f16 = o;
  f16.out_dtype = DType::f16;
  EXPECT_EQ(code_of([&] { attention(ctx, t(8, 64), t(8, 64), t(8, 64), f16); }),
            ErrorCode::unsupported);
  AttentionOptions bad = o;
  bad.quant.q_smooth = static_cast<QSmooth>(7);
  EXPECT_EQ(code_of([&] { attention(ctx, t(8, 64), t(8, 64), t(8, 64), bad); }),
            ErrorCode::invalid_argument);
  AttentionOptions neg = o;
  neg.scale = -1.0f;
  EXPECT_EQ(code_of([&] { attention(ctx, t(8, 64), t(8, 64), t(8, 64), neg); }),
            ErrorCode::invalid_argument);
  EXPECT_FALSE(supports_attention(ctx, t(8, 200).desc(), t(8, 200).desc(), t(8, 200).desc(), o).ok);
  EXPECT_TRUE(supports_attention(ctx, t(8, 96).desc(), t(8, 96).desc(), t(8, 96).desc(), o).ok);
  EXPECT_TRUE(supports_attention(ctx, t(8, 64).desc(), t(8, 64).desc(), t(8, 64).desc(), o).ok);
  // Packed inputs of the wrong shape or dtype.
  Sage8Packed p = sage8_quantize(ctx, t(8, 64), t(8, 64), t(8, 64), o);
  Sage8Packed wrong = p;
  wrong.v.scales = ctx.upload(std::vector<float>(3, 1.0f), DType::f32, {3});
  EXPECT_EQ(code_of([&] { sage8_attention_packed(ctx, wrong, o); }), ErrorCode::shape_mismatch);
  wrong = p;
  wrong.delta = ctx.upload(std::vector<float>(2 * 2 * 8, 1.0f), DType::f32, {1, 2, 2, 8});
  EXPECT_EQ(code_of([&] { sage8_attention_packed(ctx, wrong, o); }), ErrorCode::shape_mismatch);
  wrong = p;
  wrong.k.codes = ctx.upload(std::vector<float>(2 * 8 * 64, 1.0f), DType::f32, {1, 2, 8, 64});
  EXPECT_EQ(code_of([&] { sage8_attention_packed(ctx, wrong, o); }), ErrorCode::shape_mismatch);
  EXPECT_NO_THROW(sage8_attention_packed(ctx, p, o));
}

}  // namespace
}  // namespace sparq::test::attn
