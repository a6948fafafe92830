#include "quest_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sparq::ref {

RowAttention attention_row(const float* q, const std::vector<const float*>& keys,
                           const std::vector<const float*>& values, int d, double scale) {
  RowAttention r;
  r.out.assign(static_cast<std::size_t>(d), 0.0);
  if (keys.empty()) {
    r.lse2 = -std::numeric_limits<double>::infinity();
    return r;
  }
  std::vector<double> s(keys.size());
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < keys.size(); ++j) {
    double acc = 0.0;
    for (int e = 0; e < d; ++e) acc += static_cast<double>(q[e]) * keys[j][e];
    s[j] = acc * scale;
    m = std::max(m, s[j]);
  }
  double z = 0.0;
  for (std::size_t j = 0; j < keys.size(); ++j) {
    const double p = std::exp(s[j] - m);
    z += p;
    for (int e = 0; e < d; ++e) r.out[e] += p * values[j][e];
  }
  for (auto& x : r.out) x /= z;
  r.lse2 = (m + std::log(z)) / std::log(2.0);
  return r;
}

double max_dot(const float* q, const std::vector<const float*>& keys, int d) {
  double best = -std::numeric_limits<double>::infinity();
  for (const float* k : keys) {
    double acc = 0.0;
    for (int e = 0; e < d; ++e) acc += static_cast<double>(q[e]) * k[e];
    best = std::max(best, acc);
  }
  return best;
}

}  // namespace sparq::ref
