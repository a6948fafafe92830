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
#include "host/src/attention/attention_kernels.h"
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

// decode_bw.cl in the knob settings the sweeps try (SPARQ_TUNE_DECODE) equals the fallback. Seven
// programs in all (PoCL time): P.V layouts of 1, 2 and 4 columns x 1, 4 and 8 rows per
// work-item, 64, 128 and 256 work-items.

// Runs `c` on the fallback, then on the device once per SPARQ_TUNE_DECODE setting.
void expect_bw_variants(const StreamCase& c, const std::vector<std::int32_t>& lens,
                        const std::vector<const char*>& knobs, std::uint64_t seed) {
  Context dev = device_context(), cpu = fallback_context();
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
  for (const char* knob : knobs) {
    SCOPED_TRACE(fmt::format("Hq={} Hkv={} D={} Lq={} page={} {} {} SPARQ_TUNE_DECODE={}", c.hq,
                             c.hkv, c.d, c.lq, c.page, c.nhd ? "NHD" : "HND", dt(c.storage), knob));
    const ScopedEnv tune("SPARQ_TUNE_DECODE", knob);
    expect_same(run(dev), want, "decode_bw.cl");
  }
}

// int8 pages, GQA group of 4 at Lq 1 on one kv head: a 4096-key chunk edge and tile edges; 4
// rows (no padding) and 8 (P.V row groups of padding only), 2 and 4 columns per work-item;
// codes converted by the bit pattern (cvt=1; cvt=2 is its prmt form on NVIDIA, 1 elsewhere) in
// both bandwidth kernels; double-buffered tiles
// (async=1: plain copies on PoCL) with 2 score work-items per key.
TEST(DecodeBw, Int8ChunkEdgeEqualsFallback) {
  expect_bw_variants(
      {4, 1, 128, 1, 16, true, DType::i8}, {4160, 64, 0, 65},
      {"kernel=1,cvt=1", "kernel=1,rows=8,cols=4,async=1,threads=128,cvt=2", "kernel=0,cvt=1"},
      1900);
}

// f32 pages, no GQA, Lq 3 (causal edges inside a tile): 128 work-items, 1 column x 4 rows; 256
// work-items (4 per key), 1 column x 1 row.
TEST(DecodeBw, F32CausalEdgeEqualsFallback) {
  expect_bw_variants({3, 3, 64, 3, 16, false, DType::f32}, {130, 3, 64, 0},
                     {"kernel=1,rows=8,threads=128,cols=1", "kernel=1,threads=256"}, 1910);
}

// bf16 pages, group of 4 at Lq 3 (12 rows): 8 + 8 rows (padding) and 3 row groups of 4;
// double-buffered tiles.
TEST(DecodeBw, Bf16RowGroupsEqualFallback) {
  expect_bw_variants({8, 2, 64, 3, 64, false, DType::bf16}, {130, 3, 64, 0},
                     {"kernel=1", "kernel=1,rows=4,threads=128,cols=4,async=1"}, 1920);
}

// decode_flat.cl (kernel=2): the same calls give the same bits. int8 pages across a chunk edge
// (split decode; the default layout, the program the build-every-variant test builds: spans of
// 256 keys, 4 keys per work-item); f32 pages with causal edges inside a tile (Lq 3; spans of one
// tile, 8 rows, 5 of them padding) and Lq 20 over two chunks unsplit; bf16 pages (spans of 256
// running past the last visible key) in 3 row groups, 4 columns a work-item, K and V copied to
// local memory as async=1,kloc=1 do (plain copies on PoCL).
TEST(DecodeFlat, Int8ChunkEdgeEqualsFallback) {
  expect_bw_variants({4, 1, 128, 1, 16, true, DType::i8}, {4160, 64, 0, 65}, {"kernel=2"}, 1930);
}

TEST(DecodeFlat, F32CausalEdgeEqualsFallback) {
  expect_bw_variants({3, 3, 64, 3, 16, false, DType::f32}, {130, 3, 64, 0},
                     {"kernel=2,rows=8,threads=128,cols=1,span=64"}, 1940);
  // Lq 20 (> 16: no split): one work-group walks two chunks and merges them in place.
  expect_bw_variants({2, 2, 64, 20, 16, true, DType::f32}, {4100, 5},
                     {"kernel=2,rows=8,threads=128,cols=1,span=64"}, 1945);
}

TEST(DecodeFlat, Bf16RowGroupsEqualFallback) {
  expect_bw_variants({8, 2, 64, 3, 64, false, DType::bf16}, {130, 3, 64, 0},
                     {"kernel=2,rows=4,threads=128,cols=4,kpi=4,async=1,kloc=1"}, 1950);
}

// decode_flat.cl's span is lowered until its local memory fits (host only): local_bytes() is the
// kernel's __local arrays (ptxas, sm_90: 44560 B at 4 rows, 64 work-items, 256 keys, D 128, int8).
TEST(DecodeFlat, SpanFitsLocalMemory) {
  using attention_detail::DecodeTuning;
  const ScopedEnv tune("SPARQ_TUNE_DECODE", "kernel=2,kloc=0");
  const DecodeTuning t = DecodeTuning::from_env(true, true);
  EXPECT_EQ(t.kernel, 2);
  const auto i8 = t.flat(128, 1, 4, true, true, 48 * 1024);
  EXPECT_EQ(i8.span, 256);
  EXPECT_EQ(i8.local_bytes(), 44560);
  EXPECT_EQ(t.flat(128, 1, 8, true, true, 48 * 1024).span, 128);  // 8 rows
  EXPECT_EQ(t.flat(128, 4, 4, true, true, 48 * 1024).span, 64);   // f32
  EXPECT_EQ(t.flat(128, 4, 4, true, true, 1024).span, 64);        // never below one tile
  DecodeTuning k = t;
  k.kloc = true;
  EXPECT_EQ(k.flat(128, 1, 4, true, true, 48 * 1024).span, 128);
  EXPECT_NE(i8.defines().find("-DDF_SPAN=256 -DDF_KPI=1"), std::string::npos) << i8.defines();
  for (const char* bad : {"kernel=3", "span=100", "span=32", "kpi=3", "kloc=2"}) {
    const ScopedEnv b("SPARQ_TUNE_DECODE", bad);
    EXPECT_THROW(DecodeTuning::from_env(true, true), Error) << bad;
  }
}

// The GPU default for int8 pages (NVIDIA, sm_80+): decode_flat.cl, 128 work-items of one column,
// 128 registers; knobs named in the environment stay as named; other element sizes or devices
// keep decode_stream.cl.
TEST(DecodeFlat, DefaultForInt8PagesOnNvidia) {
  using attention_detail::DecodeTuning;
  {
    const ScopedEnv none("SPARQ_TUNE_DECODE", std::nullopt);
    const DecodeTuning t = DecodeTuning::from_env(true, true).for_call(1, true);
    EXPECT_EQ(t.kernel, 2);
    EXPECT_TRUE(t.async);
    EXPECT_EQ(t.magic_i8, 2);
    EXPECT_EQ(t.threads, 128);
    EXPECT_EQ(t.cols, 1);
    EXPECT_EQ(t.nv_max_regs, 128);
    EXPECT_EQ(DecodeTuning::from_env(true, true).for_call(4, true).kernel, 0);     // f32 pages
    EXPECT_EQ(DecodeTuning::from_env(false, false).for_call(1, false).kernel, 0);  // no PTX
  }
  {
    const ScopedEnv some("SPARQ_TUNE_DECODE", "threads=64,cols=2,regs=0");
    const DecodeTuning t = DecodeTuning::from_env(true, true).for_call(1, true);
    EXPECT_EQ(t.kernel, 2);
    EXPECT_EQ(t.threads, 64);
    EXPECT_EQ(t.cols, 2);
    EXPECT_EQ(t.nv_max_regs, 0);
  }
  {
    const ScopedEnv bw("SPARQ_TUNE_DECODE", "kernel=1");
    const DecodeTuning t = DecodeTuning::from_env(true, true).for_call(1, true);
    EXPECT_EQ(t.kernel, 1);
    EXPECT_EQ(t.threads, 64);  // the knob defaults, not the decode_flat.cl ones
  }
}

// D = 256 (issue 8): decode_flat.cl in its D = 256 default (no knobs: 128 work-items, 2 columns,
// the span fitted to 48 KiB) gives the fallback's bits. int8 pages, GQA group of 4 at Lq 1 across
// a 4096-key chunk edge (split decode); f16 pages at Lq 3 (12 rows: 8 + 4 with padding, causal
// edges inside a tile), then contiguous f16 K/V (GQA group of 8 at Lq 1).
TEST(DecodeFlat, HeadDim256Int8PagedEqualsFallback) {
  expect_bw_variants({4, 1, 256, 1, 16, true, DType::i8}, {4160, 65, 0}, {""}, 1960);
}

TEST(DecodeFlat, HeadDim256F16EqualsFallback) {
  expect_bw_variants({8, 2, 256, 3, 16, false, DType::f16}, {130, 3, 0}, {""}, 1970);
  Context dev = device_context(), cpu = fallback_context();
  const ScopedEnv none("SPARQ_TUNE_DECODE", std::nullopt);
  const int hq = 8, hkv = 1, d = 256, lk = 200;  // 8 rows: the paged case's program
  auto tq = upload_pair(dev, cpu, random_normal(hq * d, 1980), DType::f32, {1, hq, 1, d});
  auto tk = upload_pair(dev, cpu, random_normal(hkv * lk * d, 1981), DType::f16, {1, hkv, lk, d});
  auto tv = upload_pair(dev, cpu, random_normal(hkv * lk * d, 1982), DType::f16, {1, hkv, lk, d});
  const AttentionOptions o{.causal = true, .return_lse = true};
  expect_same(attention(dev, tq.dev, tk.dev, tv.dev, o), attention(cpu, tq.cpu, tk.cpu, tv.cpu, o),
              "decode_flat.cl, contiguous f16, D 256");
}

// The one routing decision (host only): D = 256 goes to decode_flat.cl whatever the kernel knob,
// with a span that fits 48 KiB (int8 128 keys, f16 64); f32 pages (one tile of raw V rows is
// 66 KiB) stay on decode.cl. D = 128 keeps its routes.
TEST(DecodeFlat, HeadDim256RoutesToFlat) {
  using attention_detail::DecodeRoute;
  using attention_detail::DecodeTuning;
  using attention_detail::route_decode;
  const std::int64_t kib48 = 48 * 1024, big = 4 << 20;
  for (const bool nv : {true, false}) {
    SCOPED_TRACE(nv ? "NVIDIA sm_80+" : "other device");
    const DecodeTuning t = DecodeTuning::from_env(nv, nv);
    for (const std::int64_t rows : {4, 8}) {
      const DecodeRoute i8 = route_decode(t, 256, 1, rows, nv, nv, nv ? kib48 : big);
      EXPECT_EQ(i8.kernel, 2);
      EXPECT_EQ(i8.flat.span, 128);
      EXPECT_EQ(i8.flat.bw.threads, 128);
      EXPECT_EQ(i8.flat.bw.cols, 2);
      EXPECT_EQ(i8.flat.bw.nv_max_regs, 0);
      EXPECT_LE(i8.flat.local_bytes(), kib48);
      const DecodeRoute f16 = route_decode(t, 256, 2, rows, nv, nv, nv ? kib48 : big);
      EXPECT_EQ(f16.kernel, 2);
      EXPECT_EQ(f16.flat.span, 64);
      EXPECT_LE(f16.flat.local_bytes(), kib48);
      EXPECT_EQ(route_decode(t, 256, 4, rows, nv, nv, big).kernel, -1);  // f32
    }
    EXPECT_EQ(route_decode(t, 128, 4, 4, nv, nv, kib48).kernel, 0);
    EXPECT_EQ(route_decode(t, 128, 1, 4, nv, nv, kib48).kernel, nv ? 2 : 0);
  }
  const ScopedEnv k0("SPARQ_TUNE_DECODE", "kernel=0");
  EXPECT_EQ(route_decode(DecodeTuning::from_env(true, true), 256, 1, 4, true, true, kib48).kernel,
            2);
}

TEST(DecodeBw, BadKnobIsAnError) {
  Context dev = device_context();
  const ScopedEnv tune("SPARQ_TUNE_DECODE", "rows=5");
  if (dev.backend() == Backend::fallback)
    GTEST_SKIP()
        << "the knobs are read by the OpenCL launch; the test context has no OpenCL device";
  const std::vector<std::int32_t> lens{5};
  const PagedHost p =
      make_paged({random_normal(5 * 64, 1)}, {random_normal(5 * 64, 2)}, lens, 1, 64, 16, true, 3);
  const Tensor q = dev.upload(random_normal(64, 4), DType::f32, {1, 1, 1, 64});
  EXPECT_THROW(attention_paged(dev, q, upload_paged(dev, p, DType::f32), AttentionOptions{}),
               Error);
}

}  // namespace
}  // namespace sparq::test::attn
