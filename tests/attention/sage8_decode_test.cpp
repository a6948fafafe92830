// sage8_decode_packed (kernels_cl/attention/sage8_decode.cl): int8 attention of short query
// blocks (Lq = 1..127) split at the 4096-key chunks. Kernel == fallback bit for bit (Lq 1, 7, 64,
// 127; GQA; causal rows at the end of the context; a context past one chunk with a tiny head
// count, so the split + merge path runs); == the prefill kernels (sage8.cl, and sage8_mma.cl
// emulated) run by sage8_attention_packed with the decode routing off, at every Lk (the prefill
// kernels restart at each 4096-key chunk and merge, so the bits agree past one chunk too);
// accuracy of the split path against the float64 reference; errors.
#include <fmt/format.h>

#include "attention/attention_test_util.h"
#include "nvfp4/fp4_test_util.h"
#include "reference/attention_ref.h"
#include "runtime/runtime_test_util.h"
#include "sparq/int8_attention.h"

namespace sparq::test::attn {
namespace {

struct DecCase {
  int hq = 4, hkv = 2, d = 64;
  std::int64_t lq = 1, lk = 200;
  bool causal = true;
  QSmooth qs = QSmooth::per_block128;
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format("Hq={} Hkv={} D={} Lq={} Lk={} causal={} q_smooth={} seed={}", hq, hkv, d,
                       lq, lk, causal, static_cast<int>(qs), seed);
  }
  AttentionOptions options() const {
    return {.causal = causal, .precision = Precision::int8, .quant = {qs, true}};
  }
};

struct Host {
  std::vector<float> q, k, v;
};
Host make_host(const DecCase& c) {
  return {random_normal(std::size_t(c.hq) * c.lq * c.d, c.seed),
          random_normal(std::size_t(c.hkv) * c.lk * c.d, c.seed + 1),
          random_normal(std::size_t(c.hkv) * c.lk * c.d, c.seed + 2)};
}

Sage8Packed pack(Context& ctx, const DecCase& c, const Host& h) {
  return sage8_quantize(ctx, ctx.upload(h.q, DType::f32, {1, c.hq, c.lq, c.d}),
                        ctx.upload(h.k, DType::f32, {1, c.hkv, c.lk, c.d}),
                        ctx.upload(h.v, DType::f32, {1, c.hkv, c.lk, c.d}), c.options());
}

// The prefill kernels' bits: sage8_attention_packed with the Lq <= 127 routing to the decode
// kernel turned off (tune: SPARQ_TUNE_SAGE8, which says decode=0).
AttentionResult prefill(Context& ctx, const Sage8Packed& p, const DecCase& c,
                        const char* tune = "decode=0") {
  const ScopedEnv off("SPARQ_TUNE_SAGE8", tune);
  return sage8_attention_packed(ctx, p, c.options());
}

// Kernel == fallback == the prefill kernel on each context; sage8_attention_packed (routed to
// the decode kernel) == both.
void check(Context& dev, Context& cpu, const DecCase& c) {
  SCOPED_TRACE(c.name());
  const Host h = make_host(c);
  const Sage8Packed pd = pack(dev, c, h), pc = pack(cpu, c, h);
  const AttentionResult rd = sage8_decode_packed(dev, pd, c.options());
  const AttentionResult rc = sage8_decode_packed(cpu, pc, c.options());
  expect_same(rd, rc, c.name());
  expect_same(rd, prefill(dev, pd, c), "decode == prefill (device)");
  expect_same(rc, prefill(cpu, pc, c), "decode == prefill (fallback)");
}

TEST(Sage8Decode, KernelEqualsFallbackShortQueries) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 700;
  for (std::int64_t lq : {1, 7}) check(dev, cpu, {.lq = lq, .seed = seed++});
  for (std::int64_t lq : {64, 127})  // GQA group of 2, queries at the end of the context
    check(dev, cpu, {.hq = 2, .hkv = 1, .lq = lq, .lk = 150, .seed = seed++});
  check(dev, cpu, {.hq = 2, .hkv = 2, .lq = 7, .lk = 3, .seed = seed++});  // rows see no key
  check(dev, cpu,
        {.hq = 3,
         .hkv = 1,
         .d = 128,
         .lq = 5,
         .lk = 130,
         .causal = false,
         .qs = QSmooth::off,
         .seed = seed++});
  check(dev, cpu, {.lq = 20, .lk = 77, .qs = QSmooth::per_head, .seed = seed++});
}

TEST(Sage8Decode, SplitPastOneChunkEqualsFallbackAndReference) {
  Context dev = device_context(), cpu = fallback_context();
  // GQA group of 2, 2 chunks (4096 + 104 keys), causal rows at the end of the context.
  const DecCase c{.hq = 2, .hkv = 1, .lq = 7, .lk = 4200, .seed = 750};
  check(dev, cpu, c);
  check(dev, cpu,
        {.hq = 2,
         .hkv = 1,
         .d = 128,
         .lq = 1,
         .lk = 8193,
         .causal = false,
         .qs = QSmooth::off,
         .seed = 760});
  // Accuracy of the split path (fallback == kernel above) against float64 attention.
  const Host h = make_host(c);
  const auto got = sage8_decode_packed(cpu, pack(cpu, c, h), c.options()).out.download<float>();
  const auto want = ref::attention(h.q, h.k, h.v, {1, c.hq, c.hkv, c.d, c.lq, c.lk}, true).out;
  const Accuracy a = accuracy(got, want);
  EXPECT_GE(a.cosine, 0.999) << "rel L1 " << a.rel_l1;
  EXPECT_LE(a.rel_l1, 0.03);
}

// The MMA prefill kernel (emulated on PoCL; 64 rows per work-group, the cheaper emulation)
// restarts at the chunks like the decode kernel: GQA, causal and not, past one chunk.
TEST(Sage8Decode, EqualsEmulatedMmaPrefillPastOneChunk) {
  const ScopedEnv mma("SPARQ_SAGE8_MMA", "emulate");
  Context dev = device_context();
  const DecCase causal{.hq = 2, .hkv = 1, .lq = 5, .lk = 4097, .seed = 770};
  const DecCase full{.hq = 1,
                     .hkv = 1,
                     .lq = 2,
                     .lk = 4200,
                     .causal = false,
                     .qs = QSmooth::per_head,
                     .seed = 771};
  for (const DecCase& c : {causal, full}) {
    SCOPED_TRACE(c.name());
    const Sage8Packed p = pack(dev, c, make_host(c));
    expect_same(sage8_decode_packed(dev, p, c.options()), prefill(dev, p, c, "decode=0,rows=64"),
                c.name());
  }
}

TEST(Sage8Decode, RejectsBadInput) {
  Context cpu = fallback_context();
  const DecCase big{.lq = 128, .lk = 64};
  const Host h = make_host(big);
  const Sage8Packed p = pack(cpu, big, h);
  try {
    (void)sage8_decode_packed(cpu, p, big.options());
    FAIL() << "Lq = 128 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sage8_decode_packed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Lq = 128"), std::string::npos) << e.what();
  }
  const DecCase c{.lq = 3, .lk = 64};
  Sage8Packed q = pack(cpu, c, make_host(c));
  q.k.scales = cpu.upload(std::vector<float>(6, 1.0f), DType::f32, {1, 2, 3});
  EXPECT_THROW((void)sage8_decode_packed(cpu, q, c.options()), Error);
  AttentionOptions lse = c.options();
  lse.return_lse = true;
  EXPECT_THROW((void)sage8_decode_packed(cpu, pack(cpu, c, make_host(c)), lse), Error);
}

}  // namespace
}  // namespace sparq::test::attn
