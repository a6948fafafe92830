// Kernel (sparq::test::device_context(): PoCL in CI, the GPU with SPARQ_TEST_DEVICE=gpu) ==
// fallback, bit for bit, over the dense attention shape list. Cases of one TEST share a
// process, so PoCL builds each program once per TEST.
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
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format("B={} Hq={} Hkv={} Lq={} Lk={} D={} causal={} in={} out={} seed={}", b, hq,
                       hkv, lq, lk, d, causal, dt(in), dt(out), seed);
  }
};

void check_dense(Context& dev, Context& cpu, const DenseCase& c) {
  SCOPED_TRACE(c.name());
  const std::vector<std::int64_t> qs{c.b, c.hq, c.lq, c.d}, ks{c.b, c.hkv, c.lk, c.d};
  const auto q = random_normal(c.b * c.hq * c.lq * c.d, c.seed);
  const auto k = random_normal(c.b * c.hkv * c.lk * c.d, c.seed + 1);
  const auto v = random_normal(c.b * c.hkv * c.lk * c.d, c.seed + 2);
  auto tq = upload_pair(dev, cpu, q, c.in, qs), tk = upload_pair(dev, cpu, k, c.in, ks),
       tv = upload_pair(dev, cpu, v, c.in, ks);
  const AttentionOptions o{.causal = c.causal, .return_lse = true, .out_dtype = c.out};
  expect_same(attention(dev, tq.dev, tk.dev, tv.dev, o), attention(cpu, tq.cpu, tk.cpu, tv.cpu, o),
              c.name());
}

TEST(AttentionExact, SmallShapes) {
  Context dev = device_context(), cpu = fallback_context();
  for (int d : {64, 128, 80})
    for (bool causal : {false, true})
      for (std::int64_t l : {1, 63, 64, 65, 200}) {
        check_dense(dev, cpu, {.lq = l, .lk = l, .d = d, .causal = causal, .seed = 10});
      }
}

}  // namespace
}  // namespace sparq::test::attn
