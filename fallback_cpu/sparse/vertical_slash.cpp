// Fallback twin of kernels_cl/sparse/vertical_slash.cl: the same defined order (stated at the top
// of the .cl file), query heads and index heads in parallel (threading never changes bits).
#include <algorithm>
#include <limits>

#include "builders_fallback.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "sparse/builder_math.h"

namespace sparq::fallback::sparse {

using namespace sparq::cl_common;

std::vector<std::int32_t> topk_ascending(const float* score, int n, int k) {
  std::vector<std::int32_t> idx;
  if (k <= 0 || n <= 0) return idx;
  idx.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) idx[static_cast<std::size_t>(i)] = i;
  const auto before = [score](std::int32_t a, std::int32_t b) {
    const uint ka = sq_topk_key(score[a]), kb = sq_topk_key(score[b]);
    return ka > kb || (ka == kb && a < b);
  };
  const auto kk = static_cast<std::ptrdiff_t>(std::min(k, n));
  std::nth_element(idx.begin(), idx.begin() + kk - 1, idx.end(), before);
  idx.resize(static_cast<std::size_t>(kk));
  std::sort(idx.begin(), idx.end());
  return idx;
}

void vertical_slash(const VerticalSlashProblem& p) {
  const int nl = std::min(64, p.Lq);
  const int Lk = p.Lk, D = p.D;
  const int Hi = p.Hq / p.gi;
  const std::int64_t npairs = std::int64_t{p.B} * p.Hq;
  // Probe: x[pair][r][j], then m, Z per row (§4 probe softmax, two-level sum).
  std::vector<float> x(static_cast<std::size_t>(npairs * nl * Lk));
  std::vector<float> mz(static_cast<std::size_t>(npairs * nl * 2));
  parallel_chunks(npairs, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> qp(static_cast<std::size_t>(D));
    for (std::int64_t pr = lo; pr < hi; ++pr) {
      const std::int64_t b = pr / p.Hq;
      const int h = static_cast<int>(pr % p.Hq);
      for (int r = 0; r < nl; ++r) {
        const int qpos = Lk - nl + r;
        for (int d = 0; d < D; ++d) qp[d] = p.q.at(b, h, p.Lq - nl + r, d) * p.c;
        float* xr = x.data() + (pr * nl + r) * Lk;
        float m = sq_sb_neg_inf();
        for (int j = 0; j < Lk; ++j) {
          float s = sq_sb_neg_inf();
          if (j <= qpos) {
            float acc = 0.0f;
            for (int d = 0; d < D; ++d) acc = sq_fma(qp[d], p.k.at(b, h / p.G, j, d), acc);
            s = acc;
          }
          xr[j] = s;
          m = sq_mx(m, s);
        }
        float z = 0.0f;
        for (int c0 = 0; c0 < Lk; c0 += SQ_SB_TILE) {
          float part = 0.0f;
          for (int j = c0; j < std::min(Lk, c0 + SQ_SB_TILE); ++j) part = part + sq_exp2(xr[j] - m);
          z = z + part;
        }
        mz[static_cast<std::size_t>((pr * nl + r) * 2)] = m;
        mz[static_cast<std::size_t>((pr * nl + r) * 2 + 1)] = z;
      }
    }
  });
  // Scores, lists and the index per index head.
  const std::int64_t nip = std::int64_t{p.B} * Hi;
  const int nqb = (p.Lq + SQ_SB_TILE - 1) / SQ_SB_TILE;
  const int off = Lk - p.Lq;
  if (p.vscore) p.vscore->assign(static_cast<std::size_t>(nip * Lk), 0.0f);
  if (p.sscore) p.sscore->assign(static_cast<std::size_t>(nip * Lk), 0.0f);
  if (p.vlist) p.vlist->assign(static_cast<std::size_t>(nip * p.V), -1);
  if (p.slist) p.slist->assign(static_cast<std::size_t>(nip * p.S), -1);
  parallel_chunks(nip, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> vs(static_cast<std::size_t>(Lk)), sl(static_cast<std::size_t>(Lk));
    for (std::int64_t ip = lo; ip < hi; ++ip) {
      for (int j = 0; j < Lk; ++j) {
        float v = 0.0f, s = 0.0f;
        for (int r = 0; r < nl; ++r) {
          const int jj = Lk - nl + r - j;
          float pv = 0.0f, ps = 0.0f;
          for (int g = 0; g < p.gi; ++g) {
            const std::int64_t pr = (ip * p.gi + g) * nl + r;
            const float m = mz[static_cast<std::size_t>(2 * pr)];
            const float z = mz[static_cast<std::size_t>(2 * pr + 1)];
            const float* xr = x.data() + pr * Lk;
            pv = pv + sq_sb_prob(xr[j], m, z);
            if (jj >= 0) ps = ps + sq_sb_prob(xr[jj], m, z);
          }
          v = v + pv;
          if (jj >= 0) s = s + ps;
        }
        vs[static_cast<std::size_t>(j)] = j < p.forced_cols ? sq_sb_pos_inf() : v;
        sl[static_cast<std::size_t>(j)] = j < p.forced_diags ? sq_sb_pos_inf() : s;
      }
      if (p.vscore) std::copy(vs.begin(), vs.end(), p.vscore->begin() + ip * Lk);
      if (p.sscore) std::copy(sl.begin(), sl.end(), p.sscore->begin() + ip * Lk);
      if (p.scores_only) continue;
      const auto vl = topk_ascending(vs.data(), Lk, p.V);
      const auto sll = topk_ascending(sl.data(), Lk, p.S);
      if (p.vlist) std::copy(vl.begin(), vl.end(), p.vlist->begin() + ip * p.V);
      if (p.slist) std::copy(sll.begin(), sll.end(), p.slist->begin() + ip * p.S);
      for (int qb = 0; qb < nqb; ++qb) {
        const int p0 = off + SQ_SB_TILE * qb;
        const int end = off + std::min(SQ_SB_TILE * qb + SQ_SB_TILE, p.Lq);
        const std::int64_t row = ip * nqb + qb;
        sq_sb_vs_convert(vl.data(), static_cast<int>(vl.size()), sll.data(),
                         static_cast<int>(sll.size()), p0, end, Lk,
                         p.out.tile_start + row * p.out.max_tiles, p.out.max_tiles,
                         p.out.tile_count + row, p.out.col_index + row * p.out.max_cols,
                         p.out.max_cols, p.out.col_count + row);
      }
    }
  });
}

}  // namespace sparq::fallback::sparse
