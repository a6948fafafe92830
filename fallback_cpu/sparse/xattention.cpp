// Fallback twin of kernels_cl/sparse/xattention.cl: the same defined order (stated at the top of
// the .cl file), query heads and index heads in parallel (threading never changes bits).
#include <algorithm>

#include "builders_fallback.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "sparse/builder_math.h"

namespace sparq::fallback::sparse {

using namespace sparq::cl_common;

void xattention(const XAttentionProblem& p) {
  const int S = p.stride, D = p.D, Lq = p.Lq, Lk = p.Lk;
  const int ngi = (Lq + S - 1) / S, ngj = (Lk + S - 1) / S;
  const int bg = SQ_SB_XBLOCK / S;
  const int nqb128 = (Lq + SQ_SB_XBLOCK - 1) / SQ_SB_XBLOCK;
  const int nkb = (Lk + SQ_SB_XBLOCK - 1) / SQ_SB_XBLOCK;
  const int nqb = (Lq + SQ_SB_TILE - 1) / SQ_SB_TILE;
  const int gshift = (Lk - Lq) / S;
  const std::int64_t npairs = std::int64_t{p.B} * p.Hq;
  std::vector<float> sb(static_cast<std::size_t>(npairs * nqb128 * nkb), 0.0f);
  parallel_chunks(npairs, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> qc(static_cast<std::size_t>(S * D)), a(static_cast<std::size_t>(ngj));
    std::vector<float> rb(static_cast<std::size_t>(nkb));
    for (std::int64_t pr = lo; pr < hi; ++pr) {
      const std::int64_t b = pr / p.Hq;
      const int h = static_cast<int>(pr % p.Hq), hk = h / p.G;
      float* sbp = sb.data() + pr * nqb128 * nkb;
      for (int gi = 0; gi < ngi; ++gi) {
        for (int t = 0; t < S; ++t) {
          const int qr = gi * S + S - 1 - t;
          for (int d = 0; d < D; ++d)
            qc[static_cast<std::size_t>(t * D + d)] = qr < Lq ? p.q.at(b, h, qr, d) * p.cx : 0.0f;
        }
        const int vend = p.causal ? std::min(ngj, gi + gshift + 1) : ngj;
        float m = sq_sb_neg_inf();
        for (int gj = 0; gj < vend; ++gj) {
          float acc = 0.0f;
          for (int t = 0; t < S; ++t) {
            const int kr = gj * S + t;
            for (int d = 0; d < D; ++d)
              acc = sq_fma(qc[static_cast<std::size_t>(t * D + d)],
                           kr < Lk ? p.k.at(b, hk, kr, d) : 0.0f, acc);
          }
          a[static_cast<std::size_t>(gj)] = acc;
          m = sq_mx(m, acc);
        }
        float z = 0.0f;
        for (int c0 = 0; c0 < vend; c0 += SQ_SB_TILE) {
          float part = 0.0f;
          for (int j = c0; j < std::min(vend, c0 + SQ_SB_TILE); ++j)
            part = part + sq_exp2(a[static_cast<std::size_t>(j)] - m);
          z = z + part;
        }
        for (int kb = 0; kb < nkb; ++kb) {
          float s = 0.0f;
          for (int j = kb * bg; j < std::min(vend, kb * bg + bg); ++j)
            s = s + sq_sb_prob(a[static_cast<std::size_t>(j)], m, z);
          rb[static_cast<std::size_t>(kb)] = s;
        }
        const int qb = gi / bg;
        for (int kb = 0; kb < nkb; ++kb)
          sbp[qb * nkb + kb] = sbp[qb * nkb + kb] + rb[static_cast<std::size_t>(kb)];
      }
    }
  });
  const int Hi = p.Hq / p.gi;
  const std::int64_t nip = std::int64_t{p.B} * Hi;
  std::vector<float> sbi;
  const float* sel = sb.data();
  if (p.gi > 1) {
    sbi.assign(static_cast<std::size_t>(nip * nqb128 * nkb), 0.0f);
    for (std::int64_t ip = 0; ip < nip; ++ip)
      for (std::int64_t e = 0; e < std::int64_t{nqb128} * nkb; ++e) {
        float s = 0.0f;
        for (int g = 0; g < p.gi; ++g)
          s = s + sb[static_cast<std::size_t>((ip * p.gi + g) * nqb128 * nkb + e)];
        sbi[static_cast<std::size_t>(ip * nqb128 * nkb + e)] = s;
      }
    sel = sbi.data();
  }
  if (p.block_scores) p.block_scores->assign(sel, sel + nip * nqb128 * nkb);
  parallel_chunks(nip * nqb128, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t w = lo; w < hi; ++w) {
      const std::int64_t ip = w / nqb128;
      const int qb = static_cast<int>(w % nqb128);
      const std::int64_t r = ip * nqb + 2 * qb;
      sq_sb_xattn_convert(sel + (ip * nqb128 + qb) * nkb, nkb, qb, nqb, Lq, Lk, p.causal,
                          p.tau[ip % Hi], p.out.tile_start + r * p.out.max_tiles, p.out.max_tiles,
                          p.out.tile_count + r);
      p.out.col_count[r] = 0;
      if (2 * qb + 1 < nqb) p.out.col_count[r + 1] = 0;
    }
  });
}

}  // namespace sparq::fallback::sparse
