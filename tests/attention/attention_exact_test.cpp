// Kernel (sparq::test::device_context(): PoCL in CI, the GPU with SPARQ_TEST_DEVICE=gpu) ==
// fallback, bit for bit, over the dense attention shape list. Each TEST is one process (PoCL
// builds a kernel once per process), so the cases are grouped by the kernels they run:
// Lq >= 32 with D = 64/128 runs dense.cl; other D or small Lq run decode.cl (split + merge.cl
// when Lq is small and Lk > 4096).
#include <fmt/format.h>

#include "attention/attention_test_util.h"

namespace sparq::test::attn {
namespace {

struct DenseCase {
  int b = 1, hq = 1, hkv = 1;
  std::int64_t lq = 1, lk = 1;
  int d = 64;
  bool causal = false;
  DType in = DType::f32, out = DType::f32;
  bool blhd = false;  // Q/K/V stored [B, L, H, D], passed as strided [B, H, L, D] views
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format("B={} Hq={} Hkv={} Lq={} Lk={} D={} causal={} in={} out={}{} seed={}", b, hq,
                       hkv, lq, lk, d, causal, dt(in), dt(out), blhd ? " [B,L,H,D]" : "", seed);
  }
};

// Uploads x ([B, H, L, D] order) as [B, H, L, D], or stored [B, L, H, D] and viewed as
// [B, H, L, D] with strides.
Pair upload_bhld(Context& dev, Context& cpu, const std::vector<float>& x, DType t, int b, int h,
                 std::int64_t l, int d, bool blhd) {
  if (!blhd) return upload_pair(dev, cpu, x, t, {b, h, l, d});
  std::vector<float> y(x.size());
  for (int bi = 0; bi < b; ++bi)
    for (int hi = 0; hi < h; ++hi)
      for (std::int64_t li = 0; li < l; ++li)
        for (int e = 0; e < d; ++e)
          y[((bi * l + li) * h + hi) * d + e] = x[((bi * h + hi) * l + li) * d + e];
  Pair p = upload_pair(dev, cpu, y, t, {b, l, h, d});
  const std::vector<std::int64_t> shape{b, h, l, d}, strides{l * h * d, d, h * d, 1};
  return {p.dev.view(shape, strides), p.cpu.view(shape, strides)};
}

void check_dense(Context& dev, Context& cpu, const DenseCase& c) {
  SCOPED_TRACE(c.name());
  const auto q = random_normal(std::size_t(c.b) * c.hq * c.lq * c.d, c.seed);
  const auto k = random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 1);
  const auto v = random_normal(std::size_t(c.b) * c.hkv * c.lk * c.d, c.seed + 2);
  auto tq = upload_bhld(dev, cpu, q, c.in, c.b, c.hq, c.lq, c.d, c.blhd);
  auto tk = upload_bhld(dev, cpu, k, c.in, c.b, c.hkv, c.lk, c.d, c.blhd);
  auto tv = upload_bhld(dev, cpu, v, c.in, c.b, c.hkv, c.lk, c.d, c.blhd);
  const AttentionOptions o{.causal = c.causal, .return_lse = true, .out_dtype = c.out};
  expect_same(attention(dev, tq.dev, tk.dev, tv.dev, o), attention(cpu, tq.cpu, tk.cpu, tv.cpu, o),
              c.name());
}

// dense.cl (D = 64, 128): lengths around the tile size, Lq != Lk both ways, B = 2, GQA,
// storage dtypes, strided views.
TEST(AttentionExact, DenseKernelShapes) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 100;
  for (int d : {64, 128})
    for (bool causal : {false, true}) {
      for (std::int64_t l : {63, 64, 65, 1000})
        check_dense(dev, cpu, {.lq = l, .lk = l, .d = d, .causal = causal, .seed = seed++});
      check_dense(dev, cpu,
                  {.b = 2,
                   .hq = 2,
                   .hkv = 1,
                   .lq = 100,
                   .lk = 300,
                   .d = d,
                   .causal = causal,
                   .seed = seed++});
      check_dense(dev, cpu, {.lq = 130, .lk = 70, .d = d, .causal = causal, .seed = seed++});
    }
  check_dense(dev, cpu,
              {.hq = 32, .hkv = 8, .lq = 65, .lk = 65, .d = 64, .causal = true, .seed = seed++});
  check_dense(dev, cpu,
              {.hq = 32, .hkv = 1, .lq = 33, .lk = 97, .d = 128, .causal = true, .seed = seed++});
  for (DType in : {DType::f16, DType::bf16})
    for (DType out : {DType::f32, DType::f16, DType::bf16})
      check_dense(dev, cpu,
                  {.hq = 2,
                   .hkv = 2,
                   .lq = 70,
                   .lk = 70,
                   .d = 64,
                   .causal = true,
                   .in = in,
                   .out = out,
                   .seed = seed++});
  check_dense(dev, cpu,
              {.hq = 1, .lq = 64, .lk = 64, .d = 128, .out = DType::bf16, .seed = seed++});
  check_dense(dev, cpu,
              {.b = 2,
               .hq = 4,
               .hkv = 2,
               .lq = 96,
               .lk = 96,
               .d = 128,
               .causal = true,
               .blhd = true,
               .seed = seed++});
}

// The dense kernel's speed knobs (prefetch, unroll) never change a bit: run the configuration
// this device does not use by default over shapes that cross tile and chunk edges (on PoCL: the
// GPU's prefetching, but not unrolled: PoCL 3.1's LLVM 15 crashes in its inliner when it
// compiles the unrolled kernel for launch). SPARQ_TUNE_DENSE is read at each launch, and each
// TEST is its own process.
TEST(AttentionExact, DenseKernelOtherConfig) {
  Context dev = device_context(), cpu = fallback_context();
  const bool gpu = dev.device().is_gpu;
  ASSERT_EQ(setenv("SPARQ_TUNE_DENSE",
                   gpu ? "threads=128,prefetch=0,unroll=0,exp=1"
                       : "threads=256,prefetch=1,unroll=0,exp=1",
                   1),
            0);
  std::uint64_t seed = 300;
  for (int d : {64, 128}) {
    check_dense(dev, cpu, {.lq = 65, .lk = 65, .d = d, .causal = true, .seed = seed++});
    check_dense(dev, cpu,
                {.b = 2, .hq = 4, .hkv = 2, .lq = 100, .lk = 300, .d = d, .seed = seed++});
    check_dense(dev, cpu, {.lq = 130, .lk = 70, .d = d, .causal = true, .seed = seed++});
  }
  check_dense(dev, cpu,
              {.lq = 4200, .lk = 4200, .d = 64, .causal = true, .in = DType::bf16, .seed = seed++});
  unsetenv("SPARQ_TUNE_DENSE");
}

// The register-blocked layout (SPARQ_TUNE_DENSE map=1, attention/prefill_body_rb.h) == fallback
// bit for bit: tile and causal edges, Lq != Lk both ways (rows that see no key), GQA, B = 2,
// strided views, bf16 storage and output, two chunks; with and without prefetch, both slice
// depths and both exp2 roundings (PoCL: not unrolled, see above).
TEST(AttentionExact, DenseKernelMap1) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 700;
  // one program each: D = 64 without prefetch, 16-d slices; D = 128 with prefetch, exp=1
  for (int d : {64, 128}) {
    ASSERT_EQ(
        setenv("SPARQ_TUNE_DENSE",
               d == 64 ? "map=1,prefetch=0,unroll=0,ds=16" : "map=1,prefetch=1,unroll=0,exp=1", 1),
        0);
    check_dense(dev, cpu, {.lq = 65, .lk = 65, .d = d, .causal = true, .seed = seed++});
    check_dense(dev, cpu,
                {.b = 2, .hq = 4, .hkv = 2, .lq = 100, .lk = 300, .d = d, .seed = seed++});
    check_dense(dev, cpu, {.lq = 130, .lk = 70, .d = d, .causal = true, .seed = seed++});
    if (d == 128) {  // storage paths, once
      check_dense(
          dev, cpu,
          {.hq = 2, .lq = 40, .lk = 200, .d = d, .causal = true, .blhd = true, .seed = seed++});
      check_dense(dev, cpu,
                  {.lq = 70, .lk = 70, .d = d, .causal = true, .in = DType::bf16, .seed = seed++});
    }
    // two chunks of 4096 keys (merge through the output for f32, through scratch for bf16)
    check_dense(dev, cpu,
                {.lq = 33,
                 .lk = 4200,
                 .d = d,
                 .causal = true,
                 .out = d == 64 ? DType::f32 : DType::bf16,
                 .seed = seed++});
  }
  unsetenv("SPARQ_TUNE_DENSE");
}

// Several chunks of 4096 keys: in-kernel chunk merge (dense.cl and decode.cl), the fp32 scratch
// of f16/bf16 outputs, split decode.
TEST(AttentionExact, LongSequences) {
  Context dev = device_context(), cpu = fallback_context();
  check_dense(dev, cpu, {.lq = 4096, .lk = 4096, .d = 64, .causal = true, .seed = 200});
  check_dense(dev, cpu, {.lq = 9000, .lk = 9000, .d = 64, .causal = true, .seed = 201});
  check_dense(dev, cpu,
              {.lq = 64,
               .lk = 9000,
               .d = 128,
               .causal = false,
               .in = DType::bf16,
               .out = DType::f16,
               .seed = 202});
  check_dense(dev, cpu, {.lq = 100, .lk = 4200, .d = 80, .causal = true, .seed = 203});
  check_dense(dev, cpu, {.hq = 4, .hkv = 2, .lq = 1, .lk = 9000, .d = 128, .seed = 204});
  check_dense(dev, cpu,
              {.hq = 32, .hkv = 1, .lq = 3, .lk = 5000, .d = 64, .causal = true, .seed = 205});
}

// decode.cl: D other than 64/128 (up to 256), and small Lq (decode) with any D.
TEST(AttentionExact, GeneralKernelShapes) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 300;
  for (int d : {80, 256, 1, 6})
    for (bool causal : {false, true})
      for (std::int64_t l : {1, 63, 65})
        check_dense(dev, cpu, {.lq = l, .lk = l, .d = d, .causal = causal, .seed = seed++});
  for (int d : {64, 128})
    for (std::int64_t lq : {1, 5, 31})
      check_dense(
          dev, cpu,
          {.b = 2, .hq = 8, .hkv = 2, .lq = lq, .lk = 150, .d = d, .causal = true, .seed = seed++});
  check_dense(dev, cpu, {.hq = 32, .hkv = 8, .lq = 1, .lk = 333, .d = 128, .seed = seed++});
  check_dense(dev, cpu, {.hq = 32, .hkv = 1, .lq = 1, .lk = 100, .d = 96, .seed = seed++});
  check_dense(dev, cpu,
              {.b = 2,
               .hq = 2,
               .hkv = 2,
               .lq = 40,
               .lk = 40,
               .d = 72,
               .causal = true,
               .in = DType::f16,
               .out = DType::bf16,
               .blhd = true,
               .seed = seed++});
  check_dense(dev, cpu, {.lq = 9, .lk = 5, .d = 48, .causal = true, .seed = seed++});
}

}  // namespace
}  // namespace sparq::test::attn
