// make_sparse_attention_plan: runs over a new index and new data each equal
// attention(q, k, v, index) bit for bit on the device (PoCL) and the fallback, with own or
// caller-provided outputs, caller-made (validated per run) and builder-made indices, masks, int8
// and zero-padded head dims; mismatched runs are refused with sparq::Error.
#include <fmt/format.h>

#include "host/src/quant/quant_ops.h"
#include "sparse/sparse_test_util.h"

namespace sparq::test::sparse {
namespace {

struct Qkv {
  Tensor q, k, v;
};

Qkv random_qkv(Context& ctx, const Shape& s, std::uint64_t seed) {
  const auto n = [&](std::int64_t h, std::int64_t l) {
    return static_cast<std::size_t>(h * l * s.D);
  };
  return {ctx.upload(random_normal(n(s.Hq, s.Lq), seed, 2.0f), DType::f32, {s.B, s.Hq, s.Lq, s.D}),
          ctx.upload(random_normal(n(s.Hkv, s.Lk), seed + 1), DType::f32, {s.B, s.Hkv, s.Lk, s.D}),
          ctx.upload(random_normal(n(s.Hkv, s.Lk), seed + 2), DType::f32, {s.B, s.Hkv, s.Lk, s.D})};
}

void expect_same_bits(const AttentionResult& got, const AttentionResult& want,
                      const std::string& what) {
  EXPECT_EQ(compare_bits(got.out.download<float>(), want.out.download<float>()), "") << what;
  ASSERT_EQ(got.lse.defined(), want.lse.defined()) << what;
  if (want.lse.defined()) {
    EXPECT_EQ(compare_bits(got.lse.download<float>(), want.lse.download<float>()), "") << what;
  }
}

// Three runs: a caller-made index (own outputs), another one into the caller's outputs, the
// dense index (sparq-made, sealed: not validated again; fallback only, since its empty column
// arrays make PoCL build a second specialization of the kernel, ~1.5 s).
void check_plan(Context& ctx, const Shape& s, const AttentionOptions& o, std::uint64_t seed) {
  SCOPED_TRACE(fmt::format("{} D{}", ctx.device().name, s.D));
  const Qkv first = random_qkv(ctx, s, seed);
  const SparseIndex x0 = upload_index(ctx, random_index(s, seed));
  Plan plan =
      make_sparse_attention_plan(ctx, first.q.desc(), first.k.desc(), first.v.desc(), x0, o);
  // The padded copies (D other than 64 / 128) and the quantized Q/K/V and scales (int8 / nvfp4)
  // live in the workspace.
  EXPECT_EQ(plan.workspace_bytes() > 0,
            o.precision != Precision::fp32 || (s.D != 64 && s.D != 128));
  const Tensor out = ctx.empty(plan.out_desc().dtype, plan.out_desc().shape);
  const Tensor lse = o.return_lse ? ctx.empty(DType::f32, plan.lse_desc().shape) : Tensor();
  const int runs = ctx.backend() == Backend::fallback ? 3 : 2;
  for (int run = 0; run < runs; ++run) {
    const Qkv x = random_qkv(ctx, s, seed + 10 * (run + 1));
    const SparseIndex index = run < 2 ? upload_index(ctx, random_index(s, seed + 10 * run + 5))
                                      : dense_index(ctx, s.B, hi_count(s), s.Lq, s.Lk, s.causal);
    const PlanBuffers buffers{.out = run == 1 ? out : Tensor(), .lse = run == 1 ? lse : Tensor()};
    const AttentionResult got = plan.run_sparse(x.q, x.k, x.v, index, buffers);
    if (run == 1) {
      EXPECT_EQ(got.out.storage(), out.storage());
    }
    expect_same_bits(got, attention(ctx, x.q, x.k, x.v, index, o), fmt::format("run {}", run));
  }
}

TEST(SparsePlan, RunsEqualOneShot) {
  Context dev = device_context(), cpu = fallback_context();
  const Shape s{.B = 1, .Hq = 2, .Hkv = 1, .D = 64, .Lq = 100, .Lk = 150};
  for (Context* ctx : {&dev, &cpu}) check_plan(*ctx, s, {.causal = true, .return_lse = true}, 100);
}

// Host paths of the plan (hooks planned once, routing by precision, padding into a caller's
// output): the fallback suffices, the kernels have their own tests.
TEST(SparsePlan, MasksInt8AndPaddedHeadDims) {
  Context cpu = fallback_context();
  AttentionOptions masks{.causal = true, .return_lse = true};
  masks.masks.window_left = 40;
  masks.masks.sinks = cpu.upload(std::vector<float>{0.5f, -1.0f}, DType::f32, {2});
  check_plan(cpu, {.D = 64, .Lq = 100, .Lk = 150}, masks, 200);
  check_plan(cpu, {.D = 40, .Lq = 70, .Lk = 70}, {.causal = true, .return_lse = true}, 300);
  check_plan(cpu, {.D = 64, .Lq = 100, .Lk = 150}, {.causal = true, .precision = Precision::int8},
             400);
  check_plan(cpu, {.D = 64, .Lq = 100, .Lk = 150}, {.causal = true, .precision = Precision::nvfp4},
             500);
}

// A pattern plan builds each run's index from that run's Q and K: attention(q, k, v, pattern).
TEST(SparsePlan, PatternRunsEqualOneShot) {
  Context cpu = fallback_context();  // host logic: build_index and the launch are the op's own
  const Shape s{.Hq = 4, .Hkv = 2, .D = 64, .Lq = 128, .Lk = 192};
  const AttentionOptions o{.causal = true, .return_lse = true};
  const Qkv first = random_qkv(cpu, s, 700);
  for (const Pattern& pattern : {Pattern{AShape{16, 64}}, Pattern{VerticalSlash{30, 60}}}) {
    Plan plan = make_sparse_attention_plan(cpu, first.q.desc(), first.k.desc(), first.v.desc(),
                                           pattern, o, {.sharing = IndexSharing::kv_group});
    for (int run = 0; run < 2; ++run) {
      const Qkv x = random_qkv(cpu, s, 710 + 10 * run);
      expect_same_bits(
          plan.run(x.q, x.k, x.v),
          attention(cpu, x.q, x.k, x.v, pattern, o, {.sharing = IndexSharing::kv_group}),
          fmt::format("pattern {} run {}", pattern.index(), run));
    }
    expect_error([&] { plan.run_sparse(first.q, first.k, first.v, SparseIndex()); },
                 ErrorCode::invalid_argument, {"run(q, k, v)"});
  }
}

// Sparse plans on the device with a workspace: an int8 plan over a caller-made index runs in a
// caller's workspace twice (the second rebinds it) and in its own, then an fp32 plan with a
// zero-padded head dim (D = 40: its padded copies are the regions) runs in the same workspace;
// every run equals attention(q, k, v, index), bit for bit, and every temporary is a planned
// region. (NVFP4 shares the plan code; its sparse kernel build on PoCL would double the cost:
// the fallback test above covers it.)
TEST(SparsePlan, WorkspaceRunsOnTheDevice) {
  Context ctx = device_context();
  const std::uint64_t unplanned = quant_detail::unplanned_scratch_requests();
  const Shape s{.Hq = 4, .Hkv = 2, .D = 64, .Lq = 100, .Lk = 150};
  Shape s40 = s;
  s40.D = 40;
  const Qkv x = random_qkv(ctx, s, 800), y = random_qkv(ctx, s, 810), z = random_qkv(ctx, s40, 820);
  const SparseIndex index = upload_index(ctx, random_index(s, 805));
  const AttentionOptions o{.causal = true, .precision = Precision::int8};
  const AttentionOptions o32{.causal = true, .return_lse = true};
  Plan plan = make_sparse_attention_plan(ctx, x.q.desc(), x.k.desc(), x.v.desc(), index, o);
  Plan padded = make_sparse_attention_plan(ctx, z.q.desc(), z.k.desc(), z.v.desc(), index, o32);
  ASSERT_GT(plan.workspace_bytes(), 0u);
  EXPECT_GE(padded.workspace_bytes(), 4u * 100 * 64 * 4);  // at least the padded f32 Q
  const Tensor ws = ctx.empty(
      DType::u8,
      {static_cast<std::int64_t>(std::max(plan.workspace_bytes(), padded.workspace_bytes()))});
  const AttentionResult wx = plan.run_sparse(x.q, x.k, x.v, index, {.workspace = ws});
  const AttentionResult wy = plan.run_sparse(y.q, y.k, y.v, index, {.workspace = ws});
  const AttentionResult own = plan.run_sparse(x.q, x.k, x.v, index);
  const AttentionResult wz = padded.run_sparse(z.q, z.k, z.v, index, {.workspace = ws});
  const AttentionResult want = attention(ctx, x.q, x.k, x.v, index, o);
  expect_same_bits(wx, want, "int8, caller's workspace");
  expect_same_bits(own, want, "int8, own workspace");
  expect_same_bits(wy, attention(ctx, y.q, y.k, y.v, index, o), "int8, caller's workspace again");
  expect_same_bits(wz, attention(ctx, z.q, z.k, z.v, index, o32), "fp32 D40, caller's workspace");
  EXPECT_EQ(quant_detail::unplanned_scratch_requests(), unplanned);
}

TEST(SparsePlan, MismatchedRunsAreRefused) {
  Context cpu = fallback_context();
  const Shape s{.D = 64, .Lq = 100, .Lk = 150};
  const Qkv x = random_qkv(cpu, s, 600);
  const SparseIndex index = upload_index(cpu, random_index(s, 601));
  Plan plan =
      make_sparse_attention_plan(cpu, x.q.desc(), x.k.desc(), x.v.desc(), index, {.causal = true});
  const auto arg = ErrorCode::invalid_argument;
  Shape longer = s;
  longer.Lk = 160;
  const SparseIndex other = upload_index(cpu, random_index(longer, 602));
  expect_error([&] { plan.run_sparse(x.q, x.k, x.v, other); }, arg,
               {"attention (sparse) plan", "index was built for B = 1, Lq = 100, Lk = 160"});
  expect_error(
      [&] {
        plan.run_sparse(x.q, x.v, x.v.view({1, 1, 149, 64}, {}, 0), index);
      },
      ErrorCode::shape_mismatch, {"V is f32[1, 1, 149, 64]"});
  expect_error(
      [&] {
        plan.run_sparse(x.q, x.k, x.v, index, {.lse = cpu.empty(DType::f32, {1, 2, 100})});
      },
      arg, {"return_lse"});
  expect_error([&] { plan.run(x.q, x.k, x.v); }, arg,
               {"made by make_sparse_attention_plan", "run_sparse(q, k, v, index)"});
  expect_error([&] { make_sparse_attention_plan(cpu, x.q.desc(), x.k.desc(), x.v.desc(), other); },
               arg, {"attention (sparse)", "index was built for"});
  Plan dense = make_attention_plan(cpu, x.q.desc(), x.k.desc(), x.v.desc());
  expect_error([&] { dense.run_sparse(x.q, x.k, x.v, index); }, arg, {"make_attention_plan"});
}

}  // namespace
}  // namespace sparq::test::sparse
