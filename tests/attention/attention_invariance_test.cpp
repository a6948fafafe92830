// The same token gets the same bits in prefill, chunked prefill, decode (contiguous and paged),
// speculative decode, alone or inside a batch — on the device and on the fallback. The calls
// below take different kernels (dense.cl for Lq >= 32 and D = 64/128; decode.cl for small Lq, in
// place or split over 4096-key chunks + merge.cl), so this also checks that every path computes
// the one definition.
#include <fmt/format.h>

#include "attention/attention_test_util.h"

namespace sparq::test::attn {
namespace {

// Rows [i0, i0 + n) of every head of `full` ([1, H, L, D] out, [1, H, L] lse) == `part`
// ([1, H, n, D] or [1, H, D] for n = 1 decode).
void expect_rows(const AttentionResult& full, const AttentionResult& part, int heads,
                 std::int64_t l, std::int64_t i0, std::int64_t n, int d, const std::string& what) {
  const auto fo = download_f32(full.out), po = download_f32(part.out);
  const auto fl = full.lse.download<float>(), pl = part.lse.download<float>();
  std::vector<float> want_o, want_l;
  for (int h = 0; h < heads; ++h)
    for (std::int64_t i = i0; i < i0 + n; ++i) {
      want_l.push_back(fl[h * l + i]);
      for (int e = 0; e < d; ++e) want_o.push_back(fo[(h * l + i) * d + e]);
    }
  EXPECT_EQ(compare_bits(po, want_o), "") << what << ": O";
  EXPECT_EQ(compare_bits(pl, want_l), "") << what << ": lse";
}

void check_invariance(Context& ctx, int d, std::int64_t l, std::uint64_t seed) {
  const int hq = 2, hkv = 1;
  SCOPED_TRACE(fmt::format("{} D={} L={} seed={}", ctx.device().name, d, l, seed));
  const auto qh = random_normal(std::size_t(hq) * l * d, seed);
  const auto kh = random_normal(std::size_t(hkv) * l * d, seed + 1);
  const auto vh = random_normal(std::size_t(hkv) * l * d, seed + 2);
  const Tensor q = ctx.upload(qh, DType::f32, {1, hq, l, d});
  const Tensor k = ctx.upload(kh, DType::f32, {1, hkv, l, d});
  const Tensor v = ctx.upload(vh, DType::f32, {1, hkv, l, d});
  const AttentionOptions o{.causal = true, .return_lse = true};
  const AttentionResult full = attention(ctx, q, k, v, o);

  // Q rows [i0, i0 + n) against keys [0, i0 + n): bottom-right causal alignment.
  auto rows = [&](std::int64_t i0, std::int64_t n) {
    const Tensor qv = q.view({1, hq, n, d}, {hq * l * d, l * d, d, 1}, i0 * d);
    const Tensor kv = k.view({1, hkv, i0 + n, d}, {hkv * l * d, l * d, d, 1});
    const Tensor vv = v.view({1, hkv, i0 + n, d}, {hkv * l * d, l * d, d, 1});
    return attention(ctx, qv, kv, vv, o);
  };
  expect_rows(full, rows(l - 200, 200), hq, l, l - 200, 200, d, "chunked prefill (last 200)");
  expect_rows(full, rows(3000, 100), hq, l, 3000, 100, d, "chunked prefill (rows 3000..3099)");
  expect_rows(full, rows(l - 1, 1), hq, l, l - 1, 1, d, "decode");
  expect_rows(full, rows(l - 4, 4), hq, l, l - 4, 4, d, "speculative decode (4 rows)");

  // Paged decode of the same sequence (page size 16, shuffled pages), alone and in a batch.
  for (int page : {16, 64}) {
    const PagedHost ph =
        make_paged({kh}, {vh}, {static_cast<std::int32_t>(l)}, hkv, d, page, page == 16, seed);
    const Tensor qd = q.view({1, hq, d}, {hq * l * d, l * d, 1}, (l - 1) * d);
    expect_rows(full, attention_paged(ctx, qd, upload_paged(ctx, ph, DType::f32), o), hq, l, l - 1,
                1, d, fmt::format("paged decode, page size {}", page));
    const Tensor q4 = q.view({1, hq, 4, d}, {hq * l * d, l * d, d, 1}, (l - 4) * d);
    expect_rows(full, attention_paged(ctx, q4, upload_paged(ctx, ph, DType::f32), o), hq, l, l - 4,
                4, d, fmt::format("paged speculative decode, page size {}", page));
  }

  // Inside batches of other sequences: paged decode (batch index 1 of 3) and a varlen chunked
  // prefill (the last 200 rows as the middle sequence).
  {
    const auto other1 = random_normal(std::size_t(hkv) * 300 * d, seed + 5);
    const auto other2 = random_normal(std::size_t(hkv) * 50 * d, seed + 6);
    const PagedHost ph =
        make_paged({other1, kh, other2}, {other1, vh, other2},
                   {300, static_cast<std::int32_t>(l), 50}, hkv, d, 16, true, seed);
    std::vector<float> qb = random_normal(std::size_t(3) * hq * d, seed + 7);
    for (int h = 0; h < hq; ++h)
      for (int e = 0; e < d; ++e) qb[(hq + h) * d + e] = qh[(h * l + l - 1) * d + e];
    const AttentionResult r = attention_paged(ctx, ctx.upload(qb, DType::f32, {3, hq, d}),
                                              upload_paged(ctx, ph, DType::f32), o);
    const Tensor mid_o = r.out.view({1, hq, d}, {hq * d, d, 1}, hq * d);
    const Tensor mid_l = r.lse.view({1, hq}, {hq, 1}, hq);
    expect_rows(full, {mid_o, mid_l}, hq, l, l - 1, 1, d, "paged decode in a batch of 3");
  }
  {
    const std::int64_t n = 200, la = 70, lb = 33;
    std::vector<float> qp, kp, vp;  // packed [T, H, D]
    auto pack = [](std::vector<float>& dst, const std::vector<float>& src, int h, std::int64_t len,
                   std::int64_t from, std::int64_t count, int d) {
      for (std::int64_t i = from; i < from + count; ++i)
        for (int hh = 0; hh < h; ++hh)
          for (int e = 0; e < d; ++e) dst.push_back(src[(hh * len + i) * d + e]);
    };
    const auto qa = random_normal(std::size_t(hq) * la * d, seed + 8);
    const auto ka = random_normal(std::size_t(hkv) * la * d, seed + 9);
    const auto qc = random_normal(std::size_t(hq) * lb * d, seed + 10);
    const auto kc = random_normal(std::size_t(hkv) * lb * d, seed + 11);
    pack(qp, qa, hq, la, 0, la, d);
    pack(qp, qh, hq, l, l - n, n, d);
    pack(qp, qc, hq, lb, 0, lb, d);
    pack(kp, ka, hkv, la, 0, la, d);
    pack(kp, kh, hkv, l, 0, l, d);
    pack(kp, kc, hkv, lb, 0, lb, d);
    pack(vp, ka, hkv, la, 0, la, d);
    pack(vp, vh, hkv, l, 0, l, d);
    pack(vp, kc, hkv, lb, 0, lb, d);
    const std::vector<std::int32_t> cq{0, int(la), int(la + n), int(la + n + lb)},
        ck{0, int(la), int(la + l), int(la + l + lb)};
    const AttentionResult r =
        attention_varlen(ctx, ctx.upload(qp, DType::f32, {la + n + lb, hq, d}),
                         ctx.upload(kp, DType::f32, {la + l + lb, hkv, d}),
                         ctx.upload(vp, DType::f32, {la + l + lb, hkv, d}),
                         ctx.upload(cq, DType::i32, {4}), ctx.upload(ck, DType::i32, {4}), o);
    // Packed out [T, H, D] and lse [H, T] viewed as [1, H, n, D] / [1, H, n].
    const Tensor mid_o = r.out.view({1, hq, n, d}, {0, d, hq * d, 1}, la * hq * d);
    const Tensor mid_l = r.lse.view({1, hq, n}, {0, la + n + lb, 1}, la);
    expect_rows(full, {mid_o, mid_l}, hq, l, l - n, n, d, "varlen batch, middle sequence");
  }
}

TEST(AttentionInvariance, SameTokenSameBitsDevice) {
  Context dev = device_context();
  check_invariance(dev, 64, 5000, 800);
  check_invariance(dev, 80, 4200, 810);
}

TEST(AttentionInvariance, SameTokenSameBitsFallback) {
  Context cpu = fallback_context();
  check_invariance(cpu, 64, 5000, 800);
  check_invariance(cpu, 128, 4300, 820);
}

// merge_states of the two halves split at the 4096-key chunk boundary == the whole, bitwise.
void check_merge_split(Context& ctx, int d, std::uint64_t seed) {
  SCOPED_TRACE(fmt::format("{} D={} seed={}", ctx.device().name, d, seed));
  const int hq = 2, hkv = 2;
  const std::int64_t lq = 40, lk = 6000;
  const Tensor q =
      ctx.upload(random_normal(std::size_t(hq) * lq * d, seed), DType::f32, {1, hq, lq, d});
  const Tensor k =
      ctx.upload(random_normal(std::size_t(hkv) * lk * d, seed + 1), DType::f32, {1, hkv, lk, d});
  const Tensor v =
      ctx.upload(random_normal(std::size_t(hkv) * lk * d, seed + 2), DType::f32, {1, hkv, lk, d});
  const AttentionOptions o{.return_lse = true};
  const AttentionResult full = attention(ctx, q, k, v, o);
  auto part = [&](std::int64_t j0, std::int64_t n) {
    const std::vector<std::int64_t> shape{1, hkv, n, d}, strides{hkv * lk * d, lk * d, d, 1};
    return attention(ctx, q, k.view(shape, strides, j0 * d), v.view(shape, strides, j0 * d), o);
  };
  const AttentionResult a = part(0, 4096), b = part(4096, lk - 4096);
  const AttentionResult m = merge_states(ctx, a.out, a.lse, b.out, b.lse);
  EXPECT_EQ(compare_bits(m.out.download<float>(), full.out.download<float>()), "");
  EXPECT_EQ(compare_bits(m.lse.download<float>(), full.lse.download<float>()), "");
}

TEST(AttentionInvariance, MergeStatesEqualsWhole) {
  Context dev = device_context(), cpu = fallback_context();
  check_merge_split(dev, 64, 900);
  check_merge_split(cpu, 64, 900);
  check_merge_split(dev, 80, 901);
}

}  // namespace
}  // namespace sparq::test::attn
