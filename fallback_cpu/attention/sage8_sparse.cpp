// Fallback twin of kernels_cl/attention/sage8.cl and sage8_mma.cl with SAGE8_SPARSE=1:
// Precision::int8 attention over a SparseIndex in the defined order of
// kernels_cl/attention/sage8_sparse.h (per row: the index row's tiles in list order, then its
// columns in chunks of 64 list entries; each step like one dense int8 tile, with the per-column
// P.V terms of column steps; a fresh state at each tile whose start >> 12 differs from the
// previous tile's, segment states merged left to right). Rows are independent; one item per
// (b, h, block of 64 rows).
#include "attention/sage8_sparse.h"

#include <algorithm>
#include <vector>

#include "attention/attention_common.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "sage8_fallback.h"

namespace sparq::fallback {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

namespace {

constexpr int kT = 64;

void sparse_row(const Sage8Problem& p, const Sage8SparseIndex& x, std::int64_t b, std::int64_t h,
                std::int64_t i, std::vector<float>& o, std::vector<float>& orow) {
  const std::int64_t D = p.d, hk = h / (p.hq / p.hkv);
  const std::int64_t lk64 = (p.lk + 63) / 64 * 64, nqb = (p.lq + kT - 1) / kT;
  const std::int64_t irow = (b * x.hi_rows + (x.share ? hk : h)) * nqb + i / kT;
  const int nt = std::clamp(x.tcount[irow], 0, x.max_tiles);
  const int ncol = std::clamp(x.ccount[irow], 0, x.max_cols);
  const std::int32_t* ts = x.tstart + irow * x.max_tiles;
  const std::int32_t* cs = x.cidx + irow * x.max_cols;
  const int nsteps = nt + (ncol + kT - 1) / kT;
  const int qp = x.qpos ? x.qpos[b * p.lq + i] : static_cast<int>(p.lk - p.lq + i);
  const int lk = static_cast<int>(p.lk);
  const std::int8_t* q = p.q8 + ((b * p.hq + h) * p.lq + i) * D;
  const float sq = p.sq[(b * p.hq + h) * ((p.lq + 127) / 128) + i / 128];
  const float* drow =
      p.delta ? p.delta + ((b * p.hq + h) * p.delta_nblk + i / p.delta_rows - p.delta_blk0) * p.lk
              : nullptr;
  const std::int64_t kv = b * p.hkv + hk;
  float m = sq_att_neg_inf(), l = 0.0f, lse_r = sq_att_neg_inf();
  std::fill(o.begin(), o.end(), 0.0f);
  std::fill(orow.begin(), orow.end(), 0.0f);
  // R = merge(R, the segment's state C = (O / l, m + log2 l)); then a fresh state.
  const auto merge_segment = [&] {
    const SqAttMerge w = sq_att_merge_weights(lse_r, sq_att_chunk_lse(m, l));
    for (std::size_t d = 0; d < o.size(); ++d) {
      orow[d] = sq_att_merge_out(w, orow[d], sq_att_chunk_out(o[d], l));
      o[d] = 0.0f;
    }
    lse_r = w.lse;
    m = sq_att_neg_inf();
    l = 0.0f;
  };
  for (int n = 0; n < nsteps; ++n) {
    const bool is_tile = n < nt;
    const int j0 = is_tile ? ts[n] : 0, c0 = (n - nt) * kT;
    if (n > 0 && is_tile && (j0 >> 12) != (ts[n - 1] >> 12)) merge_segment();
    int kid[kT];
    bool vis[kT], any = false;
    for (int s = 0; s < kT; ++s) {
      int j = is_tile ? j0 + s : (c0 + s < ncol ? cs[c0 + s] : -1);
      j = j < lk ? j : -1;
      kid[s] = j;
      const int kp = j < 0 ? 0 : (x.kpos ? x.kpos[b * p.lk + j] : j);
      vis[s] = sq_s8_visible(j, kp, qp, p.causal ? 1 : 0, x.sink, x.window) != 0;
      any = any || vis[s];
    }
    if (!any) continue;
    float s2[kT];
    float mt = sq_att_neg_inf();
    for (int s = 0; s < kT; ++s) {
      if (!vis[s]) continue;
      const std::int8_t* k = p.k8 + (kv * p.lk + kid[s]) * D;
      int dot = 0;
      for (std::int64_t d = 0; d < D; ++d) dot += int{q[d]} * int{k[d]};
      float sc = sq_s8_score(dot, sq, p.sk[kv * (lk64 / 64) + kid[s] / 64]);
      if (drow) sc = sq_s8_score_delta(sc, drow[kid[s]], p.c);
      s2[s] = sc;
      mt = sq_mx(mt, sc);
    }
    const float m_new = sq_mx(m, mt);
    if (m_new == sq_att_neg_inf()) continue;
    const float alpha = sq_exp2(m - m_new);
    int p8[kT];
    float sp[4], lg[4];
    for (int g = 0; g < 4; ++g) {
      float pv[16];
      uint amax = 0;
      for (int u = 0; u < 16; ++u) {
        const int s = 16 * g + u;
        pv[u] = vis[s] ? sq_exp2_q(s2[s] - m_new) : 0.0f;
        amax = std::max(amax, sq_i8_absbits(pv[u]));
      }
      sp[g] = sq_i8_scale(amax);
      int psum = 0;
      for (int u = 0; u < 16; ++u) {
        p8[16 * g + u] = sq_i8_code(pv[u], sp[g], 0.0f);
        psum += p8[16 * g + u];
      }
      lg[g] = sq_s8_row_term(psum, sp[g]);
    }
    for (std::int64_t d = 0; d < D; ++d) {
      const std::int8_t* v = p.v8 + (kv * D + d) * lk64;
      const float* sv = p.sv + (kv * D + d) * (lk64 / 16);
      float ot = 0.0f;
      for (int g = 0; g < 4; ++g) {
        float u = 0.0f;
        if (is_tile) {  // one V group; a group past the stored V has sP = 0 (no visible slot)
          const std::int64_t g0 = j0 + 16 * g;
          int dot = 0;
          if (g0 < lk64)
            for (int e = 0; e < 16; ++e) dot += p8[16 * g + e] * int{v[g0 + e]};
          u = sq_s8_pv_term(dot, sp[g], g0 < lk64 ? sv[g0 / 16] : 0.0f);
        } else {  // columns: one term per visible slot, left fold in list order
          for (int e = 0; e < 16; ++e) {
            const int s = 16 * g + e;
            if (vis[s]) u = u + sq_s8_pv_term(p8[s] * int{v[kid[s]]}, sp[g], sv[kid[s] / 16]);
          }
        }
        ot = g == 0 ? u : ot + u;
      }
      o[static_cast<std::size_t>(d)] = sq_fma(o[static_cast<std::size_t>(d)], alpha, ot);
    }
    l = sq_fma(l, alpha, ((lg[0] + lg[1]) + lg[2]) + lg[3]);
    m = m_new;
  }
  merge_segment();
  std::copy(orow.begin(), orow.end(), p.out + ((b * p.hq + h) * p.lq + i) * D);
}

}  // namespace

void sage8_sparse_attention(const Sage8Problem& p, const Sage8SparseIndex& x) {
  const std::int64_t rows = p.row1 - p.row0;
  const std::int64_t nblk = (rows + 63) / 64;
  parallel_chunks(p.batch * p.hq * nblk, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> o(static_cast<std::size_t>(p.d)), orow(o.size());
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t bh = item / nblk, blk = item % nblk;
      const std::int64_t i0 = p.row0 + 64 * blk, i1 = std::min(p.row1, i0 + 64);
      for (std::int64_t i = i0; i < i1; ++i) sparse_row(p, x, bh / p.hq, bh % p.hq, i, o, orow);
    }
  });
}

}  // namespace sparq::fallback
