// prefill_body_rb.h — the register-blocked layout of the dense exact fp32 prefill (ATT_MAP 1:
// attention/dense.cl without hooks; OpenCL C only). It computes exactly the definition of
// attention_common.h in the order dense.cl's banner states, like prefill_body.h, with the same
// arguments, launch (local 128, global (128 Hq, nQB, B); work-group (h, nQB-1-qb, b) owns query
// rows [64 qb, 64 qb + 64)), K/V modes (contiguous, varlen, paged; any stored dtype, staged as
// fp32 by attention/prefill_stage.h) and bits. Only the mapping of the work differs:
//  - the Q'/K slices (DS d) are staged transposed, [d][row] and [d][slot], so one float4 read
//    gives 4 rows or 4 slots of one d: work-item (rg, kg) = (lid / 8, lid % 8) owns the scores of
//    rows 4 rg + r (r < 4) x slots SLOT(e) (e < 8: 4 kg + e, then 32 + 4 kg + e - 4): 32 chains,
//    each one sequential fma chain over d ascending, 3 float4 reads per 32 fma;
//  - P is stored transposed, [slot][row]; in the P.V phase work-item (rv, dg) = (lid / 16,
//    lid % 16) owns acc of rows 8 rv + r (r < 8) x d = 4 dg + 64 t + e (t < DH / 64): 64 (D 128)
//    or 32 (D 64) chains, each sequential over the tile's keys ascending;
//  - the two phases own different rows, so the running max m of each row (by tile parity) and
//    the step's alpha live in local memory, written by the row's kg == 0 work-item;
//  - the step max is folded from 8 partial maxima (exact in any order), the row sum r and l as in
//    prefill_body.h (work-item lid % 64, one chain over P[.][row] ascending).
// ATT_PREFETCH, ATT_UNROLL: as prefill_body.h; ATT_DS (16 or 32): d per Q'/K slice (V slices of
// DS keys, 2 DS for D = 64); ATT_EXP_CVT 1: exp2's k = round-to-even(x) by one exact conversion
// (sq_pf_prob, prefill_stage.h). None of them changes an operation of the definition or a bit.
#include "attention/attention_common.h"

#if SQ_PREFILL_SPARSE || (defined(SQ_ATT_HOOKS) && SQ_ATT_HOOKS)
#error "prefill_body_rb.h: the dense prefill without hooks only"
#endif
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#if defined(ATT_THREADS) && ATT_THREADS != 128
#error "prefill_body_rb.h runs 128 work-items per work-group"
#endif
#ifndef ATT_UNROLL
#define ATT_UNROLL 0
#endif
#ifndef ATT_PREFETCH
#define ATT_PREFETCH 0
#endif
#if ATT_UNROLL
#define SQ_UNROLL _Pragma("unroll")
#define SQ_UNROLL4 _Pragma("unroll 4")
#else
#define SQ_UNROLL
#define SQ_UNROLL4
#endif
#define DH HEAD_DIM
#define BM 64           // query rows per work-group
#define BN SQ_ATT_TILE  // keys (slots) per step
#define NT 128          // work-items per work-group
#ifndef ATT_DS
#define ATT_DS 32
#endif
#define DS ATT_DS                    // d per Q'/K slice (16 or 32)
#define LT (BM + 4)                  // padded row stride of Q'^T, K^T and P^T (BM == BN)
#define TDV (DH / 64)                // float4 columns per work-item (P.V phase)
#define JS (DH == 64 ? 2 * DS : DS)  // keys per V slice
#define NQK (DH / DS)                // Q'/K slices per tile
#define NV (BN / JS)                 // V slices per tile
#define NPQ (BM * DS / 4 / NT)       // float4 of Q' (and of K) per work-item per slice
#define NPV (JS * DH / 4 / NT)       // float4 of V per work-item per slice
#define NPF (2 * NPQ > NPV ? 2 * NPQ : NPV)
#define QKV_FLOATS (2 * DS * LT > JS * DH ? 2 * DS * LT : JS * DH)
#define SLOT(e_) ((e_) < 4 ? 4 * kg + (e_) : 28 + 4 * kg + (e_))

#include "attention/prefill_stage.h"

// Slice `st` of step `n` (st < NQK: Q'/K d-slice; else V key slice) from global memory into pf.
// Q'/K: float4 x = lid + NT i is d quad (x / 16) % (DS / 4) of row / slot x % 16 + 16 (x / 16 /
// (DS / 4)) (a warp reads 16 rows x 32 bytes; its transposed stores hit 32 banks). V: as
// prefill_body.h.
#define RB_QK_D(x_) (4 * (((x_) >> 4) % (DS / 4)))
#define RB_QK_ROW(x_) (((x_)&15) + 16 * (((x_) >> 4) / (DS / 4)))
#define RB_LOAD(n_, st_)                                                                           \
  do {                                                                                             \
    const int sst_ = (st_);                                                                        \
    if (sst_ < NQK) {                                                                              \
      SQ_UNROLL                                                                                    \
      for (int i_ = 0; i_ < NPQ; ++i_) {                                                           \
        const int x_ = lid + i_ * NT, sd_ = sst_ * DS + RB_QK_D(x_);                               \
        const int r_ = RB_QK_ROW(x_), j_ = (n_)*BN + r_;                                           \
        float4 y_ = (float4)(0.0f);                                                                \
        if (r_ < nrows) y_ = sq_att_load4(q, q_base + r_ * q_sr + sd_, q_dt) * c;                  \
        pf[i_] = y_;                                                                               \
        pf[NPQ + i_] = j_ < lk ? sq_pf_load_kv4(k, kv_base_k + K_ROW(n_, r_, j_), k_dt, sd_, k_sc, \
                                                ksr + ((n_)&1) * BN + r_)                          \
                               : (float4)(0.0f);                                                   \
      }                                                                                            \
    } else {                                                                                       \
      const int sjs_ = (sst_ - NQK) * JS;                                                          \
      SQ_UNROLL                                                                                    \
      for (int i_ = 0; i_ < NPV; ++i_) {                                                           \
        const int x_ = lid + i_ * NT, s_ = sjs_ + x_ / (DH / 4), j_ = (n_)*BN + s_;                \
        pf[i_] = j_ < lk ? sq_pf_load_kv4(v, kv_base_v + V_ROW(n_, s_, j_), v_dt,                  \
                                          (x_ % (DH / 4)) * 4, v_sc, vsr + ((n_)&1) * BN + s_)     \
                         : (float4)(0.0f);                                                         \
      }                                                                                            \
    }                                                                                              \
  } while (0)

#define RB_STORE(st_)                                                       \
  do {                                                                      \
    if ((st_) < NQK) {                                                      \
      SQ_UNROLL                                                             \
      for (int i_ = 0; i_ < NPQ; ++i_) {                                    \
        const int x_ = lid + i_ * NT, d_ = RB_QK_D(x_), r_ = RB_QK_ROW(x_); \
        qt[(d_ + 0) * LT + r_] = pf[i_].x;                                  \
        qt[(d_ + 1) * LT + r_] = pf[i_].y;                                  \
        qt[(d_ + 2) * LT + r_] = pf[i_].z;                                  \
        qt[(d_ + 3) * LT + r_] = pf[i_].w;                                  \
        kt[(d_ + 0) * LT + r_] = pf[NPQ + i_].x;                            \
        kt[(d_ + 1) * LT + r_] = pf[NPQ + i_].y;                            \
        kt[(d_ + 2) * LT + r_] = pf[NPQ + i_].z;                            \
        kt[(d_ + 3) * LT + r_] = pf[NPQ + i_].w;                            \
      }                                                                     \
    } else {                                                                \
      SQ_UNROLL                                                             \
      for (int i_ = 0; i_ < NPV; ++i_) {                                    \
        const int x_ = lid + i_ * NT;                                       \
        ST4(qkv + (x_ / (DH / 4)) * DH + (x_ % (DH / 4)) * 4, pf[i_]);      \
      }                                                                     \
    }                                                                       \
  } while (0)

// clang-format off
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void attention_dense(
    gbytes q, long q_off, long q_sb, long q_sr, long q_sh, int q_dt,  //
    gbytes k, long k_off, long k_sb, long k_sr, long k_sh, int k_dt,  //
    gbytes v, long v_off, long v_sb, long v_sr, long v_sh, int v_dt,  //
    gbytes k_sc, long ks_off, long ks_sb, long ks_sr, long ks_sh,  // int8 / NVFP4 pages:
    gbytes v_sc, long vs_off, long vs_sb, long vs_sr, long vs_sh,  // their scales
    __global const int* pages, long pt_off, long pt_st, int page_size,  // 0: K/V not paged
    __global uchar* out, long o_off, long o_sb, long o_sr, long o_sh, int o_dt,
    __global float* scratch, long s_off, long s_sb, long s_sr, long s_sh,  //
    __global float* lse, long l_off, long l_sb, long l_sr, long l_sh, int want_lse,
    __global const int* cu_q, long cuq_off, long cuq_st,  //
    __global const int* cu_k, long cuk_off, long cuk_st,  //
    int kv_mode, int group, int lq, int lk, int causal, float c) {
  // clang-format on
  // Q'^T slice [DS][LT] + K^T slice [DS][LT], or V slice [JS][DH]
  __local float qkv[QKV_FLOATS] SQ_ATT_LOCAL_ALIGN;
  __local float pbuf[BN * LT] SQ_ATT_LOCAL_ALIGN;  // P^T [slot][row]
  __local float pmax[BM * 8] SQ_ATT_LOCAL_ALIGN;   // partial row maxima [row][kg]
  __local float m_loc[2 * BM];                     // m per row after step n, in half (n + 1) & 1
  __local float alpha_loc[BM];                     // alpha of each row in the current step
  __local float lrow[BM];                          // l at the end of a chunk
  __local float lse_loc[2 * BM];                   // merged lse per row, by chunk parity
  __local int any_skip;                   // some row skips this tile (its P.V must not run)
  __local long kro[2 * BN], vro[2 * BN];  // paged: K/V row offsets of the slots (prefill_stage.h)
  __local long ksr[2 * BN], vsr[2 * BN];  // paged int8 / NVFP4: their scales' offsets
  __local float* qt = qkv;
  __local float* kt = qkv + DS * LT;

  const int lid = get_local_id(0);
  const int kg = lid & 7, rg = lid >> 3;   // score phase: rows 4 rg + r, slots SLOT(e)
  const int dg = lid & 15, rv = lid >> 4;  // P.V phase: rows 8 rv + r, d 4 dg + 64 t + e
  const int h = get_group_id(0), b = get_group_id(2);
  const int qb = get_num_groups(1) - 1 - get_group_id(1);
  long q0 = 0, k0 = 0;
  if (kv_mode == 1) {  // varlen
    q0 = cu_q[cuq_off + b * cuq_st];
    k0 = cu_k[cuk_off + b * cuk_st];
    lq = cu_q[cuq_off + (b + 1) * cuq_st] - (int)q0;
    lk = cu_k[cuk_off + (b + 1) * cuk_st] - (int)k0;
  } else if (kv_mode == 2) {  // paged: cu_k holds seq_lens
    lk = cu_k[cuk_off + b * cuk_st];
  }
  const int paged = page_size > 0;
  __global const int* page_row = pages + pt_off + b * pt_st;
  const int r0 = qb * BM;
  if (r0 >= lq) return;  // uniform over the work-group
  const int nrows = min(BM, lq - r0);
  const int hk = h / group;
  const int kend = sq_att_visible_end(r0 + nrows - 1, lq, lk, causal);
  const int ntiles = kend > 0 ? (kend + BN - 1) / BN : 0;
  const int full_end = sq_att_visible_end(r0, lq, lk, causal);  // keys all rows see

  const long q_base = q_off + b * q_sb + (q0 + r0) * q_sr + h * q_sh;
  const long kv_base_k = k_off + (paged ? 0 : b * k_sb) + hk * k_sh;
  const long kv_base_v = v_off + (paged ? 0 : b * v_sb) + hk * v_sh;
  const long ks_base = ks_off + hk * ks_sh, vs_base = vs_off + hk * vs_sh;

  float4 acc[8][TDV];
  // Row lid % BM's l: kept by work-items lid and lid + 64 (identical copies, PoCL note in
  // attention_common.h); work-items < BM publish it.
  const int own = lid & (BM - 1);
  float l_own = 0.0f;
  if (lid < BM) lse_loc[lid] = sq_att_neg_inf();
  if (ntiles > 0) STEP_KEYS(0);
  barrier(CLK_LOCAL_MEM_FENCE);

  float4 pf[NPF];  // one slice in flight from global memory to local memory
#if ATT_PREFETCH
  if (ntiles > 0) RB_LOAD(0, 0);
#endif

  for (int n = 0; n < ntiles; ++n) {
    const int j0 = n * BN, par = n & 1;
    const bool fresh = (n & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0;
    if (n + 1 < ntiles) STEP_KEYS(n + 1);
    if (fresh) {  // a chunk starts from a fresh state
      SQ_UNROLL
      for (int r = 0; r < 8; ++r) SQ_UNROLL
      for (int t = 0; t < TDV; ++t) acc[r][t] = (float4)(0.0f);
      l_own = 0.0f;
    }
    const bool masked = j0 + BN > full_end;

    // ---- scores: s[r][e] = dot(q'[4 rg + r], k[slot SLOT(e)]), d ascending over slices ----
    float s[4][8];
    SQ_UNROLL
    for (int r = 0; r < 4; ++r) SQ_UNROLL
    for (int e = 0; e < 8; ++e) s[r][e] = 0.0f;
    for (int d0 = 0; d0 < DH; d0 += DS) {
      const int st = d0 / DS;
#if !ATT_PREFETCH
      RB_LOAD(n, st);
#endif
      barrier(CLK_LOCAL_MEM_FENCE);
      RB_STORE(st);
      barrier(CLK_LOCAL_MEM_FENCE);
#if ATT_PREFETCH
      RB_LOAD(n, st + 1);  // the next Q'/K slice or V slice 0 (st + 1 == NQK)
#endif
      if (d0 == 0 && lid == 0) any_skip = 0;
      SQ_UNROLL4
      for (int dd = 0; dd < DS; ++dd) {
        const float4 qv = LD4(qt + dd * LT + 4 * rg);
        const float4 ka = LD4(kt + dd * LT + 4 * kg), kb = LD4(kt + dd * LT + 32 + 4 * kg);
        const float qr[4] = {qv.x, qv.y, qv.z, qv.w};
        const float ke[8] = {ka.x, ka.y, ka.z, ka.w, kb.x, kb.y, kb.z, kb.w};
        SQ_UNROLL
        for (int r = 0; r < 4; ++r) SQ_UNROLL
        for (int e = 0; e < 8; ++e) s[r][e] = fma(qr[r], ke[e], s[r][e]);
      }
    }

    // ---- step max: partial maxima over this work-item's slots, then over the 8 partials ----
    SQ_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int ve = sq_att_visible_end(r0 + 4 * rg + r, lq, lk, causal) - j0;
      float pm = sq_att_neg_inf();
      SQ_UNROLL
      for (int e = 0; e < 8; ++e)
        if (!masked || SLOT(e) < ve) pm = sq_mx(pm, s[r][e]);
      pmax[(4 * rg + r) * 8 + kg] = pm;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- p = exp2(s - m_new) into P^T; m_new and alpha of each row into local memory ----
    SQ_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int row = 4 * rg + r;
      const int ve = sq_att_visible_end(r0 + row, lq, lk, causal) - j0;
      const float4 pa = LD4(pmax + row * 8), pb = LD4(pmax + row * 8 + 4);
      float mt = sq_mx(sq_mx(sq_mx(sq_mx(sq_att_neg_inf(), pa.x), pa.y), pa.z), pa.w);
      mt = sq_mx(sq_mx(sq_mx(sq_mx(mt, pb.x), pb.y), pb.z), pb.w);
      const float m_old = fresh ? sq_att_neg_inf() : m_loc[par * BM + row];
      const float m_new = sq_mx(m_old, mt);
      const bool skip = m_new == sq_att_neg_inf();
      if (skip) atomic_or(&any_skip, 1);
      if (kg == 0) {
        m_loc[(par ^ 1) * BM + row] = m_new;
        alpha_loc[row] = sq_att_alpha(m_old, m_new);
      }
      SQ_UNROLL
      for (int e = 0; e < 8; ++e) {
        const bool vis = !skip && (!masked || SLOT(e) < ve);
        s[r][e] = vis ? sq_pf_prob(s[r][e], m_new) : 0.0f;
      }
    }
    SQ_UNROLL
    for (int e = 0; e < 8; ++e)
      ST4(pbuf + SLOT(e) * LT + 4 * rg, (float4)(s[0][e], s[1][e], s[2][e], s[3][e]));

    // ---- P.V over V slices of JS keys ----
    for (int js = 0; js < BN; js += JS) {
      const int st = NQK + js / JS;
#if !ATT_PREFETCH
      RB_LOAD(n, st);
#endif
      barrier(CLK_LOCAL_MEM_FENCE);  // also at js == 0: no barrier under a condition (PoCL note)
      RB_STORE(st);
      barrier(CLK_LOCAL_MEM_FENCE);
#if ATT_PREFETCH
      if (st + 1 < NQK + NV)
        RB_LOAD(n, st + 1);
      else if (n + 1 < ntiles)
        RB_LOAD(n + 1, 0);  // the next tile's first Q'/K slice
#endif
      if (js == 0) {  // rescale by alpha; the row sum r: one chain over the tile's 64 p_j
        SQ_UNROLL
        for (int r = 0; r < 8; ++r) {
          const float al = alpha_loc[8 * rv + r];
          SQ_UNROLL
          for (int t = 0; t < TDV; ++t) acc[r][t] = acc[r][t] * al;
        }
        float rs = 0.0f;
        for (int x = 0; x < BN; ++x) rs = rs + pbuf[x * LT + own];
        l_own = fma(l_own, alpha_loc[own], rs);
      }
      if (!masked && !any_skip) {
        SQ_UNROLL4
        for (int jj = 0; jj < JS; ++jj) {
          const float4 pa = LD4(pbuf + (js + jj) * LT + 8 * rv);
          const float4 pb = LD4(pbuf + (js + jj) * LT + 8 * rv + 4);
          const float pr[8] = {pa.x, pa.y, pa.z, pa.w, pb.x, pb.y, pb.z, pb.w};
          float4 vv[TDV];
          SQ_UNROLL
          for (int t = 0; t < TDV; ++t) vv[t] = LD4(qkv + jj * DH + 4 * dg + 64 * t);
          SQ_UNROLL
          for (int r = 0; r < 8; ++r) SQ_UNROLL
          for (int t = 0; t < TDV; ++t) acc[r][t] = fma((float4)(pr[r]), vv[t], acc[r][t]);
        }
      } else {  // keys [0, lim) of the tile enter the row's P.V chains (none when it skipped)
        int lim[8];
        SQ_UNROLL
        for (int r = 0; r < 8; ++r) {
          const int row = 8 * rv + r;
          lim[r] = m_loc[(par ^ 1) * BM + row] == sq_att_neg_inf()
                       ? 0
                       : (masked ? sq_att_visible_end(r0 + row, lq, lk, causal) - j0 : BN);
        }
        for (int jj = 0; jj < JS; ++jj) {
          float4 vv[TDV];
          SQ_UNROLL
          for (int t = 0; t < TDV; ++t) vv[t] = LD4(qkv + jj * DH + 4 * dg + 64 * t);
          SQ_UNROLL
          for (int r = 0; r < 8; ++r) {
            const float p = pbuf[(js + jj) * LT + 8 * rv + r];
            SQ_UNROLL
            for (int t = 0; t < TDV; ++t)
              if (js + jj < lim[r]) acc[r][t] = fma((float4)(p), vv[t], acc[r][t]);
          }
        }
      }
    }

    // ---- end of a chunk: C = (acc / l, m + log2 l), merged into R ----
    const bool last = n == ntiles - 1;
    const bool chunk_end = last || (n & (SQ_ATT_TILES_PER_CHUNK - 1)) == SQ_ATT_TILES_PER_CHUNK - 1;
    if (chunk_end && lid < BM) lrow[lid] = l_own;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (chunk_end) {
      const int cpar = (n / SQ_ATT_TILES_PER_CHUNK) & 1;
      SQ_UNROLL
      for (int r = 0; r < 8; ++r) {
        const int row = 8 * rv + r;
        const float l = lrow[row];
        const SqAttMerge w = sq_att_merge_weights(lse_loc[cpar * BM + row],
                                                  sq_att_chunk_lse(m_loc[(par ^ 1) * BM + row], l));
        if (dg == 0) lse_loc[(cpar ^ 1) * BM + row] = w.lse;
        if (row < nrows) {
          const long s_row = s_off + b * s_sb + (q0 + r0 + row) * s_sr + h * s_sh;
          const long o_row = o_off + b * o_sb + (q0 + r0 + row) * o_sr + h * o_sh;
          SQ_UNROLL
          for (int t = 0; t < TDV; ++t) {
            const int dv = 4 * dg + 64 * t;
            float4 o_r = w.mode == 0 ? (float4)(0.0f) : vload4(0, scratch + s_row + dv);
            float4 a = acc[r][t], o;
            o.x = sq_att_merge_out(w, o_r.x, sq_att_chunk_out(a.x, l));
            o.y = sq_att_merge_out(w, o_r.y, sq_att_chunk_out(a.y, l));
            o.z = sq_att_merge_out(w, o_r.z, sq_att_chunk_out(a.z, l));
            o.w = sq_att_merge_out(w, o_r.w, sq_att_chunk_out(a.w, l));
            if (last)
              sq_att_store4(out, o_row + dv, o_dt, o);
            else
              vstore4(o, 0, scratch + s_row + dv);
          }
          if (last && want_lse && dg == 0)
            lse[l_off + b * l_sb + (q0 + r0 + row) * l_sr + h * l_sh] = w.lse;
        }
      }
    }
  }

  if (ntiles == 0) {  // no row of the block sees a key: O = 0, lse = -inf
    SQ_UNROLL
    for (int r = 0; r < 8; ++r) {
      const int row = 8 * rv + r;
      if (row < nrows) {
        const long o_row = o_off + b * o_sb + (q0 + r0 + row) * o_sr + h * o_sh;
        SQ_UNROLL
        for (int t = 0; t < TDV; ++t)
          sq_att_store4(out, o_row + 4 * dg + 64 * t, o_dt, (float4)(0.0f));
        if (want_lse && dg == 0)
          lse[l_off + b * l_sb + (q0 + r0 + row) * l_sr + h * l_sh] = sq_att_neg_inf();
      }
    }
  }
}
