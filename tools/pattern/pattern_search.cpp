// The float64 scoring behind sparq-pattern search (spec §5.4): one pass over the scored rows of a
// head computes its exact softmax row once and credits every candidate with the mass of the
// elements its index makes the kernel compute.
#include "pattern_search.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace sparq::pattern {

HeadPattern Candidate::pattern() const {
  if (type == "stream_llm") return AShape{a, b};
  if (type == "vertical_and_slash") return VerticalSlash{a, b};
  if (type == "block_sparse") return BlockSparse{100};  // what MInference's loader makes of it
  throw std::runtime_error("unknown candidate type '" + type + "'");
}

std::string Candidate::label() const {
  return type + "(" + std::to_string(a) + "," + std::to_string(b) + ")";
}

std::vector<Candidate> default_candidates() {
  return {{"stream_llm", 100, 800},           {"vertical_and_slash", 30, 800},
          {"vertical_and_slash", 100, 750},   {"vertical_and_slash", 500, 700},
          {"vertical_and_slash", 3500, 100},  {"vertical_and_slash", 100, 800},
          {"vertical_and_slash", 1000, 4096}, {"block_sparse", 100, 0}};
}

namespace {

// The key ranges the kernel computes for row i (absolute key ids, causal: keys <= i).
template <class F>
void for_each_computed(const HostIndex& x, std::int64_t i, F&& f) {
  const std::int64_t qb = i / 64;
  const auto tc = x.tile_count[static_cast<std::size_t>(qb)];
  const bool masked = x.sink_tokens > 0 || x.window_tokens > 0;
  for (int t = 0; t < tc; ++t) {
    const std::int64_t s = x.tile_start[static_cast<std::size_t>(qb * x.max_tiles + t)];
    const std::int64_t e = std::min<std::int64_t>(s + 64, i + 1);
    for (std::int64_t j = s; j < e; ++j)
      if (!masked || j < x.sink_tokens || j > i - x.window_tokens) f(j);
  }
  const auto cc = x.col_count[static_cast<std::size_t>(qb)];
  for (int c = 0; c < cc; ++c) {
    const std::int64_t j = x.col_index[static_cast<std::size_t>(qb * x.max_cols + c)];
    if (j <= i) f(j);
  }
}

}  // namespace

HeadChoice search_head(Context& ctx, const HeadData& h, const std::vector<Candidate>& candidates,
                       const SearchOptions& o) {
  if (h.q == nullptr || h.k == nullptr || h.L < 1)
    throw std::runtime_error("search_head: Q and K of at least one token are required");
  if (h.D != 64 && h.D != 128)
    throw std::runtime_error("head dim " + std::to_string(h.D) + " is not 64 or 128");
  if (o.metric == Metric::output && h.v == nullptr)
    throw std::runtime_error("--metric output needs V (--v)");
  if (candidates.empty()) throw std::runtime_error("no candidates");
  if (!(o.target_recall >= 0 && o.target_recall <= 1))
    throw std::runtime_error("target recall must lie in [0, 1]");
  const std::int64_t L = h.L, D = h.D;
  const std::int64_t first =
      o.first_row >= 0 ? std::min(o.first_row, L - 1) : (L > 5000 ? 2500 : L / 2);

  const std::size_t n = static_cast<std::size_t>(L * D);
  const Tensor q = ctx.upload(std::vector<float>(h.q, h.q + n), DType::f32, {1, 1, L, D});
  const Tensor k = ctx.upload(std::vector<float>(h.k, h.k + n), DType::f32, {1, 1, L, D});
  std::vector<HostIndex> idx;
  for (const auto& c : candidates) {
    const Pattern p = std::visit([](const auto& x) { return Pattern(x); }, c.pattern());
    idx.push_back(download_index(build_index(ctx, q, k, p)));
  }

  const std::size_t nc = candidates.size();
  std::vector<double> mass(nc, 0), pairs(nc, 0), bad(nc, 0);
  double causal_pairs = 0;
  std::vector<double> a(static_cast<std::size_t>(L)), od(static_cast<std::size_t>(D)),
      os(static_cast<std::size_t>(D));
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (std::int64_t i = first; i < L; ++i) {
    const float* qi = h.q + i * D;
    double mx = -INFINITY;
    for (std::int64_t j = 0; j <= i; ++j) {
      const float* kj = h.k + j * D;
      double s = 0;
      for (std::int64_t d = 0; d < D; ++d) s += static_cast<double>(qi[d]) * kj[d];
      a[static_cast<std::size_t>(j)] = s * scale;
      mx = std::max(mx, s * scale);
    }
    double sum = 0;
    for (std::int64_t j = 0; j <= i; ++j)
      sum += (a[static_cast<std::size_t>(j)] = std::exp(a[static_cast<std::size_t>(j)] - mx));
    for (std::int64_t j = 0; j <= i; ++j) a[static_cast<std::size_t>(j)] /= sum;
    causal_pairs += static_cast<double>(i + 1);
    if (o.metric == Metric::output) {
      std::fill(od.begin(), od.end(), 0.0);
      for (std::int64_t j = 0; j <= i; ++j)
        for (std::int64_t d = 0; d < D; ++d)
          od[static_cast<std::size_t>(d)] += a[static_cast<std::size_t>(j)] * h.v[j * D + d];
    }
    for (std::size_t c = 0; c < nc; ++c) {
      double m = 0, cnt = 0;
      if (o.metric == Metric::output) std::fill(os.begin(), os.end(), 0.0);
      for_each_computed(idx[c], i, [&](std::int64_t j) {
        const double p = a[static_cast<std::size_t>(j)];
        m += p;
        cnt += 1;
        if (o.metric == Metric::output)
          for (std::int64_t d = 0; d < D; ++d)
            os[static_cast<std::size_t>(d)] += p * h.v[j * D + d];
      });
      mass[c] += m;
      pairs[c] += cnt;
      if (o.metric == Metric::output)
        for (std::int64_t d = 0; d < D; ++d) {
          const double sparse = m > 0 ? os[static_cast<std::size_t>(d)] / m : 0.0;
          if (std::fabs(sparse - od[static_cast<std::size_t>(d)]) > 5e-3) bad[c] += 1;
        }
    }
  }

  HeadChoice r;
  const double rows = static_cast<double>(L - first);
  for (std::size_t c = 0; c < nc; ++c)
    r.scores.push_back({mass[c] / rows, pairs[c] / causal_pairs,
                        o.metric == Metric::output ? static_cast<std::int64_t>(bad[c]) : -1});
  auto better = [&](std::size_t x, std::size_t y) {  // strictly better; ties keep the earlier
    const Score &sx = r.scores[x], &sy = r.scores[y];
    if (o.metric == Metric::output) return sx.bad < sy.bad;
    return sx.recall > sy.recall;
  };
  std::size_t best = 0;
  for (std::size_t c = 1; c < nc; ++c)
    if (better(c, best)) best = c;
  if (o.metric == Metric::recall && o.target_recall > 0) {
    std::size_t cheapest = nc;
    for (std::size_t c = 0; c < nc; ++c)
      if (r.scores[c].recall >= o.target_recall &&
          (cheapest == nc || r.scores[c].density < r.scores[cheapest].density))
        cheapest = c;
    if (cheapest != nc) best = cheapest;
  }
  r.chosen = static_cast<int>(best);
  return r;
}

nlohmann::json minference_config(const std::vector<HeadChoice>& heads,
                                 const std::vector<Candidate>& candidates, int layer,
                                 Metric metric) {
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < layer; ++l) layers.push_back(nlohmann::json::object());
  nlohmann::json this_layer = nlohmann::json::object();
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const auto& c = candidates.at(static_cast<std::size_t>(heads[h].chosen));
    const Score& s = heads[h].scores.at(static_cast<std::size_t>(heads[h].chosen));
    const double score = metric == Metric::output ? static_cast<double>(s.bad) : s.recall;
    this_layer[std::to_string(h)] = nlohmann::json::array({c.type, c.a, c.b, score});
  }
  layers.push_back(this_layer);
  return layers;
}

std::string density_map(const HostIndex& x, int b, int h, int width) {
  if (b < 0 || b >= x.B || h < 0 || h >= x.Hi) throw std::runtime_error("no such index row");
  const std::int64_t nkb = (x.Lk + 63) / 64, nqb = x.nqb;
  const std::int64_t rows = std::min<std::int64_t>(nqb, width),
                     cols = std::min<std::int64_t>(nkb, width);
  std::vector<double> cover(static_cast<std::size_t>(rows * cols), 0);
  const std::size_t base =
      static_cast<std::size_t>((static_cast<std::int64_t>(b) * x.Hi + h) * nqb);
  for (std::int64_t qb = 0; qb < nqb; ++qb) {
    std::vector<char> hit(static_cast<std::size_t>(nkb), 0);
    const std::size_t r = base + static_cast<std::size_t>(qb);
    for (int t = 0; t < x.tile_count[r]; ++t) {
      const std::int64_t s = x.tile_start[r * static_cast<std::size_t>(x.max_tiles) + t];
      for (std::int64_t kb = s / 64; kb <= std::min(nkb - 1, (s + 63) / 64); ++kb)
        if (kb * 64 < s + 64) hit[static_cast<std::size_t>(kb)] = 1;
    }
    for (int c = 0; c < x.col_count[r]; ++c)
      hit[static_cast<std::size_t>(x.col_index[r * static_cast<std::size_t>(x.max_cols) + c] /
                                   64)] = 1;
    const std::int64_t row = qb * rows / nqb;
    for (std::int64_t kb = 0; kb < nkb; ++kb)
      if (hit[static_cast<std::size_t>(kb)])
        cover[static_cast<std::size_t>(row * cols + kb * cols / nkb)] += 1;
  }
  const double per_cell = static_cast<double>(nqb) / static_cast<double>(rows) *
                          (static_cast<double>(nkb) / static_cast<double>(cols));
  static const char ramp[] = " .:-=+*#";
  std::string out;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const double f = std::min(1.0, cover[static_cast<std::size_t>(r * cols + c)] / per_cell);
      out += ramp[f <= 0 ? 0 : 1 + static_cast<int>(f * 6.999)];
    }
    out += '\n';
  }
  return out;
}

}  // namespace sparq::pattern
