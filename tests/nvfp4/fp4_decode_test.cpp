// fp4_decode_packed (kernels_cl/nvfp4/fp4_decode.cl): NVFP4 attention of short query blocks
// (Lq = 1..127) split at the 4096-key chunks. Kernel == fallback bit for bit (Lq 1, 7, 64, 127;
// GQA; causal rows at the end of the context; a delta row; a context past one chunk with one
// head so the split + merge path runs); == fp4_attention_packed at every length (the prefill
// kernel restarts its state at each chunk too), on each dot path PoCL runs (portable, emulated
// MMA; mma.sync on NVIDIA); accuracy of the split path against float64 attention; errors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <mutex>

#include "context_impl.h"
#include "fp4_test_util.h"
#include "host/src/nvfp4/nvfp4_common.h"
#include "reference/attention_ref.h"
#include "runtime/runtime_test_util.h"
#include "test_support.h"

namespace sparq::test {
namespace {

struct Fp4DecCase {
  int hq = 4, hkv = 2, d = 64;
  std::int64_t lq = 1, lk = 200;
  bool causal = true, with_delta = false;
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format("Hq={} Hkv={} D={} Lq={} Lk={} causal={} delta={} seed={}", hq, hkv, d, lq,
                       lk, causal, with_delta, seed);
  }
};

struct HostIn {
  std::vector<float> q, k, v, delta;
};
HostIn make_in(const Fp4DecCase& c) {
  HostIn h{random_normal(std::size_t(c.hq) * c.lq * c.d, c.seed),
           random_normal(std::size_t(c.hkv) * c.lk * c.d, c.seed + 1),
           random_normal(std::size_t(c.hkv) * c.lk * c.d, c.seed + 2),
           {}};
  if (c.with_delta) h.delta = random_normal(std::size_t(c.hq) * c.lk, c.seed + 3, 0.5f);
  return h;
}

struct Fp4Run {
  Tensor decode, prefill;
};
Fp4Run run(Context& ctx, const Fp4DecCase& c, const HostIn& h, bool prefill) {
  const Fp4Packed q = fp4_quantize_rows(ctx, ctx.upload(h.q, DType::f32, {1, c.hq, c.lq, c.d}));
  const Fp4Packed k = fp4_quantize_rows(ctx, ctx.upload(h.k, DType::f32, {1, c.hkv, c.lk, c.d}));
  const Fp4PackedT v = fp4_quantize_tokens(ctx, ctx.upload(h.v, DType::f32, {1, c.hkv, c.lk, c.d}));
  Tensor dl;
  if (c.with_delta) dl = ctx.upload(h.delta, DType::f32, {1, c.hq, 1, c.lk});
  const Tensor* delta = c.with_delta ? &dl : nullptr;
  const AttentionOptions o{.causal = c.causal};
  return {fp4_decode_packed(ctx, q, k, v, delta, o),
          prefill ? fp4_attention_packed(ctx, q, k, v, delta, o) : Tensor{}};
}

void check(Context& dev, Context& cpu, const Fp4DecCase& c) {
  SCOPED_TRACE(c.name());
  const HostIn h = make_in(c);
  const Fp4Run rd = run(dev, c, h, true), rc = run(cpu, c, h, true);
  const auto od = rd.decode.download<float>(), oc = rc.decode.download<float>();
  EXPECT_EQ(compare_bits(od, oc), "") << "kernel != fallback";
  EXPECT_EQ(compare_bits(od, rd.prefill.download<float>()), "") << "decode != prefill (device)";
  EXPECT_EQ(compare_bits(oc, rc.prefill.download<float>()), "") << "decode != prefill (cpu)";
}

TEST(Fp4Decode, KernelEqualsFallbackShortQueries) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 800;
  for (std::int64_t lq : {1, 7}) check(dev, cpu, {.lq = lq, .seed = seed++});
  for (std::int64_t lq : {64, 127})
    check(dev, cpu, {.hq = 2, .hkv = 1, .lq = lq, .lk = 150, .seed = seed++});
  check(dev, cpu, {.hq = 2, .hkv = 2, .lq = 7, .lk = 3, .seed = seed++});  // rows see no key
  check(dev, cpu,
        {.hq = 3,
         .hkv = 1,
         .d = 128,
         .lq = 5,
         .lk = 130,
         .causal = false,
         .with_delta = true,
         .seed = seed++});
}

TEST(Fp4Decode, SplitPastOneChunkEqualsFallbackAndReference) {
  Context dev = device_context(), cpu = fallback_context();
  const Fp4DecCase c{.hq = 2, .hkv = 1, .lq = 7, .lk = 4200, .seed = 850};
  check(dev, cpu, c);
  check(dev, cpu,
        {.hq = 1,
         .hkv = 1,
         .d = 128,
         .lq = 1,
         .lk = 8193,
         .causal = false,
         .with_delta = true,
         .seed = 860});
  const HostIn h = make_in(c);
  const Fp4Run r = run(cpu, c, h, true);
  const auto want = ref::attention(h.q, h.k, h.v, {1, c.hq, c.hkv, c.d, c.lq, c.lk}, true).out;
  const Accuracy a = accuracy(r.decode.download<float>(), want);
  const Accuracy b = accuracy(r.prefill.download<float>(), want);
  // NVFP4 without smoothing at D = 64 on N(0, 1): cosine 0.9836, rel L1 0.182 both ways (the
  // 0.99 bar of the spec is for D = 128 with smoothing); the chunked order costs no accuracy.
  EXPECT_GE(a.cosine, 0.98) << "rel L1 " << a.rel_l1;
  EXPECT_LE(a.rel_l1, 0.2);
  EXPECT_NEAR(a.cosine, b.cosine, 1e-3);
  EXPECT_NEAR(a.rel_l1, b.rel_l1, 1e-2);
}

// Batch invariance past one chunk: a row decoded (fp4_decode_packed, split + merge) has the bits
// of the same row of fp4_attention_packed on every dot path of the prefill kernel (rows whose
// causal end crosses the 4096 boundary, a last chunk of one key, GQA, delta; D 128 past two
// chunks: SplitPastOneChunkEqualsFallbackAndReference, portable path).
TEST(Fp4Decode, LongContextPrefillEqualsDecodeEveryPath) {
  Context dev = device_context();
  if (dev.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  using nvfp4_detail::Fp4DotPath;
  std::vector<Fp4DotPath> paths{Fp4DotPath::portable, Fp4DotPath::emulated};
  if (dev.impl()->device->quirks().inline_ptx) paths.push_back(Fp4DotPath::mma);
  const Fp4DecCase cases[] = {
      {.hq = 4, .hkv = 2, .lq = 127, .lk = 4200, .with_delta = true, .seed = 870},
      {.hq = 2, .hkv = 1, .lq = 9, .lk = 8193, .causal = false, .seed = 871},
  };
  for (const Fp4DecCase& c : cases) {
    SCOPED_TRACE(c.name());
    const HostIn h = make_in(c);
    Context& ctx = dev;
    const Fp4Packed q = fp4_quantize_rows(ctx, ctx.upload(h.q, DType::f32, {1, c.hq, c.lq, c.d}));
    const Fp4Packed k = fp4_quantize_rows(ctx, ctx.upload(h.k, DType::f32, {1, c.hkv, c.lk, c.d}));
    const Fp4PackedT v =
        fp4_quantize_tokens(ctx, ctx.upload(h.v, DType::f32, {1, c.hkv, c.lk, c.d}));
    Tensor dl;
    if (c.with_delta) dl = ctx.upload(h.delta, DType::f32, {1, c.hq, 1, c.lk});
    const Tensor* delta = c.with_delta ? &dl : nullptr;
    const AttentionOptions o{.causal = c.causal};
    const auto want = fp4_decode_packed(ctx, q, k, v, delta, o).download<float>();
    for (const Fp4DotPath path : paths) {
      Tensor out;
      {
        std::lock_guard lock(ctx.impl()->mutex);
        const nvfp4_detail::Fp4Plan p =
            nvfp4_detail::plan_fp4_packed("fp4_attention_packed", ctx, q, k, v, delta, o);
        out = nvfp4_detail::new_tensor(ctx, DType::f32, {1, c.hq, c.lq, c.d});
        nvfp4_detail::run_fp4_attention(ctx, p, out, &path);
      }
      EXPECT_EQ(compare_bits(out.download<float>(), want), "")
          << "prefill path " << static_cast<int>(path) << " != decode";
    }
  }
}

// fp4_attention_packed and attention(nvfp4) send Lq <= 127 to fp4_decode.cl on a device; the
// knob SPARQ_TUNE_FP4=decode=N (route Lq <= N, 0 never) changes no bit, and is read (a bad value
// is refused on the routed call).
TEST(Fp4Decode, ShortPrefillCallsRouteToDecodeWithItsKnob) {
  Context dev = device_context(), cpu = fallback_context();
  if (dev.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  const Fp4DecCase c{.hq = 4, .hkv = 2, .lq = 5, .lk = 300, .with_delta = true, .seed = 880};
  const HostIn h = make_in(c);
  const auto want = run(cpu, c, h, true).prefill.download<float>();
  const Tensor q = dev.upload(h.q, DType::f32, {1, c.hq, c.lq, c.d});
  const Tensor k = dev.upload(h.k, DType::f32, {1, c.hkv, c.lk, c.d});
  const Tensor v = dev.upload(h.v, DType::f32, {1, c.hkv, c.lk, c.d});
  const AttentionOptions o{.causal = true, .precision = Precision::nvfp4};
  std::vector<float> fp32_route;
  for (const char* knob : {"", "decode=0", "decode=4", "decode=5"}) {
    SCOPED_TRACE(knob);
    const ScopedEnv env("SPARQ_TUNE_FP4", std::string(knob));
    EXPECT_EQ(compare_bits(run(dev, c, h, true).prefill.download<float>(), want), "");
    const auto got = attention(dev, q, k, v, o).out.download<float>();
    if (fp32_route.empty()) fp32_route = got;
    EXPECT_EQ(compare_bits(got, fp32_route), "") << "attention(nvfp4)";
  }
  const ScopedEnv bad("SPARQ_TUNE_FP4", std::string("decode=500"));
  EXPECT_THROW((void)run(dev, c, h, true), Error);
}

TEST(Fp4Decode, RejectsBadInput) {
  Context cpu = fallback_context();
  const Fp4DecCase big{.lq = 128, .lk = 64};
  try {
    (void)run(cpu, big, make_in(big), false);
    FAIL() << "Lq = 128 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp4_decode_packed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Lq = 128"), std::string::npos) << e.what();
  }
  const Fp4DecCase c{.lq = 3, .lk = 64};
  const HostIn h = make_in(c);
  const Fp4Packed q = fp4_quantize_rows(cpu, cpu.upload(h.q, DType::f32, {1, c.hq, c.lq, c.d}));
  const Fp4Packed k = fp4_quantize_rows(cpu, cpu.upload(h.k, DType::f32, {1, c.hkv, c.lk, c.d}));
  const Fp4PackedT v = fp4_quantize_tokens(cpu, cpu.upload(h.v, DType::f32, {1, c.hkv, c.lk, c.d}));
  const Tensor bad_delta =
      cpu.upload(std::vector<float>(c.hq * 5, 0.0f), DType::f32, {1, c.hq, 1, 5});
  EXPECT_THROW((void)fp4_decode_packed(cpu, q, k, v, &bad_delta, {}), Error);
  EXPECT_THROW((void)fp4_decode_packed(cpu, q, q, v, nullptr, {}),
               Error);  // K of 3 tokens, V of 64
}

}  // namespace
}  // namespace sparq::test
