// Helpers of the attention tests: typed uploads, widened downloads, seeded inputs, one-line
// case names, and the kernel-vs-fallback bitwise check.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/convert.h"
#include "sparq/sparq.h"
#include "test_support.h"

namespace sparq::test::attn {

using sparq::test::download_f32;
using sparq::test::upload_as;

// The same host data as one tensor on each of two contexts.
struct Pair {
  Tensor dev, cpu;
};
inline Pair upload_pair(Context& dev, Context& cpu, const std::vector<float>& x, DType t,
                        const std::vector<std::int64_t>& shape) {
  return {upload_as(dev, x, t, shape), upload_as(cpu, x, t, shape)};
}
inline Pair upload_index_pair(Context& dev, Context& cpu, const std::vector<std::int32_t>& x,
                              const std::vector<std::int64_t>& shape) {
  return {dev.upload(x, DType::i32, shape), cpu.upload(x, DType::i32, shape)};
}

// Device result == fallback result, bit for bit (any NaN equals any NaN).
inline void expect_same(const AttentionResult& dev, const AttentionResult& cpu,
                        const std::string& what) {
  ASSERT_EQ(dev.out.shape(), cpu.out.shape()) << what;
  const std::string o = compare_bits(download_f32(dev.out), download_f32(cpu.out));
  EXPECT_EQ(o, "") << what << ": O differs";
  ASSERT_EQ(dev.lse.defined(), cpu.lse.defined()) << what;
  if (dev.lse.defined()) {
    const std::string l = compare_bits(dev.lse.download<float>(), cpu.lse.download<float>());
    EXPECT_EQ(l, "") << what << ": lse differs";
  }
}

inline const char* dt(DType t) {
  return dtype_name(t);
}

}  // namespace sparq::test::attn

namespace sparq::test::attn {

// Host image of a paged KV cache holding sequences b = 0..B-1 (K/V of sequence b given as
// [Hkv, len_b, D]). Pages are assigned in a seeded random order; every slot that holds no key
// (tails of last pages, unused pages) is NaN, so a kernel that read one would show it.
struct PagedHost {
  std::vector<float> k_pages, v_pages;  // layout order of `nhd`
  std::vector<std::int32_t> table, lens;
  std::int64_t num_pages = 0, max_pages = 0;
  int page_size = 16, hkv = 1, d = 1;
  bool nhd = true;
  std::vector<std::int64_t> pages_shape() const {
    return nhd ? std::vector<std::int64_t>{num_pages, page_size, hkv, d}
               : std::vector<std::int64_t>{num_pages, hkv, page_size, d};
  }
};

inline PagedHost make_paged(const std::vector<std::vector<float>>& k,
                            const std::vector<std::vector<float>>& v,
                            const std::vector<std::int32_t>& lens, int hkv, int d, int page_size,
                            bool nhd, std::uint64_t seed) {
  PagedHost p;
  p.page_size = page_size;
  p.hkv = hkv;
  p.d = d;
  p.nhd = nhd;
  p.lens = lens;
  std::int64_t need = 0;
  for (auto len : lens) {
    const std::int64_t n = (len + page_size - 1) / page_size;
    need += n;
    p.max_pages = std::max(p.max_pages, n + 1);  // one spare entry per row (left as -1)
  }
  p.num_pages = need + 3;  // unused pages stay NaN
  std::vector<std::int32_t> order(p.num_pages);
  for (std::int64_t i = 0; i < p.num_pages; ++i) order[i] = static_cast<std::int32_t>(i);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  p.k_pages.assign(p.num_pages * page_size * hkv * d, nan);
  p.v_pages.assign(p.k_pages.size(), nan);
  p.table.assign(lens.size() * p.max_pages, -1);
  std::size_t next = 0;
  for (std::size_t b = 0; b < lens.size(); ++b)
    for (std::int32_t j = 0; j < lens[b]; ++j) {
      if (j % page_size == 0) p.table[b * p.max_pages + j / page_size] = order[next++];
      const std::int64_t page = p.table[b * p.max_pages + j / page_size], slot = j % page_size;
      for (int h = 0; h < hkv; ++h)
        for (int e = 0; e < d; ++e) {
          const std::int64_t at = nhd ? ((page * page_size + slot) * hkv + h) * d + e
                                      : ((page * hkv + h) * page_size + slot) * d + e;
          p.k_pages[at] = k[b][(std::int64_t(h) * lens[b] + j) * d + e];
          p.v_pages[at] = v[b][(std::int64_t(h) * lens[b] + j) * d + e];
        }
    }
  return p;
}

// The PagedKV of `p` on ctx, K/V stored as `t`.
inline PagedKV upload_paged(Context& ctx, const PagedHost& p, DType t) {
  PagedKV kv;
  kv.k_pages = upload_as(ctx, p.k_pages, t, p.pages_shape());
  kv.v_pages = upload_as(ctx, p.v_pages, t, p.pages_shape());
  kv.page_table =
      ctx.upload(p.table, DType::i32, {static_cast<std::int64_t>(p.lens.size()), p.max_pages});
  kv.seq_lens = ctx.upload(p.lens, DType::i32, {static_cast<std::int64_t>(p.lens.size())});
  kv.page_size = p.page_size;
  kv.layout = p.nhd ? PageLayout::nhd : PageLayout::hnd;
  return kv;
}

}  // namespace sparq::test::attn
