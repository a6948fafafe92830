// Bad input -> sparq::Error with the right code and a message naming the op, the argument and
// expected vs actual; nothing runs (no crash, no out-of-bounds access). supports_attention
// answers the same message without throwing.
#include <functional>
#include <limits>

#include "attention/attention_test_util.h"

namespace sparq::test::attn {
namespace {

Tensor zeros(Context& ctx, std::vector<std::int64_t> shape, DType t = DType::f32) {
  std::int64_t n = 1;
  for (auto x : shape) n *= x;
  return upload_as(ctx, std::vector<float>(n, 0.0f), t, std::move(shape));
}

TEST(AttentionErrors, DenseShapesAndOptions) {
  Context ctx = fallback_context();
  const Tensor q = zeros(ctx, {1, 4, 8, 64}), k = zeros(ctx, {1, 2, 8, 64}), v = k;
  const auto run = [&](const Tensor& a, const Tensor& b, const Tensor& c, AttentionOptions o = {}) {
    return [&, a, b, c, o] { attention(ctx, a, b, c, o); };
  };
  const auto shape = ErrorCode::shape_mismatch;
  expect_error(run(zeros(ctx, {4, 8, 64}), k, v), shape,
               {"attention: Q must have 4 dims [B, Hq, Lq, D]", "f32[4, 8, 64]"});
  expect_error(run(q, k, zeros(ctx, {1, 2, 9, 64})), shape,
               {"attention: V has shape [1, 2, 9, 64]", "K has [1, 2, 8, 64]"});
  expect_error(run(q, zeros(ctx, {2, 2, 8, 64}), zeros(ctx, {2, 2, 8, 64})), shape,
               {"K has batch 2, Q has 1"});
  expect_error(run(q, zeros(ctx, {1, 2, 8, 32}), zeros(ctx, {1, 2, 8, 32})), shape,
               {"K has head dim 32, Q has 64"});
  expect_error(
      run(zeros(ctx, {1, 30, 8, 64}), zeros(ctx, {1, 8, 8, 64}), zeros(ctx, {1, 8, 8, 64})), shape,
      {"attention: K has 8 heads, Q has 30; Q heads must be a multiple of K heads (GQA)"});
  expect_error(
      run(zeros(ctx, {1, 4, 8, 300}), zeros(ctx, {1, 2, 8, 300}), zeros(ctx, {1, 2, 8, 300})),
      ErrorCode::unsupported, {"Q has head dim D = 300; supported: 1 to 256"});
  for (auto bad :
       std::vector<std::vector<std::int64_t>>{{0, 4, 8, 64}, {1, 4, 0, 64}, {1, 4, 8, 0}})
    expect_error(run(zeros(ctx, bad), k, v), shape,
                 {"attention: Q [B, Hq, Lq, D] has a zero-sized dimension"});
  expect_error(run(q, zeros(ctx, {1, 2, 0, 64}), zeros(ctx, {1, 2, 0, 64})), shape,
               {"K [B, Hkv, Lk, D] has a zero-sized"});
  expect_error(
      run(ctx.upload(std::vector<std::int32_t>(4 * 8 * 64), DType::i32, {1, 4, 8, 64}), k, v),
      shape, {"Q has dtype i32; expected f32, f16 or bf16"});
  const Tensor wide = zeros(ctx, {1, 4, 8, 128});
  expect_error(run(wide.view({1, 4, 8, 64}, {4096, 1024, 128, 2}), k, v), shape,
               {"Q must be contiguous in its last dim (D): innermost stride is 2"});
  Context other = fallback_context();
  expect_error(run(q, zeros(other, {1, 2, 8, 64}), v), ErrorCode::invalid_argument,
               {"attention: K belongs to another Context"});
  expect_error(run(Tensor{}, k, v), ErrorCode::invalid_argument,
               {"attention: Q is an empty Tensor"});
  for (float s :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f})
    expect_error(run(q, k, v, {.scale = s}), ErrorCode::invalid_argument,
                 {"attention: options.scale is"});
  expect_error(run(q, k, v, {.scale = 1e-45f}), ErrorCode::invalid_argument, {"options.scale = "});
  expect_error(run(q, k, v, {.out_dtype = DType::i8}), ErrorCode::invalid_argument,
               {"options.out_dtype is i8; expected f32, f16 or bf16"});

  // supports_attention: the same verdicts, as values.
  EXPECT_TRUE(supports_attention(ctx, q.desc(), k.desc(), v.desc()).ok);
  const Support s = supports_attention(ctx, TensorDesc{DType::f32, {1, 30, 8, 64}},
                                       TensorDesc{DType::f32, {1, 8, 8, 64}},
                                       TensorDesc{DType::f32, {1, 8, 8, 64}});
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.reason.find("K has 8 heads, Q has 30"), std::string::npos) << s.reason;
  EXPECT_FALSE(supports_attention(ctx, q.desc(), k.desc(), v.desc(), {.scale = -2.0f}).ok);
}

TEST(AttentionErrors, Varlen) {
  Context ctx = fallback_context();
  const Tensor q = zeros(ctx, {10, 2, 64}), k = zeros(ctx, {12, 1, 64}), v = k;
  auto cu = [&](std::vector<std::int32_t> x) {
    return ctx.upload(x, DType::i32, {static_cast<std::int64_t>(x.size())});
  };
  auto run = [&](Tensor cq, Tensor ck) {
    return [&, cq, ck] { attention_varlen(ctx, q, k, v, cq, ck); };
  };
  const auto bad = ErrorCode::invalid_argument;
  expect_error(run(cu({1, 4, 10}), cu({0, 6, 12})), bad,
               {"attention_varlen: cu_seqlens_q[0] is 1; it must be 0"});
  expect_error(run(cu({0, 6, 4, 10}), cu({0, 6, 7, 12})), bad,
               {"cu_seqlens_q[2] = 4 is less than cu_seqlens_q[1] = 6; offsets must be ascending"});
  expect_error(run(cu({0, 4, 9}), cu({0, 6, 12})), bad,
               {"cu_seqlens_q's last entry is 9 but Q has 10 rows"});
  expect_error(run(cu({0, 4, 10}), cu({0, 6, 13})), bad,
               {"cu_seqlens_k's last entry is 13 but K has 12 rows"});
  expect_error(run(cu({0, 4, 10}), cu({0, 12})), ErrorCode::shape_mismatch,
               {"cu_seqlens_q has 3 entries, cu_seqlens_k has 2"});
  expect_error(run(cu({10}), cu({12})), ErrorCode::shape_mismatch,
               {"cu_seqlens_q has 1 entries; expected num_seqs + 1 >= 2"});
  expect_error(run(zeros(ctx, {3}), cu({0, 6, 12})), ErrorCode::shape_mismatch,
               {"cu_seqlens_q has dtype f32; expected i32"});
  expect_error(
      [&] {
        attention_varlen(ctx, zeros(ctx, {1, 10, 2, 64}), k, v, cu({0, 10}), cu({0, 12}));
      },
      ErrorCode::shape_mismatch, {"Q must have 3 dims [total_q, Hq, D]"});
}

TEST(AttentionErrors, Paged) {
  Context ctx = fallback_context();
  const Tensor q = zeros(ctx, {2, 4, 64});
  PagedKV kv;
  kv.k_pages = kv.v_pages = zeros(ctx, {5, 16, 2, 64});
  kv.page_size = 16;
  auto table = [&](std::vector<std::int32_t> x) { return ctx.upload(x, DType::i32, {2, 3}); };
  kv.page_table = table({0, 1, 2, 3, 4, -1});
  kv.seq_lens = ctx.upload(std::vector<std::int32_t>{40, 20}, DType::i32, {2});
  attention_paged(ctx, q, kv);  // valid
  auto with = [&](auto change) {
    PagedKV x = kv;
    change(x);
    return [&ctx, &q, x] { attention_paged(ctx, q, x); };
  };
  const auto bad = ErrorCode::invalid_argument;
  expect_error(with([&](PagedKV& x) {
                 x.page_table = table({0, 1, 7, 3, 4, -1});
               }),
               bad, {"attention_paged: page_table[0][2] = 7 is out of range [0, 5)"});
  expect_error(with([&](PagedKV& x) {
                 x.seq_lens = ctx.upload(std::vector<std::int32_t>{40, 49}, DType::i32, {2});
               }),
               bad, {"seq_lens[1] = 49 needs 4 pages of 16 but page_table has 3 per sequence"});
  expect_error(with([&](PagedKV& x) {
                 x.seq_lens = ctx.upload(std::vector<std::int32_t>{-1, 4}, DType::i32, {2});
               }),
               bad, {"seq_lens[0] = -1 is negative"});
  expect_error(
      with([](PagedKV& x) { x.page_size = 8; }), ErrorCode::shape_mismatch,
      {"kv.page_size is 8 but kv.k_pages (NHD [num_pages, page_size, Hkv, D]) has 16 slots"});
  expect_error(
      with([](PagedKV& x) { x.layout = PageLayout::hnd; }), ErrorCode::shape_mismatch,
      {"kv.page_size is 16 but kv.k_pages (HND [num_pages, Hkv, page_size, D]) has 2 slots"});
  expect_error(with([&](PagedKV& x) {
                 x.seq_lens = ctx.upload(std::vector<std::int32_t>{4}, DType::i32, {1});
               }),
               ErrorCode::shape_mismatch, {"kv.seq_lens 1 entries; Q has batch 2"});
  expect_error(with([&](PagedKV& x) {
                 x.v_pages = zeros(ctx, {5, 16, 2, 32});
               }),
               ErrorCode::shape_mismatch,
               {"kv.v_pages has shape [5, 16, 2, 32], kv.k_pages has [5, 16, 2, 64]"});
  AttentionOptions int8;
  int8.precision = Precision::int8;
  expect_error([&] { attention_paged(ctx, q, kv, int8); }, ErrorCode::unsupported,
               {"attention_paged: options.precision is int8; this op has only the fp32 path"});
}

TEST(AttentionErrors, MergeStates) {
  Context ctx = fallback_context();
  const Tensor o = zeros(ctx, {3, 4, 8}), l = zeros(ctx, {3, 4});
  expect_error(
      [&] {
        merge_states(ctx, o, l, zeros(ctx, {3, 4, 9}), l);
      },
      ErrorCode::shape_mismatch, {"merge_states: out_b has shape [3, 4, 9], out_a has [3, 4, 8]"});
  expect_error(
      [&] {
        merge_states(ctx, o, zeros(ctx, {3, 5}), o, l);
      },
      ErrorCode::shape_mismatch, {"lse_a has shape [3, 5]; expected [3, 4]"});
  expect_error(
      [&] {
        merge_states(ctx, zeros(ctx, {8}), zeros(ctx, {1}), zeros(ctx, {8}), zeros(ctx, {1}));
      },
      ErrorCode::shape_mismatch, {"out_a must have 2 to 5 dims"});
}

// Sizes over the device's largest allocation are refused before anything is allocated or run
// (a zero-stride view gives a huge logical Q without the memory).
TEST(AttentionErrors, TooLargeOnDevice) {
  Context dev = device_context();
  const Tensor small = zeros(dev, {1, 1, 1, 256});
  const std::int64_t rows = std::int64_t{1} << 30;
  const Tensor huge = small.view({1, 1, rows, 256}, {0, 0, 0, 1});
  const Tensor k = zeros(dev, {1, 1, 8, 256});
  expect_error([&] { attention(dev, huge, k, k); }, ErrorCode::too_large,
               {"attention: output O f32[1, 1, 1073741824, 256] needs 1099511627776 bytes, over "
                "the device's largest allocation"});
  const Tensor longer = small.view({1, 1, std::int64_t{1} << 31, 256}, {0, 0, 0, 1});
  expect_error([&] { attention(dev, longer, k, k); }, ErrorCode::too_large,
               {"attention: Lq = 2147483648 is over the supported maximum"});
  EXPECT_FALSE(supports_attention(dev, huge.desc(), k.desc(), k.desc()).ok);
}

}  // namespace
}  // namespace sparq::test::attn
