#include "reference/sparse_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sparq::ref {

std::vector<std::int32_t> computed_keys(const HostIndex& x, int b, int hi, std::int64_t i) {
  const std::int64_t qb = i / 64;
  const std::int64_t row = (std::int64_t{b} * x.Hi + hi) * x.nqb + qb;
  const bool perm = !x.qpos.empty();
  const std::int64_t qp = perm ? x.qpos[static_cast<std::size_t>(b * x.Lq + i)] : x.off + i;
  auto kpos = [&](std::int64_t j) {
    return perm ? x.kpos[static_cast<std::size_t>(b * x.Lk + j)] : j;
  };
  auto visible = [&](std::int64_t j) {
    if (j < 0 || j >= x.Lk) return false;
    const std::int64_t kp = kpos(j);
    if (x.causal && kp > qp) return false;
    if (x.window_tokens > 0 && !(kp < x.sink_tokens || kp > qp - x.window_tokens)) return false;
    return true;
  };
  std::vector<std::int32_t> keys;
  const int nt = x.tile_count[static_cast<std::size_t>(row)];
  for (int t = 0; t < nt; ++t) {
    const std::int64_t s = x.tile_start[static_cast<std::size_t>(row * x.max_tiles + t)];
    for (std::int64_t j = s; j < s + 64; ++j)
      if (visible(j)) keys.push_back(static_cast<std::int32_t>(j));
  }
  const int nc = x.col_count[static_cast<std::size_t>(row)];
  for (int u = 0; u < nc; ++u) {
    const std::int64_t j = x.col_index[static_cast<std::size_t>(row * x.max_cols + u)];
    if (visible(j)) keys.push_back(static_cast<std::int32_t>(j));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

SparseRef sparse_attention(const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, int B, int Hq, int Hkv, int D,
                           const HostIndex& x, double scale) {
  const double sc = scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(D)) : scale;
  const std::int64_t Lq = x.Lq, Lk = x.Lk;
  SparseRef r;
  r.out.assign(static_cast<std::size_t>(B * Hq * Lq * D), 0.0);
  r.lse2.assign(static_cast<std::size_t>(B * Hq * Lq), -std::numeric_limits<double>::infinity());
  const int G = Hq / Hkv;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hq; ++h) {
      const int hk = h / G;
      const int hi = x.sharing == IndexSharing::kv_group ? hk : h;
      for (std::int64_t i = 0; i < Lq; ++i) {
        const auto keys = computed_keys(x, b, hi, i);
        if (keys.empty()) continue;
        const float* qi = &q[static_cast<std::size_t>(((b * Hq + h) * Lq + i) * D)];
        std::vector<double> s(keys.size());
        double m = -std::numeric_limits<double>::infinity();
        for (std::size_t u = 0; u < keys.size(); ++u) {
          const float* kj = &k[static_cast<std::size_t>(((b * Hkv + hk) * Lk + keys[u]) * D)];
          double a = 0;
          for (int e = 0; e < D; ++e) a += double{qi[e]} * double{kj[e]};
          s[u] = a * sc;
          m = std::max(m, s[u]);
        }
        double z = 0;
        for (auto& e : s) {
          e = std::exp(e - m);
          z += e;
        }
        double* o = &r.out[static_cast<std::size_t>(((b * Hq + h) * Lq + i) * D)];
        for (std::size_t u = 0; u < keys.size(); ++u) {
          const float* vj = &v[static_cast<std::size_t>(((b * Hkv + hk) * Lk + keys[u]) * D)];
          for (int e = 0; e < D; ++e) o[e] += s[u] / z * double{vj[e]};
        }
        r.lse2[static_cast<std::size_t>((b * Hq + h) * Lq + i)] = (m + std::log(z)) / std::log(2.0);
      }
    }
  return r;
}

}  // namespace sparq::ref
