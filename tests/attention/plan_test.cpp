// sparq::Plan: a plan's runs give the one-shot op's bits on the device (PoCL) and on the
// fallback, reused with new data, caller-provided or own workspace and outputs, every device
// path (dense kernel with fp32 scratch, row kernel with split-KV chunks, paged decode); runs with
// tensors that do not match the plan are refused with a message naming the argument.
#include <fmt/format.h>

#include <functional>

#include "attention_test_util.h"

namespace sparq::test::attn {
namespace {

void expect_same_bits(const AttentionResult& got, const AttentionResult& want,
                      const std::string& what) {
  EXPECT_EQ(compare_bits(download_f32(got.out), download_f32(want.out)), "") << what << ": O";
  ASSERT_EQ(got.lse.defined(), want.lse.defined()) << what;
  if (want.lse.defined()) {
    EXPECT_EQ(compare_bits(got.lse.download<float>(), want.lse.download<float>()), "")
        << what << ": lse";
  }
}

struct DenseCase {
  const char* name;
  std::int64_t b, hq, hkv, lq, lk, d;
  DType storage, out;
  AttentionOptions options;
};

// Four runs with new data each: own workspace, a caller's workspace + output, own again with Q
// at an offset, and at offset 0; each equals attention() on the same tensors, on both contexts.
void check_dense_plan(Context& ctx, const DenseCase& c, std::uint64_t seed) {
  SCOPED_TRACE(fmt::format("{} on {}", c.name, ctx.device().name));
  AttentionOptions o = c.options;
  o.out_dtype = c.out;
  const std::vector<std::int64_t> qs{c.b, c.hq, c.lq, c.d}, ks{c.b, c.hkv, c.lk, c.d};
  const auto desc = [&](const std::vector<std::int64_t>& s) {
    return TensorDesc{c.storage, s, {}, 0};
  };
  Plan plan = make_attention_plan(ctx, desc(qs), desc(ks), desc(ks), o);
  Tensor ws;
  if (plan.workspace_bytes() > 0)
    ws = ctx.empty(DType::u8, {static_cast<std::int64_t>(plan.workspace_bytes())});
  const Tensor out = ctx.empty(plan.out_desc().dtype, plan.out_desc().shape);
  const auto n = [](const std::vector<std::int64_t>& s) {
    return static_cast<std::size_t>(s[0] * s[1] * s[2] * s[3]);
  };
  for (int run = 0; run < 4; ++run) {
    // Run 2 reads Q at an offset (the kernels' scalars change), run 3 at offset 0 again.
    const std::size_t pad = run == 2 ? 40 : 0;
    const Tensor q = upload_as(ctx, random_normal(n(qs) + pad, seed + 3 * run, 2.0f), c.storage,
                               {static_cast<std::int64_t>(n(qs) + pad)})
                         .view(qs, {}, static_cast<std::int64_t>(pad));
    const Tensor k = upload_as(ctx, random_normal(n(ks), seed + 3 * run + 1), c.storage, ks);
    const Tensor v = upload_as(ctx, random_normal(n(ks), seed + 3 * run + 2), c.storage, ks);
    PlanBuffers buffers;
    if (run == 1) buffers = {.out = out, .workspace = ws};
    const AttentionResult got = plan.run(q, k, v, buffers);
    if (run == 1) {
      EXPECT_EQ(got.out.storage(), out.storage());
    }
    expect_same_bits(got, attention(ctx, q, k, v, o), fmt::format("run {}", run));
  }
}

// PoCL compiles each kernel variant once per test process: each test touches few variants.
TEST(AttentionPlan, DenseKernelRunsEqualOneShot) {
  Context dev = device_context(), cpu = fallback_context();
  // Dense kernel (Lq >= 32, D = 64), GQA, causal, over two key chunks into bf16: the fp32
  // scratch between chunks lives in the workspace.
  const DenseCase c{
      "dense GQA causal 2 chunks bf16 out", 1, 4, 2, 32, 4100, 64, DType::f16, DType::bf16,
      {.causal = true, .return_lse = true}};
  for (Context* ctx : {&dev, &cpu}) check_dense_plan(*ctx, c, 100);
}

TEST(AttentionPlan, MasksRunsEqualOneShot) {
  Context cpu = fallback_context();  // the plan's hook handling; kernels: AttentionMasks tests
  AttentionOptions o{.causal = true, .return_lse = true};
  o.masks.window_left = 20;
  o.masks.softcap = 5.0f;
  o.masks.sinks = cpu.upload(std::vector<float>{0.5f, -1.0f}, DType::f32, {2});
  check_dense_plan(cpu, {"masks", 2, 2, 2, 5, 70, 24, DType::bf16, DType::f32, o}, 200);
}

TEST(AttentionPlan, DenseWorkspaceIsSizedForTheDevicePath) {
  Context ctx = device_context();
  const TensorDesc q{DType::f32, {1, 2, 3, 16}, {}, 0}, k{DType::f32, {1, 1, 4200, 16}, {}, 0};
  const Plan split = make_attention_plan(ctx, q, k, k);
  EXPECT_GE(split.workspace_bytes(), 2u * 3 * 2 * 17 * 4);  // 2 chunks x 6 rows x (D + lse)
  const TensorDesc q1{DType::f32, {1, 2, 3, 16}, {}, 0}, k1{DType::f32, {1, 1, 100, 16}, {}, 0};
  EXPECT_EQ(make_attention_plan(ctx, q1, k1, k1).workspace_bytes(), 0u);
}

// Paged decode with split-KV: sequence lengths and tables change per run (data), the plan not.
void check_paged_plan(Context& ctx, DType storage, PageLayout layout, std::uint64_t seed) {
  SCOPED_TRACE(fmt::format("paged {} on {}", dt(storage), ctx.device().name));
  const int hq = 4, hkv = 2, d = 16, page = 64, batch = 2;
  const std::vector<std::vector<std::int32_t>> lens = {{4500, 300}, {77, 5000}, {4097, 4096}};
  // One pool and table shape for all runs: room for the longest sequence of any run.
  const std::int64_t max_pages = 5000 / page + 2, num_pages = batch * max_pages + 3;
  const std::vector<std::int64_t> pool = layout == PageLayout::nhd
                                             ? std::vector<std::int64_t>{num_pages, page, hkv, d}
                                             : std::vector<std::int64_t>{num_pages, hkv, page, d};
  const std::vector<std::int64_t> qs{batch, hq, 1, d};
  const AttentionOptions o{.causal = true, .return_lse = true};
  PagedKV kv;
  kv.page_size = page;
  kv.layout = layout;
  const auto pool_n = static_cast<std::size_t>(num_pages * page * hkv * d);
  std::vector<std::int32_t> table(static_cast<std::size_t>(batch * max_pages));
  const auto fill = [&](int run) {
    kv.k_pages = upload_as(ctx, random_normal(pool_n, seed + 4 * run), storage, pool);
    kv.v_pages = upload_as(ctx, random_normal(pool_n, seed + 4 * run + 1), storage, pool);
    for (std::size_t i = 0; i < table.size(); ++i)  // a different page order each run
      table[i] = static_cast<std::int32_t>((i * 7 + run * 11) % num_pages);
    kv.page_table = ctx.upload(table, DType::i32, {batch, max_pages});
    kv.seq_lens = ctx.upload(lens[run], DType::i32, {batch});
  };
  fill(0);
  Plan plan = make_attention_paged_plan(ctx, TensorDesc{DType::f32, qs, {}, 0}, kv, o);
  EXPECT_GT(plan.workspace_bytes(), 0u);
  const Tensor ws = ctx.empty(DType::u8, {static_cast<std::int64_t>(plan.workspace_bytes())});
  for (int run = 0; run < 3; ++run) {
    if (run > 0) fill(run);
    const Tensor q = ctx.upload(random_normal(batch * hq * d, seed + 4 * run + 2), DType::f32, qs);
    // Run 0 downloads the tables; runs 1 and 2 take them from the host.
    const PagedTables host{lens[run].data(), table.data()};
    const PlanBuffers buffers{.workspace = run == 2 ? ws : Tensor()};
    const AttentionResult got =
        run == 0 ? plan.run(q, kv, buffers) : plan.run(q, kv, buffers, host);
    expect_same_bits(got, attention_paged(ctx, q, kv, o), fmt::format("run {}", run));
  }
}

TEST(AttentionPlan, SplitKvRunsEqualOneShot) {
  Context dev = device_context(), cpu = fallback_context();
  // Row kernel split across key chunks: partial outputs / LSEs in the workspace.
  const DenseCase rows{
      "split rows", 1,  2,          1,          3,
      4200,         16, DType::f32, DType::f32, {.causal = true, .return_lse = true}};
  for (Context* ctx : {&dev, &cpu}) {
    check_dense_plan(*ctx, rows, 300);
    check_paged_plan(*ctx, DType::f32, PageLayout::nhd, 500);
    check_paged_plan(*ctx, DType::f16, PageLayout::hnd, 600);
  }
}

// Packed sequences: the offsets change per run (data), and with them the kernel (dense when the
// longest sequence has >= 32 query rows, else the row kernel, split when <= 16 rows meet > 4096
// keys); f16 output over two key chunks needs the fp32 scratch.
TEST(AttentionPlan, VarlenRunsEqualOneShot) {
  Context dev = device_context(), cpu = fallback_context();
  const std::int64_t total_q = 40, total_k = 4400, hq = 4, hkv = 2, d = 64;
  const std::vector<std::vector<std::int32_t>> cu_q = {
      {0, 35, 38, 40}, {0, 14, 28, 40}, {0, 0, 20, 40}};
  const std::vector<std::vector<std::int32_t>> cu_k = {
      {0, 100, 4300, 4400}, {0, 4200, 4300, 4400}, {0, 10, 4390, 4400}};
  const AttentionOptions o{.causal = true, .return_lse = true, .out_dtype = DType::f16};
  for (Context* ctx : {&dev, &cpu}) {
    SCOPED_TRACE(ctx->device().name);
    const TensorDesc qd{DType::f32, {total_q, hq, d}, {}, 0};
    const TensorDesc kd{DType::f32, {total_k, hkv, d}, {}, 0};
    const TensorDesc cud{DType::i32, {4}, {}, 0};
    Plan plan = make_attention_varlen_plan(*ctx, qd, kd, kd, cud, cud, o);
    EXPECT_GT(plan.workspace_bytes(), 0u);
    for (int run = 0; run < 3; ++run) {
      const Tensor q =
          ctx->upload(random_normal(total_q * hq * d, 800 + run), DType::f32, qd.shape);
      const Tensor k =
          ctx->upload(random_normal(total_k * hkv * d, 810 + run), DType::f32, kd.shape);
      const Tensor v =
          ctx->upload(random_normal(total_k * hkv * d, 820 + run), DType::f32, kd.shape);
      const Tensor cq = ctx->upload(cu_q[run], DType::i32, {4});
      const Tensor ck = ctx->upload(cu_k[run], DType::i32, {4});
      const AttentionResult got =
          run == 1 ? plan.run_varlen(q, k, v, SeqOffsets{cu_q[run].data(), cu_k[run].data()})
                   : plan.run_varlen(q, k, v, cq, ck);
      expect_same_bits(got, attention_varlen(*ctx, q, k, v, cq, ck, o), fmt::format("run {}", run));
    }
    const std::vector<std::int32_t> bad{0, 20, 10, 40};
    expect_error(
        [&] {
          plan.run_varlen(ctx->empty(DType::f32, qd.shape), ctx->empty(DType::f32, kd.shape),
                          ctx->empty(DType::f32, kd.shape), SeqOffsets{bad.data(), cu_k[0].data()});
        },
        ErrorCode::invalid_argument, {"cu_seqlens_q[2] = 10 is less than"});
  }
}

TEST(AttentionPlan, Int8PagesRunsEqualOneShot) {
  // The plan's handling of int8 pages and their scales is host code (the device runs the launch
  // code of attention_paged, tested by KvCacheExact): the fallback suffices.
  Context ctx = fallback_context();
  const int batch = 2, hkv = 2, hq = 4, d = 16, page = 16;
  PagedKV kv = make_paged_kv(ctx, 10, page, hkv, d, DType::i8, PageLayout::hnd);
  kv.page_table =
      ctx.upload(std::vector<std::int32_t>{5, 2, 7, 0, 9, 1, 6, 3, 4, 8}, DType::i32, {batch, 5});
  kv.seq_lens = ctx.upload(std::vector<std::int32_t>{0, 0}, DType::i32, {batch});
  const TensorDesc qd{DType::f32, {batch, hq, d}, {}, 0};
  const AttentionOptions o{.causal = true, .return_lse = true};
  Plan plan = make_attention_paged_plan(ctx, qd, kv, o);
  for (int run = 0; run < 3; ++run) {  // the cache grows by 20, 23, 26 tokens
    const std::vector<std::int64_t> shape{batch, hkv, 20 + 3 * run, d};
    const auto count = static_cast<std::size_t>(shape[0] * shape[1] * shape[2] * shape[3]);
    kv_append(ctx, kv, ctx.upload(random_normal(count, 700 + run), DType::f32, shape),
              ctx.upload(random_normal(count, 710 + run), DType::f32, shape));
    const Tensor q = ctx.upload(random_normal(batch * hq * d, 720 + run), DType::f32, qd.shape);
    expect_same_bits(plan.run(q, kv), attention_paged(ctx, q, kv, o), fmt::format("run {}", run));
  }
  PagedKV no_scales = kv;
  no_scales.v_scales = Tensor();
  expect_error([&] { plan.run(ctx.empty(DType::f32, qd.shape), no_scales); },
               ErrorCode::invalid_argument, {"kv.v_scales"});
}

TEST(AttentionPlan, MismatchedRunsAreRefused) {
  for (Context ctx : {device_context(), fallback_context()}) {
    const std::vector<std::int64_t> qs{1, 2, 3, 16}, ks{1, 1, 4200, 16};
    const TensorDesc qd{DType::f32, qs, {}, 0}, kd{DType::f32, ks, {}, 0};
    Plan plan = make_attention_plan(ctx, qd, kd, kd);
    const Tensor q = ctx.empty(DType::f32, qs), k = ctx.empty(DType::f32, ks);
    const auto shape = ErrorCode::shape_mismatch;
    const auto ws = [&](std::int64_t n) { return ctx.empty(DType::u8, {n}); };
    const auto bytes = static_cast<std::int64_t>(plan.workspace_bytes());
    expect_error([&] { plan.run(q, k, k, {.workspace = ws(bytes - 1)}); }, shape,
                 {"attention plan", "buffers.workspace", fmt::format("u8[>= {}]", bytes)});
    expect_error(
        [&] {
          plan.run(ctx.empty(DType::f32, {1, 2, 4, 16}), k, k);
        },
        shape, {"attention plan", "Q is f32[1, 2, 4, 16]", "made for f32[1, 2, 3, 16]"});
    expect_error([&] { plan.run(q, ctx.empty(DType::f16, ks), k); }, shape,
                 {"K is f16[1, 1, 4200, 16]", "made for f32[1, 1, 4200, 16]"});
    expect_error(
        [&] {
          plan.run(q, k, k, {.out = ctx.empty(DType::f32, {1, 2, 3, 8})});
        },
        shape, {"buffers.out"});
    expect_error(
        [&] {
          plan.run(q, k, k, {.lse = ctx.empty(DType::f32, {1, 2, 3})});
        },
        ErrorCode::invalid_argument, {"return_lse"});
    expect_error([&] { plan.run(q, PagedKV{}); }, ErrorCode::invalid_argument,
                 {"make_attention_plan"});
    PagedKV kv = make_paged_kv(ctx, 4, 16, 1, 16, DType::f32);
    kv.page_table = ctx.upload(std::vector<std::int32_t>{0, 1}, DType::i32, {1, 2});
    kv.seq_lens = ctx.upload(std::vector<std::int32_t>{20}, DType::i32, {1});
    Plan paged = make_attention_paged_plan(ctx, qd, kv);
    const std::vector<std::int32_t> lens{20}, bad_table{0, 4};
    expect_error(
        [&] {
          paged.run(q, kv, {}, {lens.data(), bad_table.data()});
        },
        ErrorCode::invalid_argument, {"page_table[0][1] = 4 is out of range [0, 4)"});
    expect_error(
        [&] {
          paged.run(q, kv, {}, {lens.data(), nullptr});
        },
        ErrorCode::invalid_argument, {"tables.page_table"});
    expect_error([&] { paged.run(q, k, k); }, ErrorCode::invalid_argument,
                 {"make_attention_paged_plan"});
    expect_error(
        [&] {
          make_attention_plan(ctx, qd, kd, kd, {.return_lse = true, .precision = Precision::int8});
        },
        ErrorCode::unsupported, {"return_lse"});
    if (ctx.backend() == Backend::fallback) {  // (on PoCL a run would compile kernels: slow)
      EXPECT_NO_THROW(plan.run(q, k, k, {.workspace = ws(bytes)}));
    }
    EXPECT_THROW(Plan().run(q, k, k), Error);
  }
}

}  // namespace
}  // namespace sparq::test::attn
