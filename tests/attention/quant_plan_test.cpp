// sparq::Plan of the quantized attention ops: make_attention_plan with precision int8 / nvfp4,
// make_sage8_packed_plan and make_fp4_packed_plan. Runs with new data each equal the one-shot
// op bit for bit on the device (PoCL) and the fallback, with own or caller-provided outputs and
// workspace (every temporary of a run is a region of it, one workspace serves several plans);
// runs whose tensors or workspace do not match the plan are refused with sparq::Error.
#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "attention_test_util.h"
#include "host/src/quant/quant_ops.h"

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
  const Qkv x = random_qkv(cpu, 130, 100, 64, seed);  // Lq > 127: the prefill kernel
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
      EXPECT_EQ(plan.workspace_bytes(), 0u);  // Lq = 130: the prefill kernel, no temporaries
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

// A caller's workspace of n bytes at byte offset 4096 (a multiple of the region alignment,
// max(4096, CL_DEVICE_MEM_BASE_ADDR_ALIGN), on every device sparq knows) of a zeroed tensor with
// 4096 more bytes after it.
struct Workspace {
  Tensor all, ws;
  explicit Workspace(Context& ctx, std::uint64_t n)
      : all(ctx.upload(std::vector<std::uint8_t>(n + 8192), DType::u8,
                       {static_cast<std::int64_t>(n) + 8192})),
        ws(all.view({static_cast<std::int64_t>(n)}, {1}, 4096)) {}
  // Device runs wrote into the workspace (a run there carved its temporaries from it) and
  // nothing outside it.
  void expect_used_within() const {
    const auto bytes = all.download<std::uint8_t>();
    const auto nonzero = [&](std::size_t a, std::size_t b) {
      return std::count_if(bytes.begin() + static_cast<std::ptrdiff_t>(a),
                           bytes.begin() + static_cast<std::ptrdiff_t>(b),
                           [](std::uint8_t x) { return x != 0; });
    };
    EXPECT_EQ(nonzero(0, 4096), 0);
    EXPECT_GT(nonzero(4096, bytes.size() - 4096), 0);
    EXPECT_EQ(nonzero(bytes.size() - 4096, bytes.size()), 0);
  }
};

// Dense quantized plans on the device: runs in one caller workspace (int8 D = 64 with per-block
// Q smoothing over two 128-row blocks; nvfp4 D = 40, whose zero-padded copies are regions too;
// int8 again: queued back to back) equal runs in the plans' own workspaces and attention(), bit
// for bit; every temporary the pipelines ask for is a planned region.
TEST(QuantPlan, CallerWorkspaceEqualsOwnAndOneShot) {
  Context ctx = device_context();
  if (ctx.backend() == Backend::fallback)
    GTEST_SKIP() << "the fallback checks a workspace but does not write it; the test context has "
                    "no OpenCL device";
  const std::uint64_t unplanned = quant_detail::unplanned_scratch_requests();
  const AttentionOptions o8{.causal = true, .precision = Precision::int8};
  const AttentionOptions o4{.causal = true, .precision = Precision::nvfp4};
  const Qkv a = random_qkv(ctx, 130, 140, 64, 300), b = random_qkv(ctx, 70, 90, 40, 310);
  Plan p8 = make_attention_plan(ctx, a.q.desc(), a.k.desc(), a.v.desc(), o8);
  Plan p4 = make_attention_plan(ctx, b.q.desc(), b.k.desc(), b.v.desc(), o4);
  // At least the quantized Q/K/V codes.
  EXPECT_GE(p8.workspace_bytes(), (4u * 130 + 2u * 140) * 64 + 2u * 64 * 192);
  EXPECT_GE(p4.workspace_bytes(), 4u * 70 * 64 * 4);  // at least the padded f32 Q
  const Workspace caller(ctx, std::max(p8.workspace_bytes(), p4.workspace_bytes()));
  const Tensor& ws = caller.ws;
  const Tensor w8 = p8.run(a.q, a.k, a.v, {.workspace = ws}).out;
  const Tensor w4 = p4.run(b.q, b.k, b.v, {.workspace = ws}).out;
  const Tensor w8_again = p8.run(a.q, a.k, a.v, {.workspace = ws}).out;
  const Tensor own8 = p8.run(a.q, a.k, a.v).out, own4 = p4.run(b.q, b.k, b.v).out;
  const auto want8 = attention(ctx, a.q, a.k, a.v, o8).out.download<float>();
  const auto want4 = attention(ctx, b.q, b.k, b.v, o4).out.download<float>();
  EXPECT_EQ(compare_bits(w8.download<float>(), want8), "");
  EXPECT_EQ(compare_bits(w8_again.download<float>(), want8), "");
  EXPECT_EQ(compare_bits(own8.download<float>(), want8), "");
  EXPECT_EQ(compare_bits(w4.download<float>(), want4), "");
  EXPECT_EQ(compare_bits(own4.download<float>(), want4), "");
  EXPECT_EQ(quant_detail::unplanned_scratch_requests(), unplanned);
  caller.expect_used_within();
}

// Packed plans of short query blocks (Lq = 5 <= 127) over Lk = 4200 > 4096 keys run the decode
// kernels split in two chunks, whose chunk states (O and lse per row and chunk) are the
// workspace: int8 and NVFP4 plans share one caller workspace back to back; the results equal
// the plans' own-workspace runs and the one-shot decode ops, bit for bit (device and fallback).
// On the device an int8 attention() plan of the same shape (quantizers, then the routed decode
// kernel) uses it too: its chunk states follow the quantizers' regions.
TEST(QuantPlan, PackedDecodePlansSplitInTheWorkspace) {
  Context dev = device_context(), cpu = fallback_context();
  if (dev.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  const Qkv x = random_qkv(cpu, 5, 4200, 64, 320);
  const AttentionOptions o{.causal = true, .precision = Precision::int8};
  const Sage8Packed p8 = sage8_quantize(cpu, x.q, x.k, x.v, o);
  const Fp4Packed q4 = fp4_quantize_rows(cpu, x.q), k4 = fp4_quantize_rows(cpu, x.k);
  const Fp4PackedT v4 = fp4_quantize_tokens(cpu, x.v);
  const std::uint64_t states = 4 * 5 * 2 * (64 + 1) * 4;  // rows x chunks x (O row + lse)
  for (Context* ctx : {&dev, &cpu}) {
    SCOPED_TRACE(ctx->device().name);
    const std::uint64_t unplanned = quant_detail::unplanned_scratch_requests();
    const Sage8Packed p{{copy_to(*ctx, p8.q.codes), copy_to(*ctx, p8.q.scales)},
                        {copy_to(*ctx, p8.k.codes), copy_to(*ctx, p8.k.scales)},
                        {copy_to(*ctx, p8.v.codes), copy_to(*ctx, p8.v.scales)},
                        copy_to(*ctx, p8.delta)};
    const Fp4Packed q{copy_to(*ctx, q4.codes), copy_to(*ctx, q4.scales)};
    const Fp4Packed k{copy_to(*ctx, k4.codes), copy_to(*ctx, k4.scales)};
    const Fp4PackedT v{copy_to(*ctx, v4.codes), copy_to(*ctx, v4.scales), v4.tokens};
    Plan plan8 = make_sage8_packed_plan(*ctx, p, o);
    Plan plan4 = make_fp4_packed_plan(*ctx, q, k, v, nullptr, o);
    EXPECT_GE(plan8.workspace_bytes(), states);
    EXPECT_GE(plan4.workspace_bytes(), states);
    const Workspace caller(*ctx, std::max(plan8.workspace_bytes(), plan4.workspace_bytes()));
    const Tensor& ws = caller.ws;
    const Tensor w8 = plan8.run(p, {.workspace = ws}).out;
    const Tensor w4 = plan4.run(q, k, v, nullptr, {.workspace = ws}).out;
    const Tensor own8 = plan8.run(p).out, own4 = plan4.run(q, k, v, nullptr).out;
    if (ctx == &dev) {
      const Qkv y{copy_to(dev, x.q), copy_to(dev, x.k), copy_to(dev, x.v)};
      Plan dense = make_attention_plan(dev, y.q.desc(), y.k.desc(), y.v.desc(), o);
      EXPECT_GE(dense.workspace_bytes(), states);
      const Workspace dws(dev, dense.workspace_bytes());
      EXPECT_EQ(compare_bits(dense.run(y.q, y.k, y.v, {.workspace = dws.ws}).out.download<float>(),
                             attention(dev, y.q, y.k, y.v, o).out.download<float>()),
                "");
      dws.expect_used_within();
    }
    const auto want8 = sage8_decode_packed(*ctx, p, o).out.download<float>();
    const auto want4 = fp4_decode_packed(*ctx, q, k, v, nullptr, o).download<float>();
    EXPECT_EQ(compare_bits(w8.download<float>(), want8), "");
    EXPECT_EQ(compare_bits(own8.download<float>(), want8), "");
    EXPECT_EQ(compare_bits(w4.download<float>(), want4), "");
    EXPECT_EQ(compare_bits(own4.download<float>(), want4), "");
    EXPECT_EQ(quant_detail::unplanned_scratch_requests(), unplanned);
    if (ctx == &dev) caller.expect_used_within();  // the fallback's executor keeps its own
  }
}

// A workspace that is too small, not u8, not contiguous 1-d, misaligned or of another Context is
// refused before any kernel, naming the op, buffers.workspace and workspace_bytes().
TEST(QuantPlan, BadWorkspaceIsRefused) {
  Context ctx = fallback_context(), other = fallback_context();
  const auto shape = ErrorCode::shape_mismatch;
  const Qkv x = random_qkv(ctx, 8, 64, 64, 330);
  Plan plan =
      make_attention_plan(ctx, x.q.desc(), x.k.desc(), x.v.desc(), {.precision = Precision::nvfp4});
  const auto n = static_cast<std::int64_t>(plan.workspace_bytes());
  ASSERT_GT(n, 0);
  const std::string expected = fmt::format("expected contiguous u8[>= {}]", n);
  const auto refused = [&](const Tensor& ws, const char* why) {
    expect_error([&] { plan.run(x.q, x.k, x.v, {.workspace = ws}); }, shape,
                 {"attention plan", "buffers.workspace", why, expected});
  };
  refused(ctx.empty(DType::u8, {n - 1}), "too small");
  refused(ctx.empty(DType::f32, {n}), "dtype is not u8");
  refused(ctx.empty(DType::u8, {2, n}), "not a contiguous 1-d");
  refused(ctx.empty(DType::u8, {n + 1}).view({n}, {1}, 1), "offset is not a multiple");
  expect_error([&] { plan.run(x.q, x.k, x.v, {.workspace = other.empty(DType::u8, {n})}); },
               ErrorCode::invalid_argument, {"attention plan", "buffers.workspace", "Context"});
  EXPECT_NO_THROW(plan.run(x.q, x.k, x.v, {.workspace = ctx.empty(DType::u8, {n})}));

  const Qkv y = random_qkv(ctx, 3, 4100, 64, 340);  // decode-shaped: split states
  const AttentionOptions o{.precision = Precision::int8};
  Plan packed = make_sage8_packed_plan(ctx, sage8_quantize(ctx, y.q, y.k, y.v, o), o);
  const auto m = static_cast<std::int64_t>(packed.workspace_bytes());
  ASSERT_GT(m, 0);
  expect_error(
      [&] {
        packed.run(sage8_quantize(ctx, y.q, y.k, y.v, o),
                   {.workspace = ctx.empty(DType::u8, {m - 1})});
      },
      shape, {"sage8_attention_packed plan", "buffers.workspace", "too small"});
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
