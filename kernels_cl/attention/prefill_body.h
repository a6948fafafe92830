// prefill_body.h — the one body of sparq's exact fp32 prefill kernels (OpenCL C only): a walk over
// 64-key steps for 64 query rows per work-group, online base-2 softmax, segment merges.
//   SQ_PREFILL_SPARSE 0: attention/dense.cl, kernel attention_dense. The implicit full index:
//     step n = the tile of keys [64n, 64n + 64) for n < ceil(visible end / 64), no columns;
//     segments are the 4096-key chunks (n / 64); causal prefix masking (attention_common.h).
//   SQ_PREFILL_SPARSE 1: sparse/sparse_prefill.cl, kernel sparse_prefill. Steps are the tiles of
//     a SparseIndex row (tile_start[t] + 0..63), then its columns in chunks of 64; per-slot
//     visibility (qpos/kpos, causal, A-shape sink/window tokens); segments by tile_start >> 12.
// K/V in either mode: contiguous, varlen (dense: kv_mode 1) or paged (page_size > 0; dense:
// kv_mode 2, lengths from seq_lens): pages are one more indirection behind the step's keys, and
// f32/f16/bf16, int8 or NVFP4 pages (scales) are staged as fp32 (attention/prefill_stage.h).
// Each includer's header comment states its defined order; this file computes exactly it, and
// the two modes differ only where marked `#if SQ_PREFILL_SPARSE` (which keys a step holds and
// which of them a row sees). With SQ_PREFILL_SPARSE 0 the preprocessed kernel is dense.cl's,
// so both kernels share one layout and one set of speed knobs (DenseKernelConfig,
// SPARQ_TUNE_DENSE).
//
// Macros: HEAD_DIM (64 or 128; the host passes D == HEAD_DIM exactly); ATT_UNROLL (1: unroll the
// register-tile loops, for GPUs; 0: leave it to the compiler, which builds ~5x faster on PoCL and
// runs faster there). Unrolling never changes an operation or its order. ATT_PREFETCH (1: load
// the next Q/K or V slice from global memory into registers while the current one is computed,
// which hides load latency on GPUs; 0: load each slice right before it is staged). Prefetching
// only moves loads earlier: the values staged, and so every bit, are the same. ATT_THREADS (128
// or 256 work-items per work-group). ATT_EXP_CVT: exp2's rounding step (prefill_stage.h).
// Launch: local (NT), global (NT * Hq, nQB, B), nQB = ceil(max Lq / 64); work-group
// (h, nQB-1-qb, b) owns query rows [64 qb, 64 qb + 64) of sequence b, head h (heavy causal
// blocks first). Inputs f32/f16/bf16 (run-time codes), widened exactly when staged in local memory.
//
// Work split (does not change the order of any chain):
//  - work-item (rg, cg) = (lid / 16, lid % 16) owns rows rg + RG k (k < TR); in the score phase
//    slots cg + 16t (t < 4), in the P.V phase d = 4 (cg + 16t) + e; every score dot(q', k_j) and
//    every acc[d] chain is one sequential chain in one work-item (d ascending, slots ascending),
//    only staged through local memory in slices (Q/K: 32 d at a time; V: JS keys at a time);
//  - the step max is folded from 16 partial maxima (max is exact, any order is the same value);
//  - the row sum r of a step is one sequential chain over its 64 p_j, by work-item `row` (< 64),
//    which also owns the row's l; m (needed by all) is recomputed identically by each owner;
//  - between segments the merged state R lives in `scratch` (fp32, each element touched only by
//    the work-item that owns it; the output itself when it is fp32) and R's lse in local memory;
//  - sparse: the keys (and positions) of step n's slots are staged in local memory, half n & 1,
//    one step ahead (the prefetch of step n + 1 reads them during step n); an invisible
//    (row, slot) holds -1 in P (p >= 0 or NaN otherwise), so the row sum and the masked P.V path
//    skip exactly the invisible keys. Dense: invisible keys hold 0 in P (r + 0 == r exactly) and
//    the masked P.V path stops at the row's visible prefix of the tile.
#include "attention/attention_common.h"

#ifndef SQ_PREFILL_SPARSE
#error "SQ_PREFILL_SPARSE must be defined (0: dense.cl, 1: sparse_prefill.cl)"
#endif
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef SQ_ATT_HOOKS
#define SQ_ATT_HOOKS 0
#endif
// Per-slot visibility (an invisible (row, slot) holds -1 in P; the masked P.V path tests each
// slot): the sparse walk, and the dense walk with hooks (a window or key mask is no prefix).
#define SQ_SLOTS (SQ_PREFILL_SPARSE || SQ_ATT_HOOKS)
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
#define BM 64           // query rows per work-group
#define BN SQ_ATT_TILE  // keys (slots) per step
#ifndef ATT_THREADS
#define ATT_THREADS 128
#endif
#define NT ATT_THREADS           // work-items per work-group: 128 or 256
#define RG (NT / 16)             // row groups: work-item (rg, cg) = (lid / 16, lid % 16)
#define TR (BM / RG)             // rows per work-item: rg + RG * kk, kk < TR
#define TK 4                     // keys per work-item (score phase)
#define TDV (DH / 64)            // float4 columns per work-item (P.V phase)
#define DS 32                    // d per Q/K slice
#define QS (DS + 4)              // padded row stride of the Q/K slices (conflict-free float4 reads)
#define PS (BN + 4)              // padded row stride of P
#define JS (DH == 64 ? 64 : 32)  // keys per V slice
#define QKV_FLOATS (2 * BM * QS)  // local region shared by the Q/K slices and the V slice

#define NQK (DH / DS)  // Q/K slices per tile
#define NV (BN / JS)   // V slices per tile
#define SRW (NT / 8)   // rows staged per pass (8 work-items per row of a 32-d slice)
#define SR (BM / SRW)  // staging passes: rows st_row + SRW * t, t < SR
#define NPF (2 * SR)   // float4 per work-item per slice: SR Q + SR K rows, or JS*DH/4/NT of V

#if SQ_PREFILL_SPARSE
#define SEG_SHIFT 12  // 4096-key segments (SQ_ATT_CHUNK)
// Key of slot s_ of step n_ (-1: none), staged by STEP_KEYS.
#define STEP_KEY(n_, s_) kidx[((n_)&1) * BN + (s_)]
#define KEY_OK(j_) ((j_) >= 0)
// visible(i, j) of sparse_prefill.cl's definition, for key kj (-1: none) at position kp and a
// query at position qp_ (a macro: PoCL's inliner, see SLICE_LOAD).
#define SP_VISIBLE(kj, kp, qp_) \
  ((kj) >= 0 && !(causal && (kp) > (qp_)) && !(window > 0 && !((kp) < sink || (kp) > (qp_)-window)))
#define KEY_POS(n_, s_) kps[((n_)&1) * BN + (s_)]
#else
#define STEP_KEY(n_, s_) ((n_)*BN + (s_))
#define KEY_OK(j_) ((j_) < lk)
#define KEY_POS(n_, s_) ((n_)*BN + (s_))
#endif
#if SQ_ATT_HOOKS
// The hooks' part of visible' (attention_common.h HOOKS) for key j_ (>= 0) at position kp_.
#define HOOK_VIS(j_, kp_, qp_) \
  (sq_att_hook_window((qp_), (kp_), hk_wl, hk_wr) && (!hk_has_mask || hk_mask[hk_mrow + (j_)] != 0))
#else
#define HOOK_VIS(j_, kp_, qp_) 1
#endif

#include "attention/prefill_stage.h"

// clang-format off
#if SQ_PREFILL_SPARSE
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void sparse_prefill(
#else
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void attention_dense(
#endif
    gbytes q, long q_off, long q_sb, long q_sr, long q_sh, int q_dt,  //
    gbytes k, long k_off, long k_sb, long k_sr, long k_sh, int k_dt,  //
    gbytes v, long v_off, long v_sb, long v_sr, long v_sh, int v_dt,  //
    gbytes k_sc, long ks_off, long ks_sb, long ks_sr, long ks_sh,  // int8 / NVFP4 pages:
    gbytes v_sc, long vs_off, long vs_sb, long vs_sr, long vs_sh,  // their scales
    __global const int* pages, long pt_off, long pt_st, int page_size,  // 0: K/V not paged
    __global uchar* out, long o_off, long o_sb, long o_sr, long o_sh, int o_dt,
    __global float* scratch, long s_off, long s_sb, long s_sr, long s_sh,  //
    __global float* lse, long l_off, long l_sb, long l_sr, long l_sh, int want_lse,
#if SQ_PREFILL_SPARSE
    __global const int* tcount, __global const int* tstart,           //
    __global const int* ccount, __global const int* cidx,             //
    __global const int* qpos, __global const int* kpos, int has_pos,  //
    int hi_n, int group, int share, int max_tiles, int max_cols, int lq, int lk, int off,
    int causal, int sink, int window, float c
#else
    __global const int* cu_q, long cuq_off, long cuq_st,  //
    __global const int* cu_k, long cuk_off, long cuk_st,  //
    int kv_mode, int group, int lq, int lk, int causal, float c
#endif
#if SQ_ATT_HOOKS
    // [slope2[Hq], sink2[Hq]]; key mask u8 (row b at hk_moff + b * hk_msb); window; cap2 (0: off)
    , __global const float* hk_head, __global const uchar* hk_mask, long hk_moff, long hk_msb,
    int hk_has_mask, int hk_wl, int hk_wr, float hk_cap2
#endif
    ) {
  // clang-format on
  // Q slice [BM][QS] + K slice [BN][QS], or V slice [JS][DH]
  __local float qkv[QKV_FLOATS] SQ_ATT_LOCAL_ALIGN;
  __local float pbuf[BM * PS] SQ_ATT_LOCAL_ALIGN;  // P [row][key]
  __local float pmax[BM * 16] SQ_ATT_LOCAL_ALIGN;  // partial row maxima [row][cg]
  __local float lrow[BM];                          // l at the end of a chunk
  __local float lse_loc[2 * BM];                   // merged lse per row, by chunk parity
  __local int any_skip;  // some row skips this tile (its P.V must not run)
#if SQ_PREFILL_SPARSE
  __local int kidx[2 * BN];  // key of each slot of step n in half n & 1 (-1: none)
  __local int kps[2 * BN];   // its position
#endif
  __local long kro[2 * BN], vro[2 * BN];  // paged: K/V row offsets of the slots (prefill_stage.h)
  __local long ksr[2 * BN], vsr[2 * BN];  // paged int8 / NVFP4: their scales' offsets
  __local float* qs = qkv;
  __local float* ks = qkv + BM * QS;

  const int lid = get_local_id(0);
  const int rg = lid >> 4, cg = lid & 15;
  const int h = get_group_id(0), b = get_group_id(2);
  const int qb = get_num_groups(1) - 1 - get_group_id(1);
#if SQ_PREFILL_SPARSE
  const long q0 = 0, k0 = 0;
#else
  long q0 = 0, k0 = 0;
  if (kv_mode == 1) {  // varlen
    q0 = cu_q[cuq_off + b * cuq_st];
    k0 = cu_k[cuk_off + b * cuk_st];
    lq = cu_q[cuq_off + (b + 1) * cuq_st] - (int)q0;
    lk = cu_k[cuk_off + (b + 1) * cuk_st] - (int)k0;
  } else if (kv_mode == 2) {  // paged: cu_k holds seq_lens
    lk = cu_k[cuk_off + b * cuk_st];
  }
#endif
  // Paged K/V: rows through sequence b's page-table row (prefill_stage.h); k_sb is the page stride.
  const int paged = page_size > 0;
  __global const int* page_row = pages + pt_off + b * pt_st;
  const int r0 = qb * BM;
  if (r0 >= lq) return;  // uniform over the work-group
  const int nrows = min(BM, lq - r0);
  const int hk = h / group;
#if SQ_PREFILL_SPARSE
  // The index row (b, hi, qb): its tiles, then its columns in chunks of BN: ntiles steps.
  const long irow = ((long)b * hi_n + (share ? hk : h)) * get_num_groups(1) + qb;
  int nt = tcount[irow];
  nt = nt < 0 ? 0 : (nt > max_tiles ? max_tiles : nt);
  int ncol = ccount[irow];
  ncol = ncol < 0 ? 0 : (ncol > max_cols ? max_cols : ncol);
  __global const int* ts = tstart + irow * max_tiles;
  __global const int* cs = cidx + irow * max_cols;
  const int ntiles = nt + (ncol + BN - 1) / BN;
  // query positions of this work-item's rows (padded rows: -1; they are never stored)
  int qp[TR];
  SQ_UNROLL
  for (int kk = 0; kk < TR; ++kk) {
    const int row = rg + RG * kk;
    qp[kk] = row < nrows ? (has_pos ? qpos[(long)b * lq + r0 + row] : off + r0 + row) : -1;
  }
#else
  const int kend = sq_att_visible_end(r0 + nrows - 1, lq, lk, causal);
  const int ntiles = kend > 0 ? (kend + BN - 1) / BN : 0;
  const int full_end = sq_att_visible_end(r0, lq, lk, causal);  // keys all rows see
#endif
#if SQ_ATT_HOOKS
#if !SQ_PREFILL_SPARSE
  int qp[TR];  // query positions (padded rows: -1; never stored)
  SQ_UNROLL
  for (int kk = 0; kk < TR; ++kk) {
    const int row = rg + RG * kk;
    qp[kk] = row < nrows ? lk - lq + r0 + row : -1;
  }
#endif
  const float hk_slope2 = hk_head[h], hk_sink2 = hk_head[get_num_groups(0) + h];
  const long hk_mrow = hk_moff + b * hk_msb;
#endif

  // Global element offsets of the rows this work-item stages (fixed for the work-group).
  const int st_row = lid >> 3, st_dv = (lid & 7) * 4;
  long q_row[SR];
  SQ_UNROLL
  for (int t = 0; t < SR; ++t) {
    int r = st_row + SRW * t;
    q_row[t] = r < nrows ? q_off + b * q_sb + (q0 + r0 + r) * q_sr + h * q_sh : -1;
  }
  const long kv_base_k = k_off + (paged ? 0 : b * k_sb) + hk * k_sh;
  const long kv_base_v = v_off + (paged ? 0 : b * v_sb) + hk * v_sh;
  const long ks_base = ks_off + hk * ks_sh, vs_base = vs_off + hk * vs_sh;

  float4 acc[TR][TDV];
  float m_run[TR];
  // Row lid % BM's m and l: kept by work-items lid and lid + 64 (identical copies), so no loop
  // sits inside "if (lid < BM)" (PoCL note in attention_common.h); work-items < BM publish l.
  const int own = lid & (BM - 1);
  float m_own = 0.0f, l_own = 0.0f;
  // The merged lse of each row between chunks lives in local memory (registers are the scarce
  // resource): read from lse_loc[chunk parity], written to the other half by the row's cg == 0.
  if (lid < BM) lse_loc[lid] = sq_att_neg_inf();
#if SQ_PREFILL_SPARSE
  int seg_par = 0;  // parity of the segments merged so far (the lse_loc half holding R's lse)
#endif
  if (ntiles > 0) STEP_KEYS(0);  // sparse keys / paged rows of step 0
  barrier(CLK_LOCAL_MEM_FENCE);

  float4 pf[NPF];  // one slice in flight from global memory to local memory
#if ATT_PREFETCH
  if (ntiles > 0) SLICE_LOAD(0, 0);
#endif

  for (int n = 0; n < ntiles; ++n) {
#if SQ_PREFILL_SPARSE
    const int is_tile = n < nt;
    const int t_start = is_tile ? ts[n] : 0;
    // a tile in another 4096-key segment than the previous tile starts a fresh state
    const bool fresh = n == 0 || (is_tile && (t_start >> SEG_SHIFT) != (ts[n - 1] >> SEG_SHIFT));
#else
    const int j0 = n * BN;
    const bool fresh = (n & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0;
#endif
    // Step n + 1's keys into the other half: its readers (step n - 1) passed the barrier at the
    // end of step n - 1; its first reader (the prefetch, or step n + 1) is behind barriers.
    if (n + 1 < ntiles) STEP_KEYS(n + 1);
    if (fresh) {  // a chunk starts from a fresh state
      SQ_UNROLL
      for (int kk = 0; kk < TR; ++kk) {
        m_run[kk] = sq_att_neg_inf();
        SQ_UNROLL
        for (int t = 0; t < TDV; ++t) acc[kk][t] = (float4)(0.0f);
      }
      m_own = sq_att_neg_inf();
      l_own = 0.0f;
    }
#if !SQ_PREFILL_SPARSE
    const bool masked = j0 + BN > full_end;
#endif

    // ---- scores: s[kk][t] = dot(q'[rg + RG kk], k[slot cg + 16t]), d ascending over slices ----
    float s[TR][TK];
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) SQ_UNROLL
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

#if SQ_ATT_HOOKS
    // ---- hooks: soft-cap, then ALiBi (invisible slots get a value that is never read) ----
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) SQ_UNROLL
    for (int t = 0; t < TK; ++t)
      s[kk][t] = sq_att_hook_score(s[kk][t], hk_cap2, hk_slope2, qp[kk], KEY_POS(n, cg + 16 * t));
#endif

      // ---- step max: partial maxima over this work-item's keys, then over the 16 partials ----
#if SQ_SLOTS
    // Per slot: any real row with an invisible slot (or, below, a skip) takes the masked P.V path.
    int vis[TR];  // bit t: slot cg + 16t visible to row rg + RG kk
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      float pm = sq_att_neg_inf();
      int bits = 0;
#if !SQ_PREFILL_SPARSE
      const int ve = sq_att_visible_end(r0 + rg + RG * kk, lq, lk, causal) - j0;
#endif
      SQ_UNROLL
      for (int t = 0; t < TK; ++t) {
#if SQ_PREFILL_SPARSE
        const int sl = (n & 1) * BN + cg + 16 * t;
        const int ok = SP_VISIBLE(kidx[sl], kps[sl], qp[kk]) && HOOK_VIS(kidx[sl], kps[sl], qp[kk]);
#else
        const int jt = j0 + cg + 16 * t;
        const int ok = (!masked || cg + 16 * t < ve) && HOOK_VIS(jt, jt, qp[kk]);
#endif
        bits |= ok << t;
        if (ok) pm = sq_mx(pm, s[kk][t]);
      }
      vis[kk] = bits;
      if (bits != 15 && rg + RG * kk < nrows) atomic_or(&any_skip, 1);
      pmax[(rg + RG * kk) * 16 + cg] = pm;
    }
#else
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int ve = sq_att_visible_end(r0 + rg + RG * kk, lq, lk, causal) - j0;
      float pm = sq_att_neg_inf();
      SQ_UNROLL
      for (int t = 0; t < TK; ++t)
        if (!masked || cg + 16 * t < ve) pm = sq_mx(pm, s[kk][t]);
      pmax[(rg + RG * kk) * 16 + cg] = pm;
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- p = exp2(s - m_new) into P; rescale the accumulators ----
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int row = rg + RG * kk;
#if !SQ_SLOTS
      const int ve = sq_att_visible_end(r0 + row, lq, lk, causal) - j0;
#endif
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
#if SQ_SLOTS
      if (skip && row < nrows) atomic_or(&any_skip, 1);
      SQ_UNROLL
      for (int t = 0; t < TK; ++t) {
        const bool ok = !skip && ((vis[kk] >> t) & 1);
        pbuf[row * PS + cg + 16 * t] = ok ? sq_pf_prob(s[kk][t], m_new) : -1.0f;
      }
#else
      if (skip) atomic_or(&any_skip, 1);
      SQ_UNROLL
      for (int t = 0; t < TK; ++t) {
        const bool vis = !skip && (!masked || cg + 16 * t < ve);
        pbuf[row * PS + cg + 16 * t] = vis ? sq_pf_prob(s[kk][t], m_new) : 0.0f;
      }
#endif
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
#if SQ_SLOTS
          r = p4.x < 0.0f ? r : r + p4.x;
          r = p4.y < 0.0f ? r : r + p4.y;
          r = p4.z < 0.0f ? r : r + p4.z;
          r = p4.w < 0.0f ? r : r + p4.w;
#else
          r = r + p4.x;
          r = r + p4.y;
          r = r + p4.z;
          r = r + p4.w;
#endif
        }
        l_own = fma(l_own, alpha_own, r);
      }
#if SQ_SLOTS
      if (!any_skip) {
#else
      if (!masked && !any_skip) {
#endif
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
      } else {  // only the visible keys of each row enter its chains
        for (int jj = 0; jj < JS; ++jj) {
          SQ_UNROLL
          for (int kk = 0; kk < TR; ++kk) {
            const float p = pbuf[(rg + RG * kk) * PS + js + jj];
#if SQ_SLOTS
            // p < 0: the slot is invisible to the row (or the row skipped the step)
            SQ_UNROLL
            for (int t = 0; t < TDV; ++t) {
              const float4 vv = LD4(qkv + jj * DH + 4 * (cg + 16 * t));
              if (!(p < 0.0f)) acc[kk][t] = fma((float4)(p), vv, acc[kk][t]);
            }
#else
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
#endif
          }
        }
      }
    }

    // ---- end of a chunk (segment): C = (acc / l, m + log2 l), merged into R ----
    const bool last = n == ntiles - 1;
#if SQ_PREFILL_SPARSE
    // the column steps continue the last segment
    const bool chunk_end =
        last || (n + 1 < nt && (ts[n + 1] >> SEG_SHIFT) != (t_start >> SEG_SHIFT));
#else
    const bool chunk_end = last || (n & (SQ_ATT_TILES_PER_CHUNK - 1)) == SQ_ATT_TILES_PER_CHUNK - 1;
#endif
    if (chunk_end && lid < BM) lrow[lid] = l_own;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (chunk_end) {
      SQ_UNROLL
      for (int kk = 0; kk < TR; ++kk) {
        const int row = rg + RG * kk;
        const float l = lrow[row];
#if SQ_PREFILL_SPARSE
        const int par = seg_par;
#else
        const int par = (n / SQ_ATT_TILES_PER_CHUNK) & 1;
#endif
        const SqAttMerge w =
            sq_att_merge_weights(lse_loc[par * BM + row], sq_att_chunk_lse(m_run[kk], l));
        if (cg == 0) lse_loc[(par ^ 1) * BM + row] = w.lse;
#if SQ_ATT_HOOKS
        const SqAttMerge w_sink = sq_att_merge_weights(w.lse, hk_sink2);  // used when last
        const float lse_out = w_sink.lse;
#else
        const float lse_out = w.lse;
#endif
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
            if (last) {
#if SQ_ATT_HOOKS
              o.x = sq_att_merge_out(w_sink, o.x, 0.0f);
              o.y = sq_att_merge_out(w_sink, o.y, 0.0f);
              o.z = sq_att_merge_out(w_sink, o.z, 0.0f);
              o.w = sq_att_merge_out(w_sink, o.w, 0.0f);
#endif
              sq_att_store4(out, o_row + dv, o_dt, o);
            } else {
              vstore4(o, 0, scratch + s_row + dv);
            }
          }
          if (last && want_lse && cg == 0)
            lse[l_off + b * l_sb + (q0 + r0 + row) * l_sr + h * l_sh] = lse_out;
        }
      }
#if SQ_PREFILL_SPARSE
      seg_par ^= 1;
#endif
    }
  }

  if (ntiles == 0) {  // no row of the block sees a key (an empty index row): O = 0, lse = -inf
    SQ_UNROLL
    for (int kk = 0; kk < TR; ++kk) {
      const int row = rg + RG * kk;
      if (row < nrows) {
        const long o_row = o_off + b * o_sb + (q0 + r0 + row) * o_sr + h * o_sh;
        SQ_UNROLL
        for (int t = 0; t < TDV; ++t)
          sq_att_store4(out, o_row + 4 * (cg + 16 * t), o_dt, (float4)(0.0f));
#if SQ_ATT_HOOKS
        const float lse_out = sq_att_merge_weights(sq_att_neg_inf(), hk_sink2).lse;
#else
        const float lse_out = sq_att_neg_inf();
#endif
        if (want_lse && cg == 0)
          lse[l_off + b * l_sb + (q0 + r0 + row) * l_sr + h * l_sh] = lse_out;
      }
    }
  }
}
