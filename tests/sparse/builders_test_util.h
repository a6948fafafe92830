// Helpers of the dynamic index builder tests (vertical-slash, XAttention): seeded Q/K, building
// an index on a Context and downloading it, the computed element set of an index row.
#pragma once
#include <cstdint>
#include <set>
#include <vector>

#include "host/src/sparse/builder_kernels.h"
#include "test_support.h"

namespace sparq::test {

struct QKShape {
  int B = 1, Hq = 2, Hkv = 2, Lq = 128, Lk = 128, D = 64;
};

struct QK {
  std::vector<float> q, k;
};

inline QK random_qk(const QKShape& s, std::uint64_t seed) {
  QK x;
  x.q = random_normal(static_cast<std::size_t>(s.B) * s.Hq * s.Lq * s.D, seed);
  x.k = random_normal(static_cast<std::size_t>(s.B) * s.Hkv * s.Lk * s.D, seed + 1);
  return x;
}

inline HostIndex build_host(Context& ctx, const QKShape& s, const QK& x, const Pattern& pat,
                            const IndexOptions& opt = {}, DType dt = DType::f32) {
  Tensor q = upload_as(ctx, x.q, dt, {s.B, s.Hq, s.Lq, s.D});
  Tensor k = upload_as(ctx, x.k, dt, {s.B, s.Hkv, s.Lk, s.D});
  return download_index(build_index(ctx, q, k, pat, opt));
}

// The keys of index row (b, hi, qb) that query row i computes: tiles then columns, each key once,
// restricted to visible keys (causal, identity order).
inline std::set<int> computed_keys(const HostIndex& x, int b, int hi, int qb, std::int64_t i) {
  std::set<int> keys;
  const std::int64_t row = (std::int64_t{b} * x.Hi + hi) * x.nqb + qb;
  const std::int64_t qpos = x.off + i;
  const auto vis = [&](std::int64_t j) { return j < x.Lk && (!x.causal || j <= qpos); };
  for (int t = 0; t < x.tile_count[static_cast<std::size_t>(row)]; ++t) {
    const int s = x.tile_start[static_cast<std::size_t>(row * x.max_tiles + t)];
    for (int j = s; j < s + 64; ++j)
      if (vis(j)) keys.insert(j);
  }
  for (int c = 0; c < x.col_count[static_cast<std::size_t>(row)]; ++c) {
    const int j = x.col_index[static_cast<std::size_t>(row * x.max_cols + c)];
    if (vis(j)) keys.insert(j);
  }
  return keys;
}

inline void expect_same_index(const HostIndex& a, const HostIndex& b, const std::string& what) {
  EXPECT_EQ(a.max_tiles, b.max_tiles) << what;
  EXPECT_EQ(a.max_cols, b.max_cols) << what;
  EXPECT_EQ(a.tile_count, b.tile_count) << what;
  EXPECT_EQ(a.tile_start, b.tile_start) << what;
  EXPECT_EQ(a.col_count, b.col_count) << what;
  EXPECT_EQ(a.col_index, b.col_index) << what;
}

}  // namespace sparq::test
