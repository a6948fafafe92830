// Helpers of the sparse-attention tests: seeded random indices that satisfy invariants 1-8
// (built through the shared normalization), uploads to a device and a fallback context.
#pragma once
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "test_support.h"

namespace sparq::test::sparse {

struct Shape {
  int B = 1, Hq = 2, Hkv = 1, D = 64;
  std::int64_t Lq = 128, Lk = 128;
  bool causal = true;
  IndexSharing sharing = IndexSharing::per_q_head;
  bool permuted = false;  // qpos = kpos = a random permutation (needs Lq == Lk)
  int sink = 0, window = 0;
};

inline int hi_count(const Shape& s) {
  return s.sharing == IndexSharing::kv_group ? s.Hkv : s.Hq;
}

// A random valid index: per row a few intervals (unaligned, some long), random columns, and the
// rows' own keys (invariant 6), normalized; capacities from the worst case.
inline HostIndex random_index(const Shape& s, std::uint64_t seed, int n_iv = 4, int n_col = 40) {
  std::mt19937_64 rng(seed);
  HostIndex h;
  h.B = s.B;
  h.Hi = hi_count(s);
  h.Lq = s.Lq;
  h.Lk = s.Lk;
  h.off = s.Lk - s.Lq;
  h.causal = s.causal;
  h.sharing = s.sharing;
  h.nqb = static_cast<int>((s.Lq + 63) / 64);
  h.max_tiles = static_cast<int>((s.Lk + 63) / 64);
  h.max_cols = n_col + 3;
  h.sink_tokens = s.sink;
  h.window_tokens = s.window;
  if (s.permuted) {
    for (int b = 0; b < s.B; ++b) {
      std::vector<std::int32_t> p(static_cast<std::size_t>(s.Lk));
      std::iota(p.begin(), p.end(), 0);
      std::shuffle(p.begin(), p.end(), rng);
      h.kpos.insert(h.kpos.end(), p.begin(), p.end());
      h.qpos.insert(h.qpos.end(), p.begin(), p.end());
    }
  }
  const auto rows = static_cast<std::size_t>(h.B * h.Hi * h.nqb);
  h.tile_count.resize(rows);
  h.col_count.resize(rows);
  h.tile_start.assign(rows * static_cast<std::size_t>(h.max_tiles), -1);
  h.col_index.assign(rows * static_cast<std::size_t>(h.max_cols), -1);
  std::uniform_int_distribution<std::int32_t> key(0, static_cast<std::int32_t>(s.Lk - 1));
  std::uniform_int_distribution<std::int32_t> len(1, 200);
  for (int b = 0; b < h.B; ++b) {
    std::vector<std::int32_t> kinv(static_cast<std::size_t>(s.Lk));
    std::vector<std::int32_t> kp;
    if (s.permuted) {
      kp.assign(h.kpos.begin() + b * s.Lk, h.kpos.begin() + (b + 1) * s.Lk);
      for (std::int32_t j = 0; j < s.Lk; ++j)
        kinv[static_cast<std::size_t>(kp[static_cast<std::size_t>(j)])] = j;
    }
    for (int hi = 0; hi < h.Hi; ++hi)
      for (int qb = 0; qb < h.nqb; ++qb) {
        const std::int64_t r0 = qb * 64, r1 = std::min<std::int64_t>(r0 + 64, s.Lq);
        std::int32_t p1 = 0;
        std::vector<std::pair<std::int32_t, std::int32_t>> iv;
        for (std::int64_t i = r0; i < r1; ++i) {
          const std::int32_t pos = s.permuted ? h.qpos[static_cast<std::size_t>(b * s.Lq + i)]
                                              : static_cast<std::int32_t>(h.off + i);
          p1 = std::max(p1, pos);
          const std::int32_t j = s.permuted ? kinv[static_cast<std::size_t>(pos)] : pos;
          iv.emplace_back(j, j + 1);  // own key (diagonal)
        }
        for (int t = 0; t < n_iv; ++t) {
          const std::int32_t a = key(rng);
          iv.emplace_back(a, a + len(rng));
        }
        std::vector<std::int32_t> cols;
        for (int t = 0; t < n_col; ++t) cols.push_back(key(rng));
        const auto r = normalize_index_row(iv, cols, p1, static_cast<std::int32_t>(s.Lk), s.causal,
                                           kp, h.max_tiles, h.max_cols);
        const std::size_t row = static_cast<std::size_t>((b * h.Hi + hi) * h.nqb + qb);
        h.tile_count[row] = static_cast<std::int32_t>(r.tiles.size());
        h.col_count[row] = static_cast<std::int32_t>(r.cols.size());
        std::copy(r.tiles.begin(), r.tiles.end(),
                  h.tile_start.begin() + static_cast<std::ptrdiff_t>(row * h.max_tiles));
        std::copy(r.cols.begin(), r.cols.end(),
                  h.col_index.begin() + static_cast<std::ptrdiff_t>(row * h.max_cols));
      }
  }
  validate_index(h);
  return h;
}

struct Inputs {
  std::vector<float> q, k, v;
};
inline Inputs random_inputs(const Shape& s, std::uint64_t seed, float scale = 1.0f) {
  Inputs in;
  in.q = random_normal(static_cast<std::size_t>(s.B * s.Hq * s.Lq * s.D), seed, scale);
  in.k = random_normal(static_cast<std::size_t>(s.B * s.Hkv * s.Lk * s.D), seed + 1, scale);
  in.v = random_normal(static_cast<std::size_t>(s.B * s.Hkv * s.Lk * s.D), seed + 2);
  return in;
}

struct Uploaded {
  Tensor q, k, v;
};
inline Uploaded upload(Context& ctx, const Shape& s, const Inputs& in) {
  return {ctx.upload(in.q, DType::f32, {s.B, s.Hq, s.Lq, s.D}),
          ctx.upload(in.k, DType::f32, {s.B, s.Hkv, s.Lk, s.D}),
          ctx.upload(in.v, DType::f32, {s.B, s.Hkv, s.Lk, s.D})};
}

inline std::vector<float> f32(const Tensor& t) {
  return t.download<float>();
}

}  // namespace sparq::test::sparse
