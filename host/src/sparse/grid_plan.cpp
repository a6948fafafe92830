// The grid builder's host plan (grid_plan.h): checks, stride choice, permutations, line tiles.
#include "grid_plan.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "fallback_cpu/sparse/builders_fallback.h"
#include "sparq/mminference.h"

namespace sparq::sparse_detail {

namespace {

constexpr const char* kOp = "build_index(Grid)";

std::vector<std::int32_t> stable_by_modality(const std::vector<std::int32_t>& order,
                                             const std::vector<std::int32_t>& modality,
                                             std::int64_t shift) {
  std::vector<std::int32_t> out = order;
  std::stable_sort(out.begin(), out.end(), [&](std::int32_t x, std::int32_t y) {
    return modality[static_cast<std::size_t>(x + shift)] <
           modality[static_cast<std::size_t>(y + shift)];
  });
  return out;
}

}  // namespace

void check_grid(const Grid& pat, const BuildArgs& a) {
  require(kOp, a.causal,
          "the grid head is causal only (its probe is vertical-slash's); "
          "options.causal is false");
  require(kOp, pat.stride >= 0, "stride = {}; expected > 0 (tokens per frame) or 0 (estimate)",
          pat.stride);
  require(kOp, pat.top_k >= 0 && pat.top_k <= (1 << 20), "top_k = {} must be in [0, 2^20]",
          pat.top_k);
  require(kOp, pat.lines >= 0 && pat.lines <= (1 << 20), "lines = {} must be in [0, 2^20]",
          pat.lines);
  std::vector<VideoSegment> segs = pat.segments;
  std::sort(segs.begin(), segs.end(),
            [](const VideoSegment& x, const VideoSegment& y) { return x.start < y.start; });
  std::int64_t prev = 0;
  for (const auto& s : segs) {
    require(kOp, s.start >= prev && s.start < s.end && s.end <= a.Lk && s.frame_tokens >= 0,
            "segment [{}, {}) with frame_tokens {}: segments must be non-empty, disjoint, inside "
            "[0, Lk = {}), frame_tokens >= 0",
            s.start, s.end, s.frame_tokens, a.Lk);
    prev = s.end;
  }
  require(kOp,
          pat.boundary == Boundary::none || pat.boundary == Boundary::q_boundary ||
              pat.boundary == Boundary::two_d,
          "boundary has an unknown value {}", static_cast<int>(pat.boundary));
  if (pat.boundary == Boundary::none) return;
  require(kOp, static_cast<std::int64_t>(pat.modality.size()) == a.Lk,
          "modality has {} entries; a boundary head needs one id per key position (Lk = {})",
          pat.modality.size(), a.Lk);
  for (std::size_t j = 0; j < pat.modality.size(); ++j)
    require(kOp, pat.modality[j] >= 0, "modality[{}] = {}; ids are >= 0", j, pat.modality[j]);
}

std::int64_t choose_grid_stride(const float* v, std::int64_t s0, std::int64_t s1) {
  const std::int64_t n = s1 - s0;
  std::int64_t best_f = 0;
  float best = -std::numeric_limits<float>::infinity();
  std::vector<float> m;
  for (std::int64_t f = kGridMinStride; f <= std::min(kGridMaxStride, n / 2); ++f) {
    m.assign(static_cast<std::size_t>(f), 0.0f);
    for (std::int64_t j = s0; j < s1; ++j) {
      float& x = m[static_cast<std::size_t>((j - s0) % f)];
      x = x + v[j];
    }
    const auto top = fallback::sparse::topk_ascending(m.data(), static_cast<int>(f),
                                                      static_cast<int>((f + 7) / 8));
    float score = 0.0f;
    for (const std::int32_t phi : top) score = score + m[static_cast<std::size_t>(phi)];
    if (score > best) {
      best = score;
      best_f = f;
    }
  }
  return best_f;
}

GridPlan grid_plan(const Grid& pat, const BuildArgs& a, const GridProbes& probes) {
  const std::int64_t Lq = a.Lq, Lk = a.Lk, off = a.off;
  const int nkb = static_cast<int>((Lk + kTile - 1) / kTile);
  const std::size_t ng = probes.ids.size();
  const bool boundary = pat.boundary != Boundary::none;
  GridPlan p;
  // Query row -> probe group, for the original query index i (identity without boundary).
  auto group_of = [&](std::int64_t i) -> std::size_t {
    if (!boundary) return 0;
    const std::int32_t m = pat.modality[static_cast<std::size_t>(off + i)];
    return static_cast<std::size_t>(std::lower_bound(probes.ids.begin(), probes.ids.end(), m) -
                                    probes.ids.begin());
  };
  std::vector<std::vector<std::int32_t>> row_lines(static_cast<std::size_t>(a.B) * a.Hi * a.nqb);
  std::vector<float> vsum(static_cast<std::size_t>(Lk));
  for (int b = 0; b < a.B; ++b) {
    // Step 2: strides, from the column mass summed over groups and index heads.
    std::fill(vsum.begin(), vsum.end(), 0.0f);
    for (std::size_t g = 0; g < ng; ++g)
      for (int hi = 0; hi < a.Hi; ++hi) {
        const float* v = probes.v[g].data() + (std::int64_t{b} * a.Hi + hi) * Lk;
        for (std::int64_t j = 0; j < Lk; ++j)
          vsum[static_cast<std::size_t>(j)] = vsum[static_cast<std::size_t>(j)] + v[j];
      }
    std::vector<VideoSegment> segs;
    for (const auto& s : pat.segments) {
      std::int64_t f = s.frame_tokens > 0 ? s.frame_tokens : pat.stride;
      if (f == 0) f = choose_grid_stride(vsum.data(), s.start, s.end);
      p.strides.push_back(f);
      if (f > 0) segs.push_back({s.start, s.end, f});
    }
    // Step 3: permutations.
    std::vector<std::int32_t> kp = grid_permutation(Lk, segs);
    if (pat.boundary == Boundary::two_d) kp = stable_by_modality(kp, pat.modality, 0);
    std::vector<std::int32_t> qp;
    for (const std::int32_t x : grid_permutation(Lk, segs))
      if (x >= off) qp.push_back(static_cast<std::int32_t>(x - off));
    if (boundary) qp = stable_by_modality(qp, pat.modality, off);
    std::vector<std::int32_t> kinv(static_cast<std::size_t>(Lk));
    for (std::int64_t n = 0; n < Lk; ++n) kinv[static_cast<std::size_t>(kp[n])] = n;
    for (int kb = 0; kb < nkb; ++kb) {
      std::int32_t mn = kp[static_cast<std::size_t>(kb) * kTile];
      for (std::int64_t n = std::int64_t{kb} * kTile;
           n < std::min(Lk, std::int64_t{kb + 1} * kTile); ++n)
        mn = std::min(mn, kp[static_cast<std::size_t>(n)]);
      p.kbmin.push_back(mn);
    }
    p.kperm.insert(p.kperm.end(), kp.begin(), kp.end());
    p.kinv.insert(p.kinv.end(), kinv.begin(), kinv.end());
    p.qperm.insert(p.qperm.end(), qp.begin(), qp.end());
    for (const std::int32_t x : qp) p.qpos.push_back(static_cast<std::int32_t>(x + off));
    // Step 5: line tiles per (index head, group): permuted tile sums of v, top `lines`; with a
    // 2D boundary, the top `lines` separately among the tiles of each key modality (the
    // modality of the tile's first key).
    std::vector<float> ls(static_cast<std::size_t>(nkb));
    for (int hi = 0; hi < a.Hi; ++hi) {
      std::vector<std::vector<std::int32_t>> glines(ng);
      for (std::size_t g = 0; g < ng; ++g) {
        const float* v = probes.v[g].data() + (std::int64_t{b} * a.Hi + hi) * Lk;
        for (int t = 0; t < nkb; ++t) {
          float s = 0.0f;
          for (std::int64_t n = std::int64_t{t} * kTile;
               n < std::min(Lk, std::int64_t{t + 1} * kTile); ++n)
            s = s + v[kp[static_cast<std::size_t>(n)]];
          ls[static_cast<std::size_t>(t)] = s;
        }
        if (pat.boundary != Boundary::two_d) {
          glines[g] = fallback::sparse::topk_ascending(ls.data(), nkb, pat.lines);
          continue;
        }
        std::vector<std::int32_t> kmods;
        for (int t = 0; t < nkb; ++t)
          kmods.push_back(pat.modality[static_cast<std::size_t>(kp[std::size_t(t) * kTile])]);
        std::vector<std::int32_t> ids = kmods;
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        for (const std::int32_t id : ids) {
          std::vector<float> sc;
          std::vector<std::int32_t> tiles;
          for (int t = 0; t < nkb; ++t)
            if (kmods[static_cast<std::size_t>(t)] == id) {
              sc.push_back(ls[static_cast<std::size_t>(t)]);
              tiles.push_back(t);
            }
          for (const std::int32_t u :
               fallback::sparse::topk_ascending(sc.data(), static_cast<int>(sc.size()), pat.lines))
            glines[g].push_back(tiles[static_cast<std::size_t>(u)]);
        }
        std::sort(glines[g].begin(), glines[g].end());
      }
      // Each query block takes the union of its rows' groups' lines.
      for (int qb = 0; qb < a.nqb; ++qb) {
        std::vector<std::int32_t> u;
        std::size_t last = ng;
        for (std::int64_t r = std::int64_t{qb} * kTile;
             r < std::min(Lq, std::int64_t{qb + 1} * kTile); ++r) {
          const std::size_t g = group_of(qp[static_cast<std::size_t>(r)]);
          if (g == last) continue;
          last = g;
          u.insert(u.end(), glines[g].begin(), glines[g].end());
        }
        std::sort(u.begin(), u.end());
        u.erase(std::unique(u.begin(), u.end()), u.end());
        p.max_lines = std::max(p.max_lines, static_cast<int>(u.size()));
        row_lines[static_cast<std::size_t>((std::int64_t{b} * a.Hi + hi) * a.nqb + qb)] =
            std::move(u);
      }
    }
  }
  p.lines.assign(row_lines.size() * static_cast<std::size_t>(p.max_lines), -1);
  for (std::size_t r = 0; r < row_lines.size(); ++r) {
    p.nlines.push_back(static_cast<std::int32_t>(row_lines[r].size()));
    std::copy(row_lines[r].begin(), row_lines[r].end(),
              p.lines.begin() + static_cast<std::ptrdiff_t>(r * p.max_lines));
  }
  return p;
}

}  // namespace sparq::sparse_detail
