#pragma OPENCL FP_CONTRACT OFF
// sparse_prefill.cl — exact fp32 block-sparse attention prefill over a sparq::SparseIndex (spec
// §3). Bit-identical to fallback_cpu/sparse/sparse_prefill.cpp, whatever the launch shape.
//
// THE DEFINITION (docs/sparse_attention.md), per query row i of (b, query head h); kv head
// h / G; index row (b, hi, qb) with hi = h (per_q_head) or h / G (kv_group), qb = i / 64:
//   c = fp32(scale * log2 e) (host, double, one rounding); q'[d] = q[i][d] * c
//   s_j = dot(q', k_j): acc = 0; for d ascending: acc = fma(q'[d], k_j[d], acc)
//   visible(i, j) = 0 <= j < Lk && (!causal || kpos(j) <= qpos(i))
//                   && (no token mask || kpos(j) < sink || kpos(j) > qpos(i) - window)
//   qpos(i) = off + i, kpos(j) = j unless the index carries qpos/kpos.
// Steps: the tiles in list order (keys tile_start[t] + 0..63), then the columns in chunks of 64
// list entries (col_index[64u .. 64u + 63]). Every step, from the row state (m, l, acc):
//   m_t = mx over the step's visible keys (NaN-propagating, any order: max is exact)
//   m_new = mx(m, m_t); if m_new == -inf: nothing visible yet, state unchanged
//   alpha = sq_exp2(m - m_new); p_j = sq_exp2(s_j - m_new) for visible j
//   r = 0; for visible j ascending (slot order): r = r + p_j;  l = fma(l, alpha, r)
//   acc[d] = acc[d] * alpha, then for visible j in slot order: acc[d] = fma(p_j, v_j[d], acc[d])
//   m = m_new
// Segments (dense attention's 4096-key chunks, attention_common.h): a tile whose start >> 12
// differs from the previous tile's starts a new segment from a fresh state (m = -inf, l = 0,
// acc = 0); the column steps continue the last segment. Each segment's result
// (acc / l, m + sq_log2(l); empty when l == 0) is merged left to right into R with
// merge_states' formula (sq_att_merge_*). Output O[i] = R's o (0 when the row sees no key),
// lse2[i] = R's lse (-inf then). With the dense index this is exactly sparq::attention().
//
// Launch: local (128), global (128 * Hq, nQB, B); work-group (h, nQB-1-qb, b) owns rows
// [64 qb, 64 qb + 64) of (b, h). Macros HEAD_DIM (64/128), ATT_UNROLL as dense.cl.
// Work split as dense.cl (it does not change any chain): work-item (rg, cg) owns rows rg + 8kk;
// scores for slots cg + 16t (one sequential chain each, staged through local memory in slices of
// 32 d), P.V for d = 4 (cg + 16t) + e; the row sum r is one chain per row (work-item lid % 64).
// Slot keys are staged in local memory; an invisible (row, slot) holds -1 in P (p >= 0 or NaN
// otherwise), so the masked P.V path skips exactly the invisible keys.
// Out: fp32 contiguous [B, Hq, Lq, D] (also the merged state R between segments, each element
// owned by one work-item), lse fp32 contiguous [B, Hq, Lq].
#include "attention/attention_common.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef ATT_UNROLL
#define ATT_UNROLL 0
#endif
#if ATT_UNROLL
#define SQ_UNROLL _Pragma("unroll")
#define SQ_UNROLL2 _Pragma("unroll 2")
#else
#define SQ_UNROLL
#define SQ_UNROLL2
#endif
#define DH HEAD_DIM
#define BM 64
#define BN 64
#define NT 128
#define TR 8
#define TK 4
#define TDV (DH / 64)
#define DS 32
#define QS (DS + 4)
#define PS (BN + 4)
#define JS (DH == 64 ? 64 : 32)
#define QKV_FLOATS (2 * BM * QS)
#define SEG_SHIFT 12  // 4096-key segments (SQ_ATT_CHUNK)

static inline int sp_visible(int kj, int kp, int qp, int causal, int sink, int window) {
  if (kj < 0) return 0;
  if (causal && kp > qp) return 0;
  if (window > 0 && !(kp < sink || kp > qp - window)) return 0;
  return 1;
}

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void sparse_prefill(
    gbytes q, long q_off, long q_sb, long q_sr, long q_sh, int q_dt,  //
    gbytes k, long k_off, long k_sb, long k_sr, long k_sh, int k_dt,  //
    gbytes v, long v_off, long v_sb, long v_sr, long v_sh, int v_dt,  //
    __global float* out, __global float* lse, int want_lse,           //
    __global const int* tcount, __global const int* tstart,           //
    __global const int* ccount, __global const int* cidx,             //
    __global const int* qpos, __global const int* kpos, int has_pos,  //
    int hq, int hi_n, int group, int share, int max_tiles, int max_cols, int lq, int lk, int off,
    int causal, int sink, int window, float c) {
  __local float qkv[QKV_FLOATS] SQ_ATT_LOCAL_ALIGN;
  __local float pbuf[BM * PS] SQ_ATT_LOCAL_ALIGN;
  __local float pmax[BM * 16] SQ_ATT_LOCAL_ALIGN;
  __local float lrow[BM];
  __local int kidx[BN];  // key of each slot of the step (-1: none / out of range)
  __local int kps[BN];   // its position
  __local int slow;      // some real row has an invisible slot or skips: masked P.V path
  __local float* qs = qkv;
  __local float* ks = qkv + BM * QS;

  const int lid = get_local_id(0);
  const int rg = lid >> 4, cg = lid & 15;
  const int h = get_group_id(0), b = get_group_id(2);
  const int nqb = get_num_groups(1);
  const int qb = nqb - 1 - get_group_id(1);
  const int r0 = qb * BM;
  const int nrows = min(BM, lq - r0);
  const int hk = h / group;
  const int hi = share ? hk : h;
  const long irow = ((long)b * hi_n + hi) * nqb + qb;
  int nt = tcount[irow];
  nt = nt < 0 ? 0 : (nt > max_tiles ? max_tiles : nt);
  int ncol = ccount[irow];
  ncol = ncol < 0 ? 0 : (ncol > max_cols ? max_cols : ncol);
  __global const int* ts = tstart + irow * max_tiles;
  __global const int* cs = cidx + irow * max_cols;
  const int nsteps = nt + (ncol + BN - 1) / BN;

  // query positions of this work-item's rows (padded rows: -1; they are never stored)
  int qp[TR];
  SQ_UNROLL
  for (int kk = 0; kk < TR; ++kk) {
    const int row = rg + 8 * kk;
    qp[kk] = row < nrows ? (has_pos ? qpos[(long)b * lq + r0 + row] : off + r0 + row) : -1;
  }

  const int st_row = lid >> 3, st_dv = (lid & 7) * 4;
  long q_row[4];
  SQ_UNROLL
  for (int t = 0; t < 4; ++t) {
    int r = st_row + 16 * t;
    q_row[t] = r < nrows ? q_off + b * q_sb + (long)(r0 + r) * q_sr + h * q_sh : -1;
  }
  const long kv_base_k = k_off + b * k_sb + hk * k_sh, kv_base_v = v_off + b * v_sb + hk * v_sh;
  const long o_base = (((long)b * hq + h) * lq + r0) * DH;
  const long l_base = ((long)b * hq + h) * lq + r0;

  float4 acc[TR][TDV];
  float m_run[TR], lse_r[TR];
  const int own = lid & (BM - 1);
  float m_own = 0.0f, l_own = 0.0f;
  SQ_UNROLL
  for (int kk = 0; kk < TR; ++kk) lse_r[kk] = sq_att_neg_inf();

  for (int n = 0; n < nsteps; ++n) {
    const int is_tile = n < nt;
    const int t_start = is_tile ? ts[n] : 0;
    const int fresh = n == 0 || (is_tile && (t_start >> SEG_SHIFT) != (ts[n - 1] >> SEG_SHIFT));
    if (fresh) {
      SQ_UNROLL
      for (int kk = 0; kk < TR; ++kk) {
        m_run[kk] = sq_att_neg_inf();
        SQ_UNROLL
        for (int t = 0; t < TDV; ++t) acc[kk][t] = (float4)(0.0f);
      }
      m_own = sq_att_neg_inf();
      l_own = 0.0f;
    }
    const int c0 = (n - nt) * BN;

    // ---- the step's keys ----
    barrier(CLK_LOCAL_MEM_FENCE);  // previous step's readers of kidx/kps/slow are done
    if (lid < BN) {
      int j = is_tile ? t_start + lid : (c0 + lid < ncol ? cs[c0 + lid] : -1);
      if (j >= lk) j = -1;
      kidx[lid] = j;
      kps[lid] = j < 0 ? 0 : (has_pos ? kpos[(long)b * lk + j] : j);
    }
    if (lid == 0) slow = 0;

    // ---- scores ----
    float s[TR][TK];
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) SQ_UNROLL
    for (int t = 0; t < TK; ++t) s[kk][t] = 0.0f;
    for (int d0 = 0; d0 < DH; d0 += DS) {
      barrier(CLK_LOCAL_MEM_FENCE);
      SQ_UNROLL
      for (int t = 0; t < 4; ++t) {
        const int r = st_row + 16 * t;
        float4 x = (float4)(0.0f);
        if (q_row[t] >= 0) x = sq_att_load4(q, q_row[t] + d0 + st_dv, q_dt) * c;
        ST4(qs + r * QS + st_dv, x);
        const int j = kidx[r];
        float4 y = j >= 0 ? sq_att_load4(k, kv_base_k + (long)j * k_sr + d0 + st_dv, k_dt)
                          : (float4)(0.0f);
        ST4(ks + r * QS + st_dv, y);
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      SQ_UNROLL2
      for (int dd = 0; dd < DS; dd += 4) {
        float4 kv4[TK];
        SQ_UNROLL
        for (int t = 0; t < TK; ++t) kv4[t] = LD4(ks + (cg + 16 * t) * QS + dd);
        SQ_UNROLL
        for (int kk = 0; kk < TR; ++kk) {
          const float4 qv = LD4(qs + (rg + 8 * kk) * QS + dd);
          SQ_UNROLL
          for (int t = 0; t < TK; ++t) {
            float a = s[kk][t];
            a = fma(qv.x, kv4[t].x, a);
            a = fma(qv.y, kv4[t].y, a);
            a = fma(qv.z, kv4[t].z, a);
            a = fma(qv.w, kv4[t].w, a);
            s[kk][t] = a;
          }
        }
      }
    }

    // ---- visibility and partial maxima ----
    int vis[TR];  // bit t: slot cg + 16t visible to row rg + 8kk
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      float pm = sq_att_neg_inf();
      int bits = 0;
      SQ_UNROLL
      for (int t = 0; t < TK; ++t) {
        const int sl = cg + 16 * t;
        const int ok = sp_visible(kidx[sl], kps[sl], qp[kk], causal, sink, window);
        bits |= ok << t;
        if (ok) pm = sq_mx(pm, s[kk][t]);
      }
      vis[kk] = bits;
      if (bits != 15 && rg + 8 * kk < nrows) atomic_or(&slow, 1);
      pmax[(rg + 8 * kk) * 16 + cg] = pm;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- p into P (-1 for invisible); rescale ----
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int row = rg + 8 * kk;
      float mt = sq_att_neg_inf();
      SQ_UNROLL
      for (int x = 0; x < 16; x += 4) {
        float4 pm = LD4(pmax + row * 16 + x);
        mt = sq_mx(sq_mx(sq_mx(sq_mx(mt, pm.x), pm.y), pm.z), pm.w);
      }
      const float m_new = sq_mx(m_run[kk], mt);
      const bool skip = m_new == sq_att_neg_inf();
      const float alpha = sq_att_alpha(m_run[kk], m_new);
      m_run[kk] = m_new;
      if (skip && row < nrows) atomic_or(&slow, 1);
      SQ_UNROLL
      for (int t = 0; t < TK; ++t) {
        const bool ok = !skip && ((vis[kk] >> t) & 1);
        pbuf[row * PS + cg + 16 * t] = ok ? sq_att_prob(s[kk][t], m_new) : -1.0f;
      }
      SQ_UNROLL
      for (int t = 0; t < TDV; ++t) acc[kk][t] = acc[kk][t] * alpha;
    }
    float alpha_own;
    {
      float mt = sq_att_neg_inf();
      for (int x = 0; x < 16; x += 4) {
        float4 pm = LD4(pmax + own * 16 + x);
        mt = sq_mx(sq_mx(sq_mx(sq_mx(mt, pm.x), pm.y), pm.z), pm.w);
      }
      const float m_new = sq_mx(m_own, mt);
      alpha_own = sq_att_alpha(m_own, m_new);
      m_own = m_new;
    }

    // ---- P.V over V slices of JS keys ----
    for (int js = 0; js < BN; js += JS) {
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int x = lid; x < JS * (DH / 4); x += NT) {
        const int jj = x / (DH / 4), dv = (x % (DH / 4)) * 4;
        const int j = kidx[js + jj];
        float4 y = (float4)(0.0f);
        if (j >= 0) y = sq_att_load4(v, kv_base_v + (long)j * v_sr + dv, v_dt);
        ST4(qkv + jj * DH + dv, y);
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      if (js == 0) {  // the row sum r: one chain over the visible p_j, slot order
        float r = 0.0f;
        for (int x = 0; x < BN; x += 4) {
          float4 p4 = LD4(pbuf + own * PS + x);
          r = p4.x < 0.0f ? r : r + p4.x;
          r = p4.y < 0.0f ? r : r + p4.y;
          r = p4.z < 0.0f ? r : r + p4.z;
          r = p4.w < 0.0f ? r : r + p4.w;
        }
        l_own = fma(l_own, alpha_own, r);
      }
      if (!slow) {
        for (int jj = 0; jj < JS; jj += 4) {
          SQ_UNROLL
          for (int kk = 0; kk < TR; ++kk) {
            const float4 p4 = LD4(pbuf + (rg + 8 * kk) * PS + js + jj);
            SQ_UNROLL
            for (int t = 0; t < TDV; ++t) {
              const int dv = 4 * (cg + 16 * t);
              float4 a = acc[kk][t];
              a = fma((float4)(p4.x), LD4(qkv + (jj + 0) * DH + dv), a);
              a = fma((float4)(p4.y), LD4(qkv + (jj + 1) * DH + dv), a);
              a = fma((float4)(p4.z), LD4(qkv + (jj + 2) * DH + dv), a);
              a = fma((float4)(p4.w), LD4(qkv + (jj + 3) * DH + dv), a);
              acc[kk][t] = a;
            }
          }
        }
      } else {  // only the visible keys of each row enter its chains
        for (int jj = 0; jj < JS; ++jj) {
          SQ_UNROLL
          for (int kk = 0; kk < TR; ++kk) {
            const float p = pbuf[(rg + 8 * kk) * PS + js + jj];
            SQ_UNROLL
            for (int t = 0; t < TDV; ++t) {
              const float4 vv = LD4(qkv + jj * DH + 4 * (cg + 16 * t));
              if (!(p < 0.0f)) acc[kk][t] = fma((float4)(p), vv, acc[kk][t]);
            }
          }
        }
      }
    }

    // ---- end of a segment: C = (acc / l, m + log2 l), merged into R ----
    const int last = n == nsteps - 1;
    const int seg_end = last || (n + 1 < nt && (ts[n + 1] >> SEG_SHIFT) != (t_start >> SEG_SHIFT));
    if (seg_end && lid < BM) lrow[lid] = l_own;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (seg_end) {
      SQ_UNROLL
      for (int kk = 0; kk < TR; ++kk) {
        const int row = rg + 8 * kk;
        const float l = lrow[row];
        const SqAttMerge w = sq_att_merge_weights(lse_r[kk], sq_att_chunk_lse(m_run[kk], l));
        lse_r[kk] = w.lse;
        if (row < nrows) {
          const long o_row = o_base + (long)row * DH;
          SQ_UNROLL
          for (int t = 0; t < TDV; ++t) {
            const int dv = 4 * (cg + 16 * t);
            float4 o_r = w.mode == 0 ? (float4)(0.0f) : vload4(0, out + o_row + dv);
            float4 a = acc[kk][t], o;
            o.x = sq_att_merge_out(w, o_r.x, sq_att_chunk_out(a.x, l));
            o.y = sq_att_merge_out(w, o_r.y, sq_att_chunk_out(a.y, l));
            o.z = sq_att_merge_out(w, o_r.z, sq_att_chunk_out(a.z, l));
            o.w = sq_att_merge_out(w, o_r.w, sq_att_chunk_out(a.w, l));
            vstore4(o, 0, out + o_row + dv);
          }
          if (last && want_lse && cg == 0) lse[l_base + row] = w.lse;
        }
      }
    }
  }

  if (nsteps == 0) {  // an empty index row: O = 0, lse = -inf
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int row = rg + 8 * kk;
      if (row < nrows) {
        SQ_UNROLL
        for (int t = 0; t < TDV; ++t)
          vstore4((float4)(0.0f), 0, out + o_base + (long)row * DH + 4 * (cg + 16 * t));
        if (want_lse && cg == 0) lse[l_base + row] = sq_att_neg_inf();
      }
    }
  }
}
