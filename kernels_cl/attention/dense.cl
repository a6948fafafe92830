#pragma OPENCL FP_CONTRACT OFF
// dense.cl — exact fp32 attention, prefill fast path: O = softmax(scale * Q K^T) V per (sequence,
// query head), with the defined order of attention_common.h (chunks of 4096 keys, online base-2
// softmax over 64-key tiles inside a chunk, chunk states merged left to right). The same bits as
// decode.cl, merge.cl and fallback_cpu/attention/dense.cpp, whatever the launch shape.
//
// Macros: HEAD_DIM (64 or 128; the host passes D == HEAD_DIM exactly); ATT_UNROLL (1: unroll the
// register-tile loops, for GPUs; 0: leave it to the compiler, which builds ~5x faster on PoCL and
// runs faster there). Unrolling never changes an operation or its order. ATT_PREFETCH (1: load
// the next Q/K or V slice from global memory into registers while the current one is computed,
// which hides load latency on GPUs; 0: load each slice right before it is staged). Prefetching
// only moves loads earlier: the values staged, and so every bit, are the same.
// Launch: local (NT), global (NT * Hq, nQB, B), nQB = ceil(max Lq / 64); work-group
// (h, nQB-1-qb, b) owns query rows [64 qb, 64 qb + 64) of sequence b, head h (heavy causal
// blocks first). Inputs f32/f16/bf16 (run-time codes), widened exactly when staged in local memory.
//
// Work split (does not change the order of any chain):
//  - work-item (rg, cg) = (lid / 16, lid % 16) owns rows rg + RG k (k < TR); in the score phase keys
//    cg + 16t (t < 4), in the P.V phase d = 4 (cg + 16t) + e; every score dot(q', k_j) and every
//    acc[d] chain is one sequential chain in one work-item (d ascending, keys ascending), only
//    staged through local memory in slices (Q/K: 32 d at a time; V: JS keys at a time);
//  - the tile max is folded from 16 partial maxima (max is exact, any order is the same value);
//  - the row sum r of a tile is one sequential chain over its 64 p_j, by work-item `row` (< 64),
//    which also owns the row's l; m (needed by all) is recomputed identically by each owner;
//  - between chunks the merged state R lives in `scratch` (fp32, each element touched only by the
//    work-item that owns it): the output itself when it is fp32.
#include "attention/attention_common.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef ATT_UNROLL
#define ATT_UNROLL 0
#endif
#ifndef ATT_PREFETCH
#define ATT_PREFETCH 0
#endif
#if ATT_UNROLL
#define SQ_UNROLL _Pragma("unroll")
#define SQ_UNROLL2 _Pragma("unroll 2")
#else
#define SQ_UNROLL
#define SQ_UNROLL2
#endif
#define DH HEAD_DIM
#define BM 64            // query rows per work-group
#define BN SQ_ATT_TILE   // keys per tile
#ifndef ATT_THREADS
#define ATT_THREADS 128
#endif
#define NT ATT_THREADS   // work-items per work-group: 128 or 256
#define RG (NT / 16)     // row groups: work-item (rg, cg) = (lid / 16, lid % 16)
#define TR (BM / RG)     // rows per work-item: rg + RG * kk, kk < TR
#define TK 4             // keys per work-item (score phase)
#define TDV (DH / 64)    // float4 columns per work-item (P.V phase)
#define DS 32            // d per Q/K slice
#define QS (DS + 4)      // padded row stride of the Q/K slices (conflict-free float4 reads)
#define PS (BN + 4)      // padded row stride of P
#define JS (DH == 64 ? 64 : 32)  // keys per V slice
#define QKV_FLOATS (2 * BM * QS)  // local region shared by the Q/K slices and the V slice

#define NQK (DH / DS)  // Q/K slices per tile
#define NV (BN / JS)   // V slices per tile
#define SRW (NT / 8)   // rows staged per pass (8 work-items per row of a 32-d slice)
#define SR (BM / SRW)  // staging passes: rows st_row + SRW * t, t < SR
#define NPF (2 * SR)   // float4 per work-item per slice: SR Q + SR K rows, or JS*DH/4/NT of V

// Slice `st` of tile `n` (st < NQK: Q'/K d-slice; else V key slice) from global memory into
// the registers pf[NPF], then from pf into local memory (Q'/K slices into qs/ks [row][QS], V into
// qkv [key][DH]). The Q rows are the work-group's, scaled by c exactly as they are used. Macros,
// not functions: PoCL 3.1's LLVM 15 crashes in its inliner on these as functions when unrolled.
#define SLICE_LOAD(n_, st_)                                                                        \
  do {                                                                                             \
    const int sj0_ = (n_)*BN, sst_ = (st_);                                                        \
    if (sst_ < NQK) {                                                                              \
      const int sd0_ = sst_ * DS;                                                                  \
      SQ_UNROLL                                                                                    \
      for (int t_ = 0; t_ < SR; ++t_) {                                                            \
        float4 x_ = (float4)(0.0f);                                                                \
        if (q_row[t_] >= 0) x_ = sq_att_load4(q, q_row[t_] + sd0_ + st_dv, q_dt) * c;             \
        pf[t_] = x_;                                                                               \
        const int j_ = sj0_ + st_row + SRW * t_;                                                   \
        pf[SR + t_] = j_ < lk ? sq_att_load4(k, kv_base_k + (k0 + j_) * k_sr + sd0_ + st_dv, k_dt) \
                             : (float4)(0.0f);                                                     \
      }                                                                                            \
    } else {                                                                                       \
      const int sjs_ = (sst_ - NQK) * JS;                                                          \
      SQ_UNROLL                                                                                    \
      for (int i_ = 0; i_ < NPF; ++i_) {                                                           \
        const int x_ = lid + i_ * NT;                                                              \
        const int j_ = sj0_ + sjs_ + x_ / (DH / 4);                                                \
        pf[i_] = j_ < lk ? sq_att_load4(v, kv_base_v + (k0 + j_) * v_sr + (x_ % (DH / 4)) * 4, v_dt) \
                         : (float4)(0.0f);                                                         \
      }                                                                                            \
    }                                                                                              \
  } while (0)

#define SLICE_STORE(st_)                                                                           \
  do {                                                                                             \
    if ((st_) < NQK) {                                                                             \
      SQ_UNROLL                                                                                    \
      for (int t_ = 0; t_ < SR; ++t_) {                                                            \
        const int r_ = st_row + SRW * t_;                                                          \
        ST4(qs + r_ * QS + st_dv, pf[t_]);                                                         \
        ST4(ks + r_ * QS + st_dv, pf[SR + t_]);                                                     \
      }                                                                                            \
    } else {                                                                                       \
      SQ_UNROLL                                                                                    \
      for (int i_ = 0; i_ < NPF; ++i_) {                                                           \
        const int x_ = lid + i_ * NT;                                                              \
        ST4(qkv + (x_ / (DH / 4)) * DH + (x_ % (DH / 4)) * 4, pf[i_]);                             \
      }                                                                                            \
    }                                                                                              \
  } while (0)

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void attention_dense(
    gbytes q, long q_off, long q_sb, long q_sr, long q_sh, int q_dt,  //
    gbytes k, long k_off, long k_sb, long k_sr, long k_sh, int k_dt,  //
    gbytes v, long v_off, long v_sb, long v_sr, long v_sh, int v_dt,  //
    __global uchar* out, long o_off, long o_sb, long o_sr, long o_sh, int o_dt,
    __global float* scratch, long s_off, long s_sb, long s_sr, long s_sh,  //
    __global float* lse, long l_off, long l_sb, long l_sr, long l_sh, int want_lse,
    __global const int* cu_q, long cuq_off, long cuq_st,  //
    __global const int* cu_k, long cuk_off, long cuk_st,  //
    int varlen, int group, int lq, int lk, int causal, float c) {
  // Q slice [BM][QS] + K slice [BN][QS], or V slice [JS][DH]
  __local float qkv[QKV_FLOATS] SQ_ATT_LOCAL_ALIGN;
  __local float pbuf[BM * PS] SQ_ATT_LOCAL_ALIGN;  // P [row][key]
  __local float pmax[BM * 16] SQ_ATT_LOCAL_ALIGN;  // partial row maxima [row][cg]
  __local float lrow[BM];                          // l at the end of a chunk
  __local float lse_loc[2 * BM];                   // merged lse per row, by chunk parity
  __local int any_skip;  // some row skips this tile (its P.V must not run)
  __local float* qs = qkv;
  __local float* ks = qkv + BM * QS;

  const int lid = get_local_id(0);
  const int rg = lid >> 4, cg = lid & 15;
  const int h = get_group_id(0), b = get_group_id(2);
  const int qb = get_num_groups(1) - 1 - get_group_id(1);
  long q0 = 0, k0 = 0;
  if (varlen) {
    q0 = cu_q[cuq_off + b * cuq_st];
    k0 = cu_k[cuk_off + b * cuk_st];
    lq = cu_q[cuq_off + (b + 1) * cuq_st] - (int)q0;
    lk = cu_k[cuk_off + (b + 1) * cuk_st] - (int)k0;
  }
  const int r0 = qb * BM;
  if (r0 >= lq) return;  // uniform over the work-group
  const int nrows = min(BM, lq - r0);
  const int hk = h / group;
  const int kend = sq_att_visible_end(r0 + nrows - 1, lq, lk, causal);
  const int ntiles = kend > 0 ? (kend + BN - 1) / BN : 0;
  const int full_end = sq_att_visible_end(r0, lq, lk, causal);  // keys all rows see

  // Global element offsets of the rows this work-item stages (fixed for the work-group).
  const int st_row = lid >> 3, st_dv = (lid & 7) * 4;
  long q_row[SR];
  SQ_UNROLL
  for (int t = 0; t < SR; ++t) {
    int r = st_row + SRW * t;
    q_row[t] = r < nrows ? q_off + b * q_sb + (q0 + r0 + r) * q_sr + h * q_sh : -1;
  }
  const long kv_base_k = k_off + b * k_sb + hk * k_sh, kv_base_v = v_off + b * v_sb + hk * v_sh;

  float4 acc[TR][TDV];
  float m_run[TR];
  // Row lid % BM's m and l: kept by work-items lid and lid + 64 (identical copies), so no loop
  // sits inside "if (lid < BM)" (PoCL note in attention_common.h); work-items < BM publish l.
  const int own = lid & (BM - 1);
  float m_own = 0.0f, l_own = 0.0f;
  // The merged lse of each row between chunks lives in local memory (registers are the scarce
  // resource): read from lse_loc[chunk parity], written to the other half by the row's cg == 0.
  if (lid < BM) lse_loc[lid] = sq_att_neg_inf();

  float4 pf[NPF];  // one slice in flight from global memory to local memory
#if ATT_PREFETCH
  if (ntiles > 0) SLICE_LOAD(0, 0);
#endif

  for (int n = 0; n < ntiles; ++n) {
    const int j0 = n * BN;
    if ((n & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0) {  // a chunk starts from a fresh state
      SQ_UNROLL
      for (int kk = 0; kk < TR; ++kk) {
        m_run[kk] = sq_att_neg_inf();
        SQ_UNROLL
        for (int t = 0; t < TDV; ++t) acc[kk][t] = (float4)(0.0f);
      }
      m_own = sq_att_neg_inf();
      l_own = 0.0f;
    }
    const bool masked = j0 + BN > full_end;

    // ---- scores: s[kk][t] = dot(q'[rg + 8kk], k[j0 + cg + 16t]), d ascending over slices ----
    float s[TR][TK];
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk)
      SQ_UNROLL
      for (int t = 0; t < TK; ++t) s[kk][t] = 0.0f;
    for (int d0 = 0; d0 < DH; d0 += DS) {
      const int st = d0 / DS;
#if !ATT_PREFETCH
      SLICE_LOAD(n, st);
#endif
      barrier(CLK_LOCAL_MEM_FENCE);
      SLICE_STORE(st);
      barrier(CLK_LOCAL_MEM_FENCE);
#if ATT_PREFETCH
      SLICE_LOAD(n, st + 1);  // the next Q/K slice or V slice 0 (st + 1 == NQK)
#endif
      // Everyone has finished the previous tile (any_skip's readers) and nobody sets it before
      // the partial-max barrier below.
      if (d0 == 0 && lid == 0) any_skip = 0;
      SQ_UNROLL2
      for (int dd = 0; dd < DS; dd += 4) {
        float4 kv4[TK];
        SQ_UNROLL
        for (int t = 0; t < TK; ++t) kv4[t] = LD4(ks + (cg + 16 * t) * QS + dd);
        SQ_UNROLL
        for (int kk = 0; kk < TR; ++kk) {
          const float4 qv = LD4(qs + (rg + RG * kk) * QS + dd);
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

    // ---- tile max: partial maxima over this work-item's keys, then over the 16 partials ----
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int ve = sq_att_visible_end(r0 + rg + RG * kk, lq, lk, causal) - j0;
      float pm = sq_att_neg_inf();
      SQ_UNROLL
      for (int t = 0; t < TK; ++t)
        if (!masked || cg + 16 * t < ve) pm = sq_mx(pm, s[kk][t]);
      pmax[(rg + RG * kk) * 16 + cg] = pm;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- p = exp2(s - m_new) into P; rescale the accumulators ----
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int row = rg + RG * kk;
      const int ve = sq_att_visible_end(r0 + row, lq, lk, causal) - j0;
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
      if (skip) atomic_or(&any_skip, 1);
      SQ_UNROLL
      for (int t = 0; t < TK; ++t) {
        const bool vis = !skip && (!masked || cg + 16 * t < ve);
        pbuf[row * PS + cg + 16 * t] = vis ? sq_att_prob(s[kk][t], m_new) : 0.0f;
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
      const int st = NQK + js / JS;
#if !ATT_PREFETCH
      SLICE_LOAD(n, st);
#endif
      barrier(CLK_LOCAL_MEM_FENCE);  // also at js == 0: no barrier under a condition (PoCL note)
      SLICE_STORE(st);
      barrier(CLK_LOCAL_MEM_FENCE);
#if ATT_PREFETCH
      if (st + 1 < NQK + NV)
        SLICE_LOAD(n, st + 1);
      else if (n + 1 < ntiles)
        SLICE_LOAD(n + 1, 0);  // the next tile's first Q/K slice
#endif
      if (js == 0) {  // the row sum r: one chain over the tile's 64 p_j, ascending
        float r = 0.0f;
        for (int x = 0; x < BN; x += 4) {
          float4 p4 = LD4(pbuf + own * PS + x);
          r = r + p4.x;
          r = r + p4.y;
          r = r + p4.z;
          r = r + p4.w;
        }
        l_own = fma(l_own, alpha_own, r);
      }
      if (!masked && !any_skip) {
        for (int jj = 0; jj < JS; jj += 4) {
          SQ_UNROLL
          for (int kk = 0; kk < TR; ++kk) {
            const float4 p4 = LD4(pbuf + (rg + RG * kk) * PS + js + jj);
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
      } else {  // only the visible keys of each row (a prefix of the tile) enter its chains
        for (int jj = 0; jj < JS; ++jj) {
          SQ_UNROLL
          for (int kk = 0; kk < TR; ++kk) {
            const float p = pbuf[(rg + RG * kk) * PS + js + jj];
            // keys [0, lim) of the tile enter the row's P.V chains (none when the row skipped)
            const int lim =
                m_run[kk] == sq_att_neg_inf()
                    ? 0
                    : (masked ? sq_att_visible_end(r0 + rg + RG * kk, lq, lk, causal) - j0 : BN);
            SQ_UNROLL
            for (int t = 0; t < TDV; ++t) {
              const float4 vv = LD4(qkv + jj * DH + 4 * (cg + 16 * t));
              if (js + jj < lim) acc[kk][t] = fma((float4)(p), vv, acc[kk][t]);
            }
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
      SQ_UNROLL
      for (int kk = 0; kk < TR; ++kk) {
        const int row = rg + RG * kk;
        const float l = lrow[row];
        const int par = (n / SQ_ATT_TILES_PER_CHUNK) & 1;
        const SqAttMerge w =
            sq_att_merge_weights(lse_loc[par * BM + row], sq_att_chunk_lse(m_run[kk], l));
        if (cg == 0) lse_loc[(par ^ 1) * BM + row] = w.lse;
        if (row < nrows) {
          const long s_row = s_off + b * s_sb + (q0 + r0 + row) * s_sr + h * s_sh;
          const long o_row = o_off + b * o_sb + (q0 + r0 + row) * o_sr + h * o_sh;
          SQ_UNROLL
          for (int t = 0; t < TDV; ++t) {
            const int dv = 4 * (cg + 16 * t);
            float4 o_r = w.mode == 0 ? (float4)(0.0f) : vload4(0, scratch + s_row + dv);
            float4 a = acc[kk][t], o;
            o.x = sq_att_merge_out(w, o_r.x, sq_att_chunk_out(a.x, l));
            o.y = sq_att_merge_out(w, o_r.y, sq_att_chunk_out(a.y, l));
            o.z = sq_att_merge_out(w, o_r.z, sq_att_chunk_out(a.z, l));
            o.w = sq_att_merge_out(w, o_r.w, sq_att_chunk_out(a.w, l));
            if (last)
              sq_att_store4(out, o_row + dv, o_dt, o);
            else
              vstore4(o, 0, scratch + s_row + dv);
          }
          if (last && want_lse && cg == 0)
            lse[l_off + b * l_sb + (q0 + r0 + row) * l_sr + h * l_sh] = w.lse;
        }
      }
    }
  }

  if (ntiles == 0) {  // no row of the block sees a key: O = 0, lse = -inf
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int row = rg + RG * kk;
      if (row < nrows) {
        const long o_row = o_off + b * o_sb + (q0 + r0 + row) * o_sr + h * o_sh;
        SQ_UNROLL
        for (int t = 0; t < TDV; ++t)
          sq_att_store4(out, o_row + 4 * (cg + 16 * t), o_dt, (float4)(0.0f));
        if (want_lse && cg == 0)
          lse[l_off + b * l_sb + (q0 + r0 + row) * l_sr + h * l_sh] = sq_att_neg_inf();
      }
    }
  }
}
