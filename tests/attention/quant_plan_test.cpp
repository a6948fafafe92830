// sparq::Plan of the quantized attention ops: make_attention_plan with precision int8 / nvfp4,
// make_sage8_packed_plan and make_fp4_packed_plan. Runs with new data each equal the one-shot
// op bit for bit on the device (PoCL) and the fallback, with own or caller-provided outputs;
// runs whose tensors do not match the plan are refused with sparq::Error.
#include <fmt/format.h>

#include <functional>

#include "attention_test_util.h"

namespace sparq::test::attn {
namespace {

struct Qkv {
  Tensor q, k, v;
};

// Q [1, 4, lq, d], K/V [1, 2, lk, d] with the seed's data.
Qkv random_qkv(Context& ctx, std::int64_t lq, std::int64_t lk, std::int64_t d, std::uint64_t seed) {
  const auto n = [&](std::int64_t h, std::int64_t l) {
    return static_cast<std::size_t>(h * l * d);
  };
  return {ctx.upload(random_normal(n(4, lq), seed, 2.0f), DType::f32, {1, 4, lq, d}),
          ctx.upload(random_normal(n(2, lk), seed + 1), DType::f32, {1, 2, lk, d}),
          ctx.upload(random_normal(n(2, lk), seed + 2), DType::f32, {1, 2, lk, d})};
}

// The same bytes on ctx (packed inputs are quantized on the fallback and copied, so PoCL builds
// only the attention kernels; the quantizers have their own tests).
Tensor copy_to(Context& ctx, const Tensor& t) {
  if (!t.defined()) return t;
  std::vector<std::byte> bytes(static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
  t.download_raw(bytes.data(), bytes.size());
  return ctx.upload(bytes.data(), t.dtype(), t.shape());
}

Sage8Packed sage8_packed(Context& ctx, std::uint64_t seed, const AttentionOptions& o) {
  Context cpu = fallback_context();
  const Qkv x = random_qkv(cpu, 130, 150, 64, seed);
  const Sage8Packed p = sage8_quantize(cpu, x.q, x.k, x.v, o);
  return {{copy_to(ctx, p.q.codes), copy_to(ctx, p.q.scales)},
          {copy_to(ctx, p.k.codes), copy_to(ctx, p.k.scales)},
          {copy_to(ctx, p.v.codes), copy_to(ctx, p.v.scales)},
          copy_to(ctx, p.delta)};
}

struct Fp4Inputs {
  Fp4Packed q, k;
  Fp4PackedT v;
};

Fp4Inputs fp4_packed(Context& ctx, std::uint64_t seed) {
  Context cpu = fallback_context();
  const Qkv x = random_qkv(cpu, 70, 100, 64, seed);
  const Fp4Packed q = fp4_quantize_rows(cpu, x.q), k = fp4_quantize_rows(cpu, x.k);
  const Fp4PackedT v = fp4_quantize_tokens(cpu, x.v);
  return {{copy_to(ctx, q.codes), copy_to(ctx, q.scales)},
          {copy_to(ctx, k.codes), copy_to(ctx, k.scales)},
          {copy_to(ctx, v.codes), copy_to(ctx, v.scales), v.tokens}};
}

TEST(QuantPlan, Sage8PackedRunsEqualOneShot) {
  Context dev = device_context(), cpu = fallback_context();
  for (Context* ctx : {&dev, &cpu}) {
    SCOPED_TRACE(ctx->device().name);
    // Per-block Q smoothing (delta over two 128-row blocks) and none (the fallback: the delta
    // argument is host logic); GQA, causal, Lk % 64 != 0.
    for (QSmooth qs : {QSmooth::per_block128, QSmooth::off}) {
      if (qs == QSmooth::off && ctx == &dev) continue;
      AttentionOptions o{.causal = true, .precision = Precision::int8};
      o.quant.q_smooth = qs;
      Plan plan = make_sage8_packed_plan(*ctx, sage8_packed(*ctx, 10, o), o);
      const Tensor out = ctx->empty(plan.out_desc().dtype, plan.out_desc().shape);
      for (int run = 0; run < 2; ++run) {
        const Sage8Packed p = sage8_packed(*ctx, 20 + 3 * run, o);
        const AttentionResult got = plan.run(p, {.out = run == 1 ? out : Tensor()});
        if (run == 1) {
          EXPECT_EQ(got.out.storage(), out.storage());
        }
        EXPECT_EQ(compare_bits(got.out.download<float>(),
                               sage8_attention_packed(*ctx, p, o).out.download<float>()),
                  "")
            << "run " << run;
      }
    }
  }
}

TEST(QuantPlan, Fp4PackedRunsEqualOneShot) {
  Context dev = device_context(), cpu = fallback_context();
  for (Context* ctx : {&dev, &cpu}) {
    SCOPED_TRACE(ctx->device().name);
    const AttentionOptions o{.causal = true};
    const Fp4Inputs first = fp4_packed(*ctx, 40);
    Plan plan = make_fp4_packed_plan(*ctx, first.q, first.k, first.v, nullptr, o);
    for (int run = 0; run < 2; ++run) {
      const Fp4Inputs x = fp4_packed(*ctx, 50 + 3 * run);
      EXPECT_EQ(
          compare_bits(plan.run(x.q, x.k, x.v, nullptr).out.download<float>(),
                       fp4_attention_packed(*ctx, x.q, x.k, x.v, nullptr, o).download<float>()),
          "")
          << "run " << run;
    }
    expect_error([&] { plan.run(first.q, first.k, first.v, &first.q.codes); },
                 ErrorCode::invalid_argument, {"fp4_attention_packed plan", "delta"});
    Fp4PackedT short_v = first.v;
    short_v.tokens = 99;
    expect_error([&] { plan.run(first.q, first.k, short_v, nullptr); }, ErrorCode::shape_mismatch,
                 {"v.tokens is 99"});
  }
}

// make_attention_plan with a quantized precision: the one-shot pipeline's bits, D = 64 natively
// and D = 40 zero-padded (into a caller's output), three runs queued back to back (reusing the
// plan's temporaries). The plan adds host code to the one-shot pipeline, whose device runs
// Sage8Exact / Nvfp4Pipeline test: the fallback suffices (a PoCL run would build the quantizer
// kernels in this process, ~2 s).
TEST(QuantPlan, QuantizedAttentionRunsEqualOneShot) {
  Context cpu = fallback_context();
  for (Context* ctx : {&cpu}) {
    for (Precision prec : {Precision::int8, Precision::nvfp4})
      for (std::int64_t d : {64, 40}) {
        SCOPED_TRACE(fmt::format("{} {} D{}", ctx->device().name,
                                 prec == Precision::int8 ? "int8" : "nvfp4", d));
        const AttentionOptions o{.causal = true, .precision = prec};
        const Qkv first = random_qkv(*ctx, 130, 140, d, 60);
        Plan plan = make_attention_plan(*ctx, first.q.desc(), first.k.desc(), first.v.desc(), o);
        EXPECT_GT(plan.workspace_bytes(), 0u);
        const Tensor out = ctx->empty(plan.out_desc().dtype, plan.out_desc().shape);
        std::vector<Qkv> inputs;
        std::vector<Tensor> got;
        for (int run = 0; run < 3; ++run) {  // queued back to back, compared afterwards
          inputs.push_back(random_qkv(*ctx, 130, 140, d, 70 + 3 * run));
          const Qkv& x = inputs.back();
          got.push_back(plan.run(x.q, x.k, x.v, {.out = run == 1 ? out : Tensor()}).out);
        }
        for (int run = 0; run < 3; ++run) {
          const Qkv& x = inputs[static_cast<std::size_t>(run)];
          EXPECT_EQ(compare_bits(got[static_cast<std::size_t>(run)].download<float>(),
                                 attention(*ctx, x.q, x.k, x.v, o).out.download<float>()),
                    "")
              << "run " << run;
        }
      }
  }
}

TEST(QuantPlan, MismatchedRunsAreRefused) {
  Context ctx = fallback_context();  // refusals happen before any kernel
  const auto shape = ErrorCode::shape_mismatch, arg = ErrorCode::invalid_argument;
  AttentionOptions o{.precision = Precision::int8};
  const Qkv x = random_qkv(ctx, 8, 64, 64, 90);
  const Sage8Packed p = sage8_quantize(ctx, x.q, x.k, x.v, o);
  Plan packed = make_sage8_packed_plan(ctx, p, o);
  Sage8Packed wrong = p;
  wrong.k.codes = ctx.empty(DType::u8, p.k.codes.shape());
  expect_error([&] { packed.run(wrong); }, shape,
               {"sage8_attention_packed plan", "k.codes is u8[1, 2, 64, 64]", "made for i8"});
  wrong = p;
  wrong.delta = Tensor();
  expect_error([&] { packed.run(wrong); }, arg, {"delta is missing", "made with delta"});
  wrong = p;
  wrong.q.codes = ctx.empty(DType::i8, {1, 4, 64, 64}).view({1, 4, 8, 64}, {}, 64);
  expect_error([&] { packed.run(wrong); }, shape, {"q.codes starts at element offset 64"});
  expect_error(
      [&] {
        packed.run(p, {.out = ctx.empty(DType::f32, {1, 4, 8, 32})});
      },
      shape, {"buffers.out"});
  expect_error(
      [&] {
        packed.run(p, {.lse = ctx.empty(DType::f32, {1, 4, 8})});
      },
      arg, {"return_lse"});
  expect_error([&] { packed.run(x.q, x.k, x.v); }, arg,
               {"attention plan", "made by make_sage8_packed_plan", "run(packed)"});
  expect_error([&] { packed.run_sparse(x.q, x.k, x.v, SparseIndex()); }, arg,
               {"make_sage8_packed_plan"});

  Plan quant = make_attention_plan(ctx, x.q.desc(), x.k.desc(), x.v.desc(), o);
  expect_error(
      [&] {
        quant.run(x.q, x.k, ctx.empty(DType::f16, {1, 2, 64, 64}));
      },
      shape, {"attention plan", "V is f16[1, 2, 64, 64]"});
  expect_error([&] { quant.run(p); }, arg,
               {"sage8_attention_packed plan", "make_attention_plan", "run(q, k, v)"});
  expect_error([&] { quant.run(x.q, PagedKV{}); }, arg, {"make_attention_plan"});
  o.return_lse = true;
  expect_error([&] { make_attention_plan(ctx, x.q.desc(), x.k.desc(), x.v.desc(), o); },
               ErrorCode::unsupported, {"return_lse"});
  Plan dense = make_attention_plan(ctx, x.q.desc(), x.k.desc(), x.v.desc());
  expect_error([&] { dense.run(p); }, arg, {"make_attention_plan", "run(q, k, v)"});
}

}  // namespace
}  // namespace sparq::test::attn
