// Fallback of kernels_cl/sparse/sparse_prefill.cl: the same per-row definition (see the top of
// the .cl file), one (b, h, query block) per work item; rows are independent.
#include <algorithm>
#include <cstring>
#include <vector>

#include "attention/attention_common.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "sparse_fallback.h"

namespace sparq::fallback::sparse {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

namespace {

constexpr int kT = 64;
constexpr int kSegShift = 12;

float load(const In& x, std::int64_t i) {
  if (x.dtype == 0) {
    float f;
    std::memcpy(&f, x.p + i * 4, 4);
    return f;
  }
  std::uint16_t u;
  std::memcpy(&u, x.p + i * 2, 2);
  return sq_att_widen16(u, x.dtype);
}

// Element offset of key j's row (head hk, sequence b) in x: contiguous, or through the pages.
std::int64_t kv_row(const PrefillProblem& p, const In& x, int b, int hk, int j) {
  if (p.page_size == 0) return b * x.sb + hk * x.sh + static_cast<std::int64_t>(j) * x.sr;
  const std::int64_t page = p.page_table[b * p.max_pages + j / p.page_size];
  return page * x.sb + hk * x.sh + static_cast<std::int64_t>(j % p.page_size) * x.sr;
}

// Element e of the K/V row at element `row` of x as fp32; scaled pages read their scales at
// element `srow` of sc (int8: one f32 per row; NVFP4: one E4M3 code per 16 elements).
float load_kv(const In& x, const In& sc, std::int64_t row, std::int64_t srow, int e) {
  const auto* u8 = reinterpret_cast<const std::uint8_t*>(x.p);
  if (x.dtype == SQ_DT_I8) {
    float scale;
    std::memcpy(&scale, sc.p + srow * 4, 4);
    return sq_att_deq_i8(static_cast<std::int8_t>(u8[row + e]), scale);
  }
  if (x.dtype == SQ_DT_FP4) {
    const std::uint32_t byte = u8[row + e / 2];
    const std::uint32_t scale = reinterpret_cast<const std::uint8_t*>(sc.p)[srow + e / 16];
    return sq_att_deq_fp4((e & 1) ? sq_fp4_hi(byte) : sq_fp4_lo(byte), scale);
  }
  return load(x, row + e);
}

bool visible(int kj, int kp, int qp, const PrefillProblem& p, const std::uint8_t* mask) {
  if (kj < 0) return false;
  if (p.causal && kp > qp) return false;
  if (p.window > 0 && !(kp < p.sink || kp > qp - p.window)) return false;
  if (p.hooks && !(sq_att_hook_window(qp, kp, p.wl, p.wr) && (mask == nullptr || mask[kj] != 0)))
    return false;
  return true;
}

void run_block(const PrefillProblem& p, int b, int h, int qb) {
  const int D = p.D;
  const int G = p.Hq / p.Hkv;
  const int hk = h / G;
  const int hi = p.share ? hk : h;
  const int r0 = qb * kT;
  const int nrows = std::min(kT, p.lq - r0);
  const int nqb = (p.lq + kT - 1) / kT;
  const std::int64_t irow = (static_cast<std::int64_t>(b) * p.Hi + hi) * nqb + qb;
  const int nt = std::clamp(p.tcount[irow], 0, p.max_tiles);
  const int ncol = std::clamp(p.ccount[irow], 0, p.max_cols);
  const std::int32_t* ts = p.tstart + irow * p.max_tiles;
  const std::int32_t* cs = p.cidx + irow * p.max_cols;
  const int nsteps = nt + (ncol + kT - 1) / kT;
  const std::uint8_t* mask = p.key_mask ? p.key_mask + b * p.mask_sb : nullptr;

  std::vector<float> q(static_cast<std::size_t>(nrows) * D), kt(static_cast<std::size_t>(D) * kT),
      v(static_cast<std::size_t>(kT) * D), acc(static_cast<std::size_t>(nrows) * D),
      o_r(static_cast<std::size_t>(nrows) * D, 0.0f);
  std::vector<float> m(static_cast<std::size_t>(nrows)), l(static_cast<std::size_t>(nrows)),
      lse_r(static_cast<std::size_t>(nrows), sq_att_neg_inf());
  std::vector<int> qp(static_cast<std::size_t>(nrows));
  for (int r = 0; r < nrows; ++r) {
    qp[static_cast<std::size_t>(r)] =
        p.qpos ? p.qpos[static_cast<std::int64_t>(b) * p.lq + r0 + r] : p.off + r0 + r;
    const std::int64_t at = b * p.q.sb + h * p.q.sh + (r0 + r) * p.q.sr;
    for (int e = 0; e < D; ++e) q[static_cast<std::size_t>(r * D + e)] = load(p.q, at + e) * p.c;
  }
  int kidx[kT], kps[kT];
  for (int n = 0; n < nsteps; ++n) {
    const bool is_tile = n < nt;
    const int t_start = is_tile ? ts[n] : 0;
    const bool fresh = n == 0 || (is_tile && (t_start >> kSegShift) != (ts[n - 1] >> kSegShift));
    if (fresh) {
      std::fill(m.begin(), m.end(), sq_att_neg_inf());
      std::fill(l.begin(), l.end(), 0.0f);
      std::fill(acc.begin(), acc.end(), 0.0f);
    }
    const int c0 = (n - nt) * kT;
    for (int s = 0; s < kT; ++s) {
      int j = is_tile ? t_start + s : (c0 + s < ncol ? cs[c0 + s] : -1);
      if (j >= p.lk) j = -1;
      kidx[s] = j;
      kps[s] = j < 0 ? 0 : (p.kpos ? p.kpos[static_cast<std::int64_t>(b) * p.lk + j] : j);
      if (j < 0) {
        for (int e = 0; e < D; ++e) kt[static_cast<std::size_t>(e * kT + s)] = 0.0f;
        std::fill_n(&v[static_cast<std::size_t>(s * D)], D, 0.0f);
        continue;
      }
      const std::int64_t ka = kv_row(p, p.k, b, hk, j), va = kv_row(p, p.v, b, hk, j);
      const bool scaled = p.k.dtype == SQ_DT_I8 || p.k.dtype == SQ_DT_FP4;
      const std::int64_t ks = scaled ? kv_row(p, p.k_sc, b, hk, j) : 0;
      const std::int64_t vs = scaled ? kv_row(p, p.v_sc, b, hk, j) : 0;
      for (int e = 0; e < D; ++e) {
        kt[static_cast<std::size_t>(e * kT + s)] = load_kv(p.k, p.k_sc, ka, ks, e);
        v[static_cast<std::size_t>(s * D + e)] = load_kv(p.v, p.v_sc, va, vs, e);
      }
    }
    for (int r = 0; r < nrows; ++r) {
      alignas(64) float sc[kT] = {};
      const float* qr = &q[static_cast<std::size_t>(r * D)];
      for (int e = 0; e < D; ++e) {
        const float qe = qr[e];
        const float* ke = &kt[static_cast<std::size_t>(e * kT)];
        for (int s = 0; s < kT; ++s) sc[s] = std::fma(qe, ke[s], sc[s]);
      }
      bool vis[kT];
      float m_t = sq_att_neg_inf();
      const int qr_pos = qp[static_cast<std::size_t>(r)];
      for (int s = 0; s < kT; ++s) {
        vis[s] = visible(kidx[s], kps[s], qr_pos, p, mask);
        if (p.hooks) sc[s] = sq_att_hook_score(sc[s], p.cap2, p.head[h], qr_pos, kps[s]);
        if (vis[s]) m_t = sq_mx(m_t, sc[s]);
      }
      float& mr = m[static_cast<std::size_t>(r)];
      const float m_new = sq_mx(mr, m_t);
      if (m_new == sq_att_neg_inf()) continue;
      const float alpha = sq_att_alpha(mr, m_new);
      float pr[kT];
      float rs = 0.0f;
      for (int s = 0; s < kT; ++s)
        if (vis[s]) {
          pr[s] = sq_att_prob(sc[s], m_new);
          rs = rs + pr[s];
        }
      float& lr = l[static_cast<std::size_t>(r)];
      lr = std::fma(lr, alpha, rs);
      float* a = &acc[static_cast<std::size_t>(r * D)];
      for (int e = 0; e < D; ++e) a[e] = a[e] * alpha;
      for (int s = 0; s < kT; ++s) {
        if (!vis[s]) continue;
        const float ps = pr[s];
        const float* vs = &v[static_cast<std::size_t>(s * D)];
        for (int e = 0; e < D; ++e) a[e] = std::fma(ps, vs[e], a[e]);
      }
      mr = m_new;
    }
    const bool last = n == nsteps - 1;
    const bool seg_end = last || (n + 1 < nt && (ts[n + 1] >> kSegShift) != (t_start >> kSegShift));
    if (!seg_end) continue;
    for (int r = 0; r < nrows; ++r) {
      const float lr = l[static_cast<std::size_t>(r)];
      const SqAttMerge w = sq_att_merge_weights(
          lse_r[static_cast<std::size_t>(r)], sq_att_chunk_lse(m[static_cast<std::size_t>(r)], lr));
      lse_r[static_cast<std::size_t>(r)] = w.lse;
      float* o = &o_r[static_cast<std::size_t>(r * D)];
      const float* a = &acc[static_cast<std::size_t>(r * D)];
      for (int e = 0; e < D; ++e) o[e] = sq_att_merge_out(w, o[e], sq_att_chunk_out(a[e], lr));
    }
  }
  // nsteps == 0: o_r is 0 and lse_r -inf (an empty row). Hooks: the sink state merges last.
  if (p.hooks)
    for (int r = 0; r < nrows; ++r) {
      const SqAttMerge w =
          sq_att_merge_weights(lse_r[static_cast<std::size_t>(r)], p.head[p.Hq + h]);
      lse_r[static_cast<std::size_t>(r)] = w.lse;
      float* o = &o_r[static_cast<std::size_t>(r * D)];
      for (int e = 0; e < D; ++e) o[e] = sq_att_merge_out(w, o[e], 0.0f);
    }
  const std::int64_t o_base = ((static_cast<std::int64_t>(b) * p.Hq + h) * p.lq + r0) * D;
  std::memcpy(p.out + o_base, o_r.data(), o_r.size() * sizeof(float));
  if (p.lse) {
    const std::int64_t l_base = (static_cast<std::int64_t>(b) * p.Hq + h) * p.lq + r0;
    for (int r = 0; r < nrows; ++r) p.lse[l_base + r] = lse_r[static_cast<std::size_t>(r)];
  }
}

}  // namespace

void sparse_prefill(const PrefillProblem& p) {
  const int nqb = (p.lq + kT - 1) / kT;
  const std::int64_t items = static_cast<std::int64_t>(p.B) * p.Hq * nqb;
  parallel_chunks(items, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t it = lo; it < hi; ++it) {
      const int qb = static_cast<int>(it % nqb);
      const int h = static_cast<int>((it / nqb) % p.Hq);
      const int b = static_cast<int>(it / (static_cast<std::int64_t>(nqb) * p.Hq));
      run_block(p, b, h, qb);
    }
  });
}

}  // namespace sparq::fallback::sparse
