// decode_stream.cl (the bandwidth decode path) and decode.cl (the general path) give the same
// bits as the fallback on the same paged calls: f32, bf16 and int8 pages, NHD and HND, GQA
// groups of 1, 4 and 8 query heads, Lq 1 and 3 (split over 4096-key chunks) and 20 (whole rows),
// D 64 and 128,
// an empty sequence, and NaN in every unused page slot (a kernel that read one would show it).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "attention_test_util.h"
#include "runtime/runtime_test_util.h"

namespace sparq::test::attn {
namespace {

struct StreamCase {
  int hq, hkv, d, lq, page;
  bool nhd;
  DType storage;
};

// int8 pages from f32 pages: codes and one scale per (page, slot, head) row (absmax / 127).
void to_int8(Context& ctx, const PagedHost& p, PagedKV& kv) {
  for (int side = 0; side < 2; ++side) {
    const std::vector<float>& x = side == 0 ? p.k_pages : p.v_pages;
    const std::size_t rows = x.size() / static_cast<std::size_t>(p.d);
    std::vector<std::int8_t> codes(x.size());
    std::vector<float> scales(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      float amax = 0.0f;
      for (int e = 0; e < p.d; ++e) amax = std::max(amax, std::fabs(x[r * p.d + e]));
      const float s = amax == amax ? amax / 127.0f : 1.0f;  // unused (NaN) rows: any codes
      scales[r] = s;
      for (int e = 0; e < p.d; ++e) {
        const float y = x[r * p.d + e] / s;
        codes[r * p.d + e] =
            y == y ? static_cast<std::int8_t>(std::clamp(std::lround(y), -127L, 127L)) : 0;
      }
    }
    std::vector<std::int64_t> shape = p.pages_shape();
    Tensor c = ctx.upload(codes, DType::i8, shape);
    shape.pop_back();
    Tensor sc = ctx.upload(scales, DType::f32, shape);
    (side == 0 ? kv.k_pages : kv.v_pages) = c;
    (side == 0 ? kv.k_scales : kv.v_scales) = sc;
  }
}

TEST(DecodeStream, StreamAndGeneralKernelsEqualFallback) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 900;
  for (const StreamCase c : {StreamCase{8, 2, 128, 1, 16, true, DType::i8},
                             StreamCase{8, 1, 128, 3, 64, false, DType::bf16},
                             StreamCase{4, 4, 64, 20, 16, true, DType::f32},
                             StreamCase{8, 2, 64, 1, 16, false, DType::f32}}) {
    // Past one 4096-key chunk (split decode) in one case only: PoCL time.
    const std::vector<std::int32_t> lens = c.lq <= 3 && c.d == 128
                                               ? std::vector<std::int32_t>{4200, 37, 0, 130}
                                               : std::vector<std::int32_t>{300, 37, 0, 130};
    SCOPED_TRACE(fmt::format("Hq={} Hkv={} D={} Lq={} page={} {} {}", c.hq, c.hkv, c.d, c.lq,
                             c.page, c.nhd ? "NHD" : "HND", dt(c.storage)));
    std::vector<std::vector<float>> k, v;
    for (auto len : lens) {
      k.push_back(random_normal(static_cast<std::size_t>(c.hkv) * len * c.d, ++seed));
      v.push_back(random_normal(static_cast<std::size_t>(c.hkv) * len * c.d, ++seed));
    }
    const PagedHost p = make_paged(k, v, lens, c.hkv, c.d, c.page, c.nhd, ++seed);
    const std::vector<float> q = random_normal(lens.size() * c.hq * c.lq * c.d, ++seed);
    const std::vector<std::int64_t> qs{static_cast<std::int64_t>(lens.size()), c.hq, c.lq, c.d};
    const AttentionOptions o{.causal = true, .return_lse = true};
    auto run = [&](Context& ctx) {
      PagedKV kv = upload_paged(ctx, p, c.storage == DType::i8 ? DType::f32 : c.storage);
      if (c.storage == DType::i8) to_int8(ctx, p, kv);
      return attention_paged(ctx, ctx.upload(q, DType::f32, qs), kv, o);
    };
    const AttentionResult want = run(cpu);
    expect_same(run(dev), want, "decode_stream.cl");
    const ScopedEnv general("SPARQ_DECODE", "general");
    expect_same(run(dev), want, "decode.cl");
  }
}

}  // namespace
}  // namespace sparq::test::attn
