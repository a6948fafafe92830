// Helpers of the Quest tests: a host image of a paged KV cache (HND or NHD, shuffled pages, NaN
// in every slot that holds no key) uploaded to a device context and to the fallback.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "sparq/sparq.h"
#include "test_support.h"

namespace sparq::test::quest {

struct CacheShape {
  int hq = 4, hkv = 2, d = 64, page_size = 16;
  PageLayout layout = PageLayout::hnd;
  std::vector<std::int32_t> seq_lens = {100};
  int spare_pages = 3;  // pool pages no sequence uses (NaN-filled)
  int batch() const { return static_cast<int>(seq_lens.size()); }
  std::int64_t pages_of(std::int64_t len) const { return (len + page_size - 1) / page_size; }
  std::int64_t max_pages() const {
    std::int64_t m = 1;
    for (auto l : seq_lens) m = std::max(m, pages_of(l));
    return m;
  }
};

struct HostCache {
  CacheShape s;
  std::int64_t num_pages = 0;
  std::vector<float> k, v, q;  // k/v: the pools; q [B, Hq, D]
  std::vector<std::int32_t> table;

  std::int64_t at(std::int64_t page, int hk, int slot) const {
    return s.layout == PageLayout::hnd ? ((page * s.hkv + hk) * s.page_size + slot) * s.d
                                       : ((page * s.page_size + slot) * s.hkv + hk) * s.d;
  }
  // Key / value row j of sequence b, kv head hk.
  float* key(int b, int hk, std::int64_t j) {
    return &k[static_cast<std::size_t>(
        at(table[b * s.max_pages() + j / s.page_size], hk, static_cast<int>(j % s.page_size)))];
  }
  float* value(int b, int hk, std::int64_t j) {
    return &v[static_cast<std::size_t>(
        at(table[b * s.max_pages() + j / s.page_size], hk, static_cast<int>(j % s.page_size)))];
  }
  const float* qrow(int b, int h) const {
    return &q[(static_cast<std::size_t>(b) * s.hq + h) * s.d];
  }
  std::vector<std::int64_t> pool_shape() const {
    return s.layout == PageLayout::hnd
               ? std::vector<std::int64_t>{num_pages, s.hkv, s.page_size, s.d}
               : std::vector<std::int64_t>{num_pages, s.page_size, s.hkv, s.d};
  }
  PagedKV upload(Context& ctx) const {
    PagedKV kv;
    kv.k_pages = ctx.upload(k, DType::f32, pool_shape());
    kv.v_pages = ctx.upload(v, DType::f32, pool_shape());
    kv.page_table = ctx.upload(table, DType::i32, {s.batch(), s.max_pages()});
    kv.seq_lens = ctx.upload(s.seq_lens, DType::i32, {s.batch()});
    kv.page_size = s.page_size;
    kv.layout = s.layout;
    return kv;
  }
  Tensor upload_q(Context& ctx) const { return ctx.upload(q, DType::f32, {s.batch(), s.hq, s.d}); }
};

// Random keys/values (normal), pages shuffled (Fisher-Yates written out), NaN where no key is.
inline HostCache make_cache(const CacheShape& s, std::uint64_t seed) {
  HostCache c;
  c.s = s;
  std::int64_t used = 0;
  for (auto l : s.seq_lens) used += s.pages_of(l);
  c.num_pages = used + s.spare_pages;
  const std::size_t n = static_cast<std::size_t>(c.num_pages * s.hkv * s.page_size * s.d);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  c.k.assign(n, nan);
  c.v.assign(n, nan);
  std::vector<std::int32_t> order(static_cast<std::size_t>(c.num_pages));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  c.table.assign(static_cast<std::size_t>(s.batch() * s.max_pages()), 0);
  std::size_t next = 0;
  for (int b = 0; b < s.batch(); ++b)
    for (std::int64_t p = 0; p < s.pages_of(s.seq_lens[b]); ++p)
      c.table[b * s.max_pages() + p] = order[next++];
  const auto kr = random_normal(n, seed * 3 + 1), vr = random_normal(n, seed * 3 + 2);
  std::size_t at = 0;
  for (int b = 0; b < s.batch(); ++b)
    for (int hk = 0; hk < s.hkv; ++hk)
      for (std::int64_t j = 0; j < s.seq_lens[b]; ++j, ++at)
        for (int e = 0; e < s.d; ++e) {
          c.key(b, hk, j)[e] = kr[(at * s.d + e) % n];
          c.value(b, hk, j)[e] = vr[(at * s.d + e) % n];
        }
  c.q = random_normal(static_cast<std::size_t>(s.batch() * s.hq * s.d), seed * 3 + 3);
  return c;
}

inline std::string name_of(const CacheShape& s) {
  return fmt::format("Hq{}/Hkv{} D{} page{} {} lens {}", s.hq, s.hkv, s.d, s.page_size,
                     s.layout == PageLayout::hnd ? "hnd" : "nhd", fmt::join(s.seq_lens, ","));
}

inline void expect_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ(compare_bits(a.download<float>(), b.download<float>()), "") << what;
}
inline void expect_ints(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ(a.download<std::int32_t>(), b.download<std::int32_t>()) << what;
}

}  // namespace sparq::test::quest
