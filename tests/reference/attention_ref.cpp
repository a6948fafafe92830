// Float64 reference attention (see attention_ref.h).
#include "reference/attention_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sparq::ref {

AttentionRef attention(const std::vector<float>& q, const std::vector<float>& k,
                       const std::vector<float>& v, const AttentionShape& sh, bool causal,
                       double scale) {
  const int d = sh.d;
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(d));
  AttentionRef r;
  r.out.assign(static_cast<std::size_t>(sh.batch) * sh.hq * sh.lq * d, 0.0);
  r.lse2.assign(static_cast<std::size_t>(sh.batch) * sh.hq * sh.lq,
                -std::numeric_limits<double>::infinity());
  std::vector<double> s(static_cast<std::size_t>(sh.lk));
  const int group = sh.hq / sh.hkv;
  for (int b = 0; b < sh.batch; ++b)
    for (int h = 0; h < sh.hq; ++h) {
      const std::size_t kv = (static_cast<std::size_t>(b) * sh.hkv + h / group) * sh.lk * d;
      for (std::int64_t i = 0; i < sh.lq; ++i) {
        const std::size_t row = (static_cast<std::size_t>(b) * sh.hq + h) * sh.lq + i;
        const std::int64_t end = causal ? std::min(sh.lk, i + (sh.lk - sh.lq) + 1) : sh.lk;
        if (end <= 0) continue;
        double m = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < end; ++j) {
          double dot = 0.0;
          for (int e = 0; e < d; ++e)
            dot += static_cast<double>(q[row * d + e]) * static_cast<double>(k[kv + j * d + e]);
          s[j] = scale * dot;
          m = std::max(m, s[j]);
        }
        double sum = 0.0;
        std::vector<double> acc(d, 0.0);
        for (std::int64_t j = 0; j < end; ++j) {
          const double p = std::exp(s[j] - m);
          sum += p;
          for (int e = 0; e < d; ++e) acc[e] += p * static_cast<double>(v[kv + j * d + e]);
        }
        for (int e = 0; e < d; ++e) r.out[row * d + e] = acc[e] / sum;
        r.lse2[row] = (m + std::log(sum)) / std::log(2.0);
      }
    }
  return r;
}

}  // namespace sparq::ref
