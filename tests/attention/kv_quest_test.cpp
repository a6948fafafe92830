// Quest metadata fused into kv_append: the kmin / kmax entries kv_append(..., &state) leaves equal
// quest_update_metadata after a plain append, bit for bit (f32, int8 and NVFP4 pages: min / max
// of the values the pages hold), kernel == fallback; hostile states refused.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <limits>

#include "attention_test_util.h"
#include "kv_cache_util.h"

namespace sparq::test::attn {
namespace {

void expect_same_state(const QuestState& a, const QuestState& b, const std::string& what) {
  EXPECT_EQ(compare_bits(a.kmin.download<float>(), b.kmin.download<float>()), "")
      << what << " kmin";
  EXPECT_EQ(compare_bits(a.kmax.download<float>(), b.kmax.download<float>()), "")
      << what << " kmax";
}

TEST(KvCacheQuest, FusedMetadataEqualsSeparateUpdate) {
  Context dev = device_context(), cpu = fallback_context();
  struct Case {
    DType storage;
    PageLayout layout;
    int d, page;
  };
  for (const Case c :
       {Case{DType::f32, PageLayout::nhd, 64, 16}, Case{DType::u8, PageLayout::hnd, 128, 16},
        Case{DType::i8, PageLayout::nhd, 64, 32}}) {
    SCOPED_TRACE(fmt::format("{} {} D={} page={}", dt(c.storage),
                             c.layout == PageLayout::nhd ? "NHD" : "HND", c.d, c.page));
    const int batch = 3, hkv = 2, per_seq = 4;
    const std::vector<std::int32_t> lens = {0, 5, 17};
    // fused: device and fallback; separate: device, plain append + quest_update_metadata.
    Cache f = make_cache(dev, c.storage, c.layout, batch, per_seq, c.page, hkv, c.d, lens);
    Cache g = make_cache(cpu, c.storage, c.layout, batch, per_seq, c.page, hkv, c.d, lens);
    Cache s = make_cache(dev, c.storage, c.layout, batch, per_seq, c.page, hkv, c.d, lens);
    const QuestOptions qo{.page_size = c.page};
    QuestState qf = quest_init(dev, f.kv, qo), qg = quest_init(cpu, g.kv, qo);
    QuestState qs = quest_init(dev, s.kv, qo);
    std::uint64_t seed = 61;
    for (const int n : {21, 1, 13}) {  // a prefill chunk, a decode step, a chunk across pages
      SCOPED_TRACE(fmt::format("append of {}", n));
      const std::vector<std::int64_t> shape = {batch, hkv, n, c.d};
      auto k = random_normal(std::size_t(batch) * hkv * n * c.d, seed++, 2.0f);
      const auto v = random_normal(k.size(), seed++);
      for (std::size_t i = 0; i < k.size(); i += 7) k[i] *= 1e-4f;  // ±0 after quantization
      if (n == 21) k[k.size() - 3] = std::numeric_limits<float>::infinity();
      const Tensor prev = dev.upload(s.kv.seq_lens.download<std::int32_t>(), DType::i32, {batch});
      kv_append(dev, f.kv, dev.upload(k, DType::f32, shape), dev.upload(v, DType::f32, shape), &qf);
      kv_append(cpu, g.kv, cpu.upload(k, DType::f32, shape), cpu.upload(v, DType::f32, shape), &qg);
      kv_append(dev, s.kv, dev.upload(k, DType::f32, shape), dev.upload(v, DType::f32, shape));
      quest_update_metadata(dev, s.kv, qs, prev);
      expect_same_state(qf, qs, "fused vs quest_update_metadata");
      expect_same_state(qf, qg, "kernel vs fallback");
      EXPECT_EQ(f.kv.k_pages.download<std::uint8_t>(), g.kv.k_pages.download<std::uint8_t>());
    }
    // The fused entries are also a from-scratch recomputation over the pages.
    expect_same_state(qf, quest_init(dev, f.kv, qo), "fused vs quest_init");
  }
}

TEST(KvCacheQuest, HostileStatesRefused) {
  Context ctx = fallback_context();
  Cache c = make_cache(ctx, DType::u8, PageLayout::nhd, 1, 2, 16, 1, 64, {0});
  const Tensor k = ctx.upload(random_normal(3 * 64, 1), DType::f32, {1, 1, 3, 64});
  auto fails = [&](QuestState q, const std::string& text) {
    try {
      kv_append(ctx, c.kv, k, k, &q);
      ADD_FAILURE() << "no error; expected: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  QuestState q = quest_init(ctx, c.kv, {.page_size = 16});
  QuestState x = q;
  x.options.page_size = 32;
  fails(x, "quest was built for pages of 32 tokens; the cache has 16");
  x = q;
  x.kmin = ctx.upload(std::vector<float>(2 * 32), DType::f32, {2, 1, 32});
  fails(x, "quest->kmin is f32[2, 1, 32]");
  x = q;
  x.kmax = ctx.upload(std::vector<std::int32_t>(2 * 64), DType::i32, {2, 1, 64});
  fails(x, "expected contiguous f32[2, 1, 64]");
  kv_append(ctx, c.kv, k, k, &q);  // the state itself is accepted
}

}  // namespace
}  // namespace sparq::test::attn
