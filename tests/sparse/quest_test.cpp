// Quest page-sparse decode (specs/sparse_attention.md §8): device ≡ fallback bit for bit for
// metadata, bounds, selection and the decode kernel; the in-place metadata update equals a
// recomputation; U bounds every q.k of its page; the selection is the top of the §4 order; a
// budget covering every page equals the dense path; float64 reference on the selected key set;
// NaN propagation; errors before any kernel runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "quest_test_util.h"
#include "reference/quest_ref.h"
#include "sparse/quest_math.h"

namespace sparq::test::quest {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

QuestOptions opts(int page, int budget, IndexSharing sh = IndexSharing::per_q_head) {
  QuestOptions o;
  o.page_size = page;
  o.token_budget = budget;
  o.dense_layers = {0, 1};
  o.sharing = sh;
  return o;
}

struct DecodeCase {
  CacheShape s;
  int budget;
  IndexSharing sharing;
  int pages_per_split;
};

TEST(QuestMetadata, DeviceMatchesFallbackAndUpdateEqualsRecompute) {
  auto dev = device_context();
  auto cpu = fallback_context();
  CacheShape s{4, 2, 64, 16, PageLayout::hnd, {37, 80, 1}, 2};
  const HostCache h = make_cache(s, 11);
  const auto o = opts(16, 64);
  // Prefill state at lens - 20 (clamped), then append the remaining tokens in steps of 1..7.
  std::vector<std::int32_t> prev(s.seq_lens.size());
  for (std::size_t b = 0; b < prev.size(); ++b) prev[b] = std::max(0, s.seq_lens[b] - 20);
  for (auto* ctx : {&dev, &cpu}) {
    PagedKV kv = h.upload(*ctx);
    QuestState full = quest_init(*ctx, kv, o);
    PagedKV part = kv;
    std::vector<std::int32_t> cur = prev;
    part.seq_lens = ctx->upload(cur, DType::i32, {s.batch()});
    QuestState inc = quest_init(*ctx, part, o);
    for (int step = 1; cur != s.seq_lens; ++step) {
      std::vector<std::int32_t> next = cur;
      for (std::size_t b = 0; b < next.size(); ++b)
        next[b] = std::min(s.seq_lens[b], cur[b] + 1 + step % 7);
      part.seq_lens = ctx->upload(next, DType::i32, {s.batch()});
      quest_update_metadata(*ctx, part, inc, ctx->upload(cur, DType::i32, {s.batch()}));
      cur = next;
    }
    expect_bits(inc.kmin, full.kmin, "kmin: appends vs recompute");
    expect_bits(inc.kmax, full.kmax, "kmax: appends vs recompute");
  }
  const QuestState a = quest_init(dev, h.upload(dev), o), b = quest_init(cpu, h.upload(cpu), o);
  expect_bits(a.kmin, b.kmin, "kmin device vs fallback");
  expect_bits(a.kmax, b.kmax, "kmax device vs fallback");
  // The values are the min / max over the page's valid tokens.
  const auto mn = b.kmin.download<float>(), mxv = b.kmax.download<float>();
  HostCache hc = h;
  for (int bb = 0; bb < s.batch(); ++bb)
    for (int hk = 0; hk < s.hkv; ++hk)
      for (std::int64_t p = 0; p < s.pages_of(s.seq_lens[bb]); ++p) {
        const std::int64_t page = h.table[bb * s.max_pages() + p];
        for (int e = 0; e < s.d; ++e) {
          float lo = INFINITY, hi = -INFINITY;
          for (std::int64_t j = p * 16; j < std::min<std::int64_t>(s.seq_lens[bb], p * 16 + 16);
               ++j) {
            lo = std::min(lo, hc.key(bb, hk, j)[e]);
            hi = std::max(hi, hc.key(bb, hk, j)[e]);
          }
          const std::size_t at = static_cast<std::size_t>((page * s.hkv + hk) * s.d + e);
          ASSERT_EQ(mn[at], lo) << "b " << bb << " page " << p;
          ASSERT_EQ(mxv[at], hi) << "b " << bb << " page " << p;
        }
      }
}

TEST(QuestMetadata, NaNPropagates) {
  auto dev = device_context();
  auto cpu = fallback_context();
  CacheShape s{2, 1, 64, 32, PageLayout::nhd, {70}, 0};
  HostCache h = make_cache(s, 12);
  h.key(0, 0, 40)[5] = kNaN;  // page 1, d = 5
  for (auto* ctx : {&dev, &cpu}) {
    const QuestState st = quest_init(*ctx, h.upload(*ctx), opts(32, 64));
    const auto mn = st.kmin.download<float>(), mxv = st.kmax.download<float>();
    const std::size_t at = static_cast<std::size_t>(h.table[1] * s.d + 5);
    EXPECT_TRUE(std::isnan(mn[at]) && std::isnan(mxv[at]));
    const std::size_t other = static_cast<std::size_t>(h.table[0] * s.d + 5);
    EXPECT_FALSE(std::isnan(mn[other]) || std::isnan(mxv[other]));
  }
}

// Bounds and selections, device vs fallback; U >= every exact q.k of its page; the selected set
// is the top of the §4 order of the bounds.
TEST(QuestSelect, BoundsAndSelection) {
  auto dev = device_context();
  auto cpu = fallback_context();
  for (const auto sharing : {IndexSharing::per_q_head, IndexSharing::kv_group}) {
    CacheShape s{8, 2, 128, 16, PageLayout::hnd, {600, 33, 129, 900}, 1};
    HostCache h = make_cache(s, 21);
    const auto o = opts(16, 160, sharing);  // 10 pages
    const QuestSelection a =
        quest_select(dev, h.upload_q(dev), h.upload(dev), quest_init(dev, h.upload(dev), o));
    const QuestSelection b =
        quest_select(cpu, h.upload_q(cpu), h.upload(cpu), quest_init(cpu, h.upload(cpu), o));
    const std::string what = sharing == IndexSharing::kv_group ? "kv_group" : "per_q_head";
    expect_bits(a.bounds, b.bounds, what + " bounds");
    expect_ints(a.pages, b.pages, what + " pages");
    expect_ints(a.counts, b.counts, what + " counts");
    const auto bounds = b.bounds.download<float>();
    const auto pages = b.pages.download<std::int32_t>();
    const auto counts = b.counts.download<std::int32_t>();
    const int hi_count = static_cast<int>(b.counts.dim(1)), group = s.hq / s.hkv;
    const std::int64_t mp = b.bounds.dim(2), cap = b.pages.dim(2);
    for (int bb = 0; bb < s.batch(); ++bb)
      for (int hi = 0; hi < hi_count; ++hi) {
        const std::int64_t item = std::int64_t{bb} * hi_count + hi;
        const std::int64_t n = s.pages_of(s.seq_lens[bb]);
        // Upper bound: per query head (or the group sum of the heads' own maxima).
        for (std::int64_t p = 0; p < n; ++p) {
          std::vector<const float*> keys;
          const int hk = sharing == IndexSharing::kv_group ? hi : hi / group;
          for (std::int64_t j = p * 16; j < std::min<std::int64_t>(s.seq_lens[bb], p * 16 + 16);
               ++j)
            keys.push_back(h.key(bb, hk, j));
          double want = 0.0, scale = 0.0;
          const int h0 = sharing == IndexSharing::kv_group ? hi * group : hi;
          const int nh = sharing == IndexSharing::kv_group ? group : 1;
          for (int g = 0; g < nh; ++g) {
            want += ref::max_dot(h.qrow(bb, h0 + g), keys, s.d);
            for (int e = 0; e < s.d; ++e)
              scale += std::fabs(h.qrow(bb, h0 + g)[e]) * 4.0;  // |k| < 4 here
          }
          EXPECT_GE(bounds[item * mp + p], want - 1e-6 * scale)
              << what << " b " << bb << " p " << p;
        }
        // Selection: all pages when n <= 10; else the last page + the 9 largest bounds (ties by
        // index), written independently of the kernels' key function.
        std::vector<std::int32_t> want;
        if (n <= 10) {
          for (std::int32_t p = 0; p < n; ++p) want.push_back(p);
        } else {
          std::vector<std::int32_t> idx(static_cast<std::size_t>(n - 1));
          std::iota(idx.begin(), idx.end(), 0);
          std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t x, std::int32_t y) {
            return bounds[item * mp + x] > bounds[item * mp + y];
          });
          want.assign(idx.begin(), idx.begin() + 9);
          std::sort(want.begin(), want.end());
          want.push_back(static_cast<std::int32_t>(n - 1));
        }
        ASSERT_EQ(counts[item], static_cast<std::int32_t>(want.size())) << what;
        for (std::size_t t = 0; t < want.size(); ++t)
          EXPECT_EQ(pages[item * cap + t], want[t]) << what << " b " << bb << " hi " << hi;
      }
  }
}

// The radix key orders scores as §4 says: +inf, finite descending (-0 == +0), -inf, NaN.
TEST(QuestSelect, OrderKeyIsTheSpecOrder) {
  using cl_common::sq_quest_order_key;
  const float v[] = {INFINITY, 3.0f, 1e-40f, 0.0f, -0.0f, -1e-40f, -2.5f, -INFINITY, kNaN, -kNaN};
  auto rank = [](float x) {  // class, then value descending
    if (std::isnan(x)) return std::pair{3, 0.0};
    if (std::isinf(x)) return std::pair{x > 0 ? 0 : 2, 0.0};
    return std::pair{1, -static_cast<double>(x)};
  };
  for (float a : v)
    for (float b : v)
      EXPECT_EQ(sq_quest_order_key(a) < sq_quest_order_key(b), rank(a) < rank(b)) << a << " " << b;
}

// Exact ties (identical pages), +inf / NaN bounds: the §4 order, identical on both executors.
TEST(QuestSelect, TiesInfAndNaN) {
  auto dev = device_context();
  auto cpu = fallback_context();
  CacheShape s{1, 1, 64, 16, PageLayout::hnd, {16 * 40}, 0};
  HostCache h = make_cache(s, 31);
  for (std::int64_t j = 0; j < 16 * 40; ++j)  // every page the same keys: all bounds tie
    std::copy(h.key(0, 0, j % 16), h.key(0, 0, j % 16) + 64, h.key(0, 0, j));
  const auto o = opts(16, 16 * 8);  // 7 + the last page
  auto run = [&](Context& ctx, const HostCache& hh) {
    return quest_select(ctx, hh.upload_q(ctx), hh.upload(ctx), quest_init(ctx, hh.upload(ctx), o));
  };
  auto sel = run(cpu, h);
  EXPECT_EQ(sel.pages.download<std::int32_t>(),
            (std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 39}));
  expect_ints(run(dev, h).pages, sel.pages, "ties");
  // +inf in page 30 is forced first; NaN in page 3 sorts last (never chosen while others exist).
  h.key(0, 0, 30 * 16 + 2)[7] = INFINITY;
  h.q[7] = std::fabs(h.q[7]) + 1.0f;
  h.key(0, 0, 3 * 16 + 1)[9] = kNaN;
  sel = run(cpu, h);
  EXPECT_EQ(sel.pages.download<std::int32_t>(),
            (std::vector<std::int32_t>{0, 1, 2, 4, 5, 6, 30, 39}));
  expect_ints(run(dev, h).pages, sel.pages, "inf/nan");
}

// Hundreds of candidate pages (several per selection work-item), kv groups of 8 heads (more
// than one pass of quest_bounds' head slots) and many ties at the threshold: pages repeat every
// 50, so each bound occurs about 14 times. Device == fallback; the selection is the top of the
// §4 order (ties by index), checked against a stable sort.
TEST(QuestSelect, ManyPagesLargeGroupsAndTies) {
  auto dev = device_context();
  auto cpu = fallback_context();
  CacheShape s{16, 2, 64, 16, PageLayout::hnd, {16 * 700, 16 * 300 + 5}, 0};
  HostCache h = make_cache(s, 41);
  for (int b = 0; b < s.batch(); ++b)
    for (int hk = 0; hk < s.hkv; ++hk)
      for (std::int64_t j = 16 * 50; j < s.seq_lens[b]; ++j)
        std::copy(h.key(b, hk, j % (16 * 50)), h.key(b, hk, j % (16 * 50)) + s.d, h.key(b, hk, j));
  for (const auto sharing : {IndexSharing::per_q_head, IndexSharing::kv_group}) {
    const auto o = opts(16, 16 * 100, sharing);  // 99 + the last page
    const QuestSelection a =
        quest_select(dev, h.upload_q(dev), h.upload(dev), quest_init(dev, h.upload(dev), o));
    const QuestSelection b =
        quest_select(cpu, h.upload_q(cpu), h.upload(cpu), quest_init(cpu, h.upload(cpu), o));
    const std::string what = sharing == IndexSharing::kv_group ? "kv_group" : "per_q_head";
    expect_bits(a.bounds, b.bounds, what + " bounds");
    expect_ints(a.pages, b.pages, what + " pages");
    expect_ints(a.counts, b.counts, what + " counts");
    const auto bounds = b.bounds.download<float>();
    const auto pages = b.pages.download<std::int32_t>();
    const std::int64_t mp = b.bounds.dim(2), cap = b.pages.dim(2);
    const int hi_count = static_cast<int>(b.counts.dim(1));
    for (int bb = 0; bb < s.batch(); ++bb)
      for (int hi = 0; hi < hi_count; ++hi) {
        const std::int64_t item = std::int64_t{bb} * hi_count + hi, n = s.pages_of(s.seq_lens[bb]);
        std::vector<std::int32_t> idx(static_cast<std::size_t>(n - 1));
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t x, std::int32_t y) {
          return bounds[item * mp + x] > bounds[item * mp + y];
        });
        std::vector<std::int32_t> want(idx.begin(), idx.begin() + 99);
        std::sort(want.begin(), want.end());
        want.push_back(static_cast<std::int32_t>(n - 1));
        for (std::size_t t = 0; t < want.size(); ++t)
          ASSERT_EQ(pages[item * cap + t], want[t]) << what << " b " << bb << " hi " << hi;
      }
  }
}

std::vector<DecodeCase> decode_cases() {
  using L = PageLayout;
  const auto pq = IndexSharing::per_q_head, kv = IndexSharing::kv_group;
  return {
      {{4, 2, 64, 16, L::hnd, {700, 33, 0, 161}, 2}, 256, pq, 4},
      {{8, 2, 128, 16, L::hnd, {1000, 257}, 1}, 512, kv, 32},
      {{4, 1, 128, 32, L::nhd, {2000, 95}, 0}, 512, kv, 3},
      {{2, 2, 64, 64, L::hnd, {1500}, 1}, 1024, pq, 1},
      {{8, 8, 64, 128, L::nhd, {1100, 5}, 0}, 512, pq, 2},
      {{16, 2, 64, 16, L::hnd, {333}, 0}, 16, kv, 32},  // budget 1 page: the last page only
  };
}

TEST(QuestDecode, DeviceMatchesFallback) {
  auto dev = device_context();
  auto cpu = fallback_context();
  int seed = 40;
  for (const auto& c : decode_cases()) {
    const HostCache h = make_cache(c.s, ++seed);
    const auto o = opts(c.s.page_size, c.budget, c.sharing);
    DecodeOptions d;
    d.layer = 5;
    d.pages_per_split = c.pages_per_split;
    d.return_lse = true;
    auto run = [&](Context& ctx) {
      const PagedKV kv = h.upload(ctx);
      const QuestState st = quest_init(ctx, kv, o);
      return decode(ctx, h.upload_q(ctx), kv, &st, d);
    };
    const auto a = run(dev), b = run(cpu);
    expect_bits(a.out, b.out, name_of(c.s) + " out");
    expect_bits(a.lse, b.lse, name_of(c.s) + " lse");
    const auto out = b.out.download<float>();
    for (int bb = 0; bb < c.s.batch(); ++bb) {
      if (c.s.seq_lens[bb] != 0) continue;
      for (int e = 0; e < c.s.hq * c.s.d; ++e)
        ASSERT_EQ(out[static_cast<std::size_t>(bb * c.s.hq * c.s.d + e)], 0.0f) << "empty row";
    }
  }
}

// Budget >= every page, a dense layer, and no state: the same bits. With 64-token pages and one
// split the definition is sparq's dense paged attention's (same tiles, one chunk): same bits too.
TEST(QuestDecode, FullBudgetEqualsDense) {
  auto dev = device_context();
  auto cpu = fallback_context();
  CacheShape s{4, 2, 128, 64, PageLayout::hnd, {1000, 4096, 64, 1}, 0};
  const HostCache h = make_cache(s, 51);
  for (auto* ctx : {&dev, &cpu}) {
    const PagedKV kv = h.upload(*ctx);
    const Tensor q = h.upload_q(*ctx);
    DecodeOptions d;
    d.pages_per_split = 64;
    d.layer = 7;
    const auto dense = decode(*ctx, q, kv, nullptr, d);
    const QuestState big = quest_init(*ctx, kv, opts(64, 1 << 20));
    expect_bits(decode(*ctx, q, kv, &big, d).out, dense.out, "budget >= pages");
    d.layer = 1;
    const QuestState small = quest_init(*ctx, kv, opts(64, 128));
    expect_bits(decode(*ctx, q, kv, &small, d).out, dense.out, "dense layer 1");
    AttentionOptions ao;
    ao.causal = true;
    const auto paged =
        attention_paged(*ctx, q.view({4, s.hq, 1, 128}, {s.hq * 128, 128, 128, 1}), kv, ao);
    expect_bits(paged.out.view({4, s.hq, 128}, {s.hq * 128, 128, 1}), dense.out,
                "equals attention_paged");
  }
}

// The fallback against float64 attention over exactly the selected pages' keys.
TEST(QuestDecode, MatchesFloat64OnSelectedKeys) {
  auto cpu = fallback_context();
  for (const auto sharing : {IndexSharing::per_q_head, IndexSharing::kv_group}) {
    CacheShape s{4, 2, 64, 16, PageLayout::hnd, {900, 300, 70}, 0};
    HostCache h = make_cache(s, 61);
    const PagedKV kv = h.upload(cpu);
    const QuestState st = quest_init(cpu, kv, opts(16, 256, sharing));
    DecodeOptions d;
    d.pages_per_split = 5;
    d.return_lse = true;
    const Tensor q = h.upload_q(cpu);
    const QuestSelection sel = quest_select(cpu, q, kv, st, d);
    const auto r = sparse_attention_decode(cpu, q, kv, sel, sharing, d);
    const auto out = r.out.download<float>(), lse = r.lse.download<float>();
    const auto pages = sel.pages.download<std::int32_t>();
    const auto counts = sel.counts.download<std::int32_t>();
    const std::int64_t cap = sel.pages.dim(2);
    const int group = s.hq / s.hkv, hi_count = static_cast<int>(sel.counts.dim(1));
    for (int b = 0; b < s.batch(); ++b)
      for (int hq = 0; hq < s.hq; ++hq) {
        const int hi = sharing == IndexSharing::kv_group ? hq / group : hq;
        const std::int64_t item = std::int64_t{b} * hi_count + hi;
        std::vector<const float*> keys, values;
        for (int t = 0; t < counts[item]; ++t) {
          const std::int64_t p = pages[item * cap + t];
          for (std::int64_t j = p * 16; j < std::min<std::int64_t>(s.seq_lens[b], p * 16 + 16);
               ++j) {
            keys.push_back(h.key(b, hq / group, j));
            values.push_back(h.value(b, hq / group, j));
          }
        }
        const auto want = ref::attention_row(h.qrow(b, hq), keys, values, s.d, 1.0 / 8.0);
        for (int e = 0; e < s.d; ++e) {
          const double got = out[(static_cast<std::size_t>(b) * s.hq + hq) * s.d + e];
          EXPECT_NEAR(got, want.out[e], 2e-6 * (1.0 + std::fabs(want.out[e])));
        }
        EXPECT_NEAR(lse[static_cast<std::size_t>(b) * s.hq + hq], want.lse2, 1e-5);
      }
  }
}

TEST(QuestDecode, NaNReachesOnlyRowsThatReadIt) {
  auto dev = device_context();
  auto cpu = fallback_context();
  CacheShape s{2, 1, 64, 16, PageLayout::hnd, {320, 320}, 0};
  HostCache h = make_cache(s, 71);
  h.value(0, 0, 319)[3] = kNaN;  // last page of sequence 0: always read
  for (auto* ctx : {&dev, &cpu}) {
    const PagedKV kv = h.upload(*ctx);
    const QuestState st = quest_init(*ctx, kv, opts(16, 64));
    DecodeOptions d;
    d.layer = 3;
    const auto out = decode(*ctx, h.upload_q(*ctx), kv, &st, d).out.download<float>();
    for (int hq = 0; hq < 2; ++hq) {
      EXPECT_TRUE(std::isnan(out[static_cast<std::size_t>(hq * 64 + 3)]));
      EXPECT_FALSE(std::isnan(out[static_cast<std::size_t>(hq * 64 + 4)]));  // other d: own chain
      EXPECT_FALSE(std::isnan(out[static_cast<std::size_t>((2 + hq) * 64 + 3)]));
    }
  }
}

// A contiguous cache [B, Hkv, Lk, D] gives the bits of the same keys in pages.
TEST(QuestDecode, ContiguousCacheMatchesPaged) {
  auto dev = device_context();
  auto cpu = fallback_context();
  CacheShape s{4, 2, 64, 32, PageLayout::hnd, {500, 200}, 0};
  HostCache h = make_cache(s, 81);
  const std::int64_t lk = 512;
  std::vector<float> k(static_cast<std::size_t>(2 * 2 * lk * 64), kNaN), v = k;
  for (int b = 0; b < 2; ++b)
    for (int hk = 0; hk < 2; ++hk)
      for (std::int64_t j = 0; j < s.seq_lens[b]; ++j)
        for (int e = 0; e < 64; ++e) {
          const std::size_t at = static_cast<std::size_t>(((b * 2 + hk) * lk + j) * 64 + e);
          k[at] = h.key(b, hk, j)[e];
          v[at] = h.value(b, hk, j)[e];
        }
  const auto o = opts(32, 128, IndexSharing::kv_group);
  DecodeOptions d;
  d.pages_per_split = 2;
  for (auto* ctx : {&dev, &cpu}) {
    const PagedKV kv = h.upload(*ctx);
    const QuestState st = quest_init(*ctx, kv, o);
    const auto want = decode(*ctx, h.upload_q(*ctx), kv, &st, d);
    const Tensor kt = ctx->upload(k, DType::f32, {2, 2, lk, 64});
    const Tensor vt = ctx->upload(v, DType::f32, {2, 2, lk, 64});
    const Tensor lens = ctx->upload(s.seq_lens, DType::i32, {2});
    const QuestState cs = quest_init(*ctx, kt, lens, o);
    expect_bits(decode(*ctx, h.upload_q(*ctx), kt, vt, lens, &cs, d).out, want.out, "contiguous");
  }
}

TEST(QuestErrors, RejectedBeforeAnyKernel) {
  auto ctx = fallback_context();
  CacheShape s{4, 2, 64, 16, PageLayout::hnd, {100, 40}, 0};
  HostCache h = make_cache(s, 91);
  const PagedKV kv = h.upload(ctx);
  const Tensor q = h.upload_q(ctx);
  const QuestState st = quest_init(ctx, kv, opts(16, 64));
  auto expect_error = [](auto&& f, const char* needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  {
    HostCache bad = h;
    bad.table[1] = 999;
    expect_error([&] { quest_init(ctx, bad.upload(ctx), opts(16, 64)); }, "out of range");
  }
  {
    PagedKV bad = kv;
    bad.seq_lens = ctx.upload(std::vector<std::int32_t>{100, 200}, DType::i32, {2});
    expect_error([&] { decode(ctx, q, bad, &st); }, "needs");
    bad.seq_lens = ctx.upload(std::vector<std::int32_t>{-1, 2}, DType::i32, {2});
    expect_error([&] { decode(ctx, q, bad, &st); }, "negative");
  }
  expect_error([&] { quest_init(ctx, kv, opts(16, -1)); }, "token_budget");
  expect_error([&] { quest_init(ctx, kv, opts(32, 64)); }, "page");
  expect_error([&] { quest_init(ctx, kv, opts(8, 64)); }, "page size");
  {
    DecodeOptions d;
    d.pages_per_split = 0;
    expect_error([&] { decode(ctx, q, kv, &st, d); }, "pages_per_split");
    d.pages_per_split = 4;
    d.scale = -1.0f;
    expect_error([&] { decode(ctx, q, kv, &st, d); }, "scale");
  }
  {
    QuestSelection sel = quest_select(ctx, q, kv, st);
    auto pages = sel.pages.download<std::int32_t>();
    pages[1] = pages[0];
    QuestSelection bad = sel;
    bad.pages = ctx.upload(pages, DType::i32, sel.pages.shape());
    expect_error([&] { sparse_attention_decode(ctx, q, kv, bad, IndexSharing::per_q_head); },
                 "ascending");
    pages[1] = 77;
    bad.pages = ctx.upload(pages, DType::i32, sel.pages.shape());
    expect_error([&] { sparse_attention_decode(ctx, q, kv, bad, IndexSharing::per_q_head); },
                 "out of range");
    expect_error([&] { sparse_attention_decode(ctx, q, kv, sel, IndexSharing::kv_group); },
                 "selection");
  }
  {
    QuestState s2 = st;
    expect_error(
        [&] {
          quest_update_metadata(ctx, kv, s2,
                                ctx.upload(std::vector<std::int32_t>{101, 0}, DType::i32, {2}));
        },
        "prev_lens");
  }
  {
    HostCache shared = h;  // sequence 1 page 0 is sequence 0's page 0, with other lengths
    shared.table[shared.s.max_pages()] = shared.table[0];
    PagedKV skv = shared.upload(ctx);
    skv.seq_lens = ctx.upload(std::vector<std::int32_t>{100, 10}, DType::i32, {2});
    expect_error([&] { quest_init(ctx, skv, opts(16, 64)); }, "shared page");
  }
  {
    const Tensor q96 = ctx.upload(std::vector<float>(2 * 4 * 96), DType::f32, {2, 4, 96});
    expect_error([&] { decode(ctx, q96, kv, &st); }, "head dim");
    const Tensor q3 = ctx.upload(std::vector<float>(2 * 3 * 64), DType::f32, {2, 3, 64});
    expect_error([&] { decode(ctx, q3, kv, &st); }, "multiple");
  }
}

}  // namespace
}  // namespace sparq::test::quest
