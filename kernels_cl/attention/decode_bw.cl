#pragma OPENCL FP_CONTRACT OFF
// decode_bw.cl — exact fp32 attention for decode-shaped calls, tuned for KV bandwidth: the same
// definition (attention_common.h), arguments, split and bits as decode.cl and decode_stream.cl.
// What makes it lean (every work-item does only work that some row needs once):
//  - DB_ROWS query rows per work-group (4: a GQA group of 4 at Lq 1 has no padding rows; a
//    padding row runs its chains on q' = 0 and p = 0 and is never stored);
//  - scores: work-item (key lid % 64, slice lid / 64) reads its key's K row into registers (the
//    next tile's K is loaded while the current tile is finished) and runs the dot chains of rows
//    slice + KS kk, d ascending, so each K element is widened once per slice;
//  - V is kept in local memory raw (int8: 8 KB a tile, with the 64 row scales) and widened inside
//    P.V; P.V work-item (column group, row group) owns the acc chains of DB_COLS columns x RPT
//    rows and reads V[j][cols] once per key for all of its rows; the row sum r of each row is
//    folded in the same key loop (p_j of keys past a row's visible prefix are 0, so r is the sum
//    of the 64 p_j in key order); V of keys past a row's visible prefix is never multiplied;
//  - the tile max of a row is folded from NT / ROWS partial maxima in local memory (exact in
//    any order), then row statistics (m_new, alpha, visible prefix) go through local memory.
// The next tile's V vectors are loaded into registers after this tile's are stored to local.
//
// Macros (decode_bw.h derives the layout from them): HEAD_DIM (64 or 128), KV_ES (4 f32, 2
// f16/bf16, 1 int8), DB_ROWS (4 or 8), DB_THREADS (64, 128 or 256), DB_COLS (1, 2 or 4; the host
// keeps DH / DB_COLS <= DB_THREADS and RPT >= 1). No hooks. The host checks that every K/V row
// start is a whole 16-byte vector. Launch: local (NT), global (NT * row groups, nC, B * Hkv), split
// as decode.cl.
#include "attention/attention_common.h"
#include "attention/decode_bw.h"        // layout macros, tile movement, decode_vec.h
#include "attention/decode_bw_merge.h"  // chunk merges, the write of R
#include "attention/decode_bw_pv.h"     // P.V and the row sums of a tile

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void attention_rows(
    gbytes q, long q_off, long q_sb, long q_sr, long q_sh, int q_dt,              //
    gbytes k, long k_off, long k_sb, long k_sr, long k_sh, int k_dt,              //
    gbytes v, long v_off, long v_sb, long v_sr, long v_sh, int v_dt,              //
    __global const float* k_sc, long ks_off, long ks_sb, long ks_sr, long ks_sh,  // int8 pages
    __global const float* v_sc, long vs_off, long vs_sb, long vs_sr, long vs_sh,  // row scales
    __global uchar* out, long o_off, long o_sb, long o_sr, long o_sh, int o_dt, __global float* lse,
    long l_off, long l_sb, long l_sr, long l_sh, int want_lse, __global float* ws_o,
    __global float* ws_lse, int split, int ws_chunks, __global const int* seq_a, long sa_off,
    long sa_st,                                          // varlen: cu_q; paged: seq_lens
    __global const int* seq_b, long sb_off, long sb_st,  // varlen: cu_k
    __global const int* pages, long pt_off, long pt_st, int page_size, int mode, int hq, int group,
    int d, int lq, int lk, int causal, float c) {
  __local float qs[ROWS * DH] SQ_ATT_LOCAL_ALIGN;  // q' rows (zero rows past the group's)
#if ASYNC
  __local uint4 kt[2 * BN * KROW];         // K tiles n and n + 1 (buffer n & 1), raw, padded rows
  __local uint4 vs[2 * BN * KROW];         // V tiles, raw, padded rows
  __local float kts[2 * BN], vsc[2 * BN];  // their int8 row scales
#else
  __local uint4 vs[BN * VR];  // the tile's V, raw
  __local float vsc[BN];      // its int8 row scales
#endif
  __local float ss[ROWS * BN];  // scores (-inf where not visible), [row][key]
  __local float
      pp[BN * ROWS] SQ_ATT_LOCAL_ALIGN;      // probabilities (0 where not visible), [key][row]
  __local float pm[NT];                      // partial tile maxima
  __local float st_m[ROWS], st_alpha[ROWS];  // row statistics of the tile
  __local int st_vlim[ROWS];
#if !ASYNC
  __local int kv_pg[2 * BN], kv_sl[2 * BN];  // page (or sequence) and slot of tile n's keys at
                                             // (n & 1) * BN: double-buffered
#endif
  (void)d;

  DECODE_CALL_SETUP();  // lid, b, hk, q0, k0, lq, lk, rr0, nrows, lqd, nchunks
  int kend = 0;
  for (int r = 0; r < nrows; ++r)
    kend = max(kend, sq_att_visible_end((rr0 + r) % lqd, lq, lk, causal));
  DECODE_CHUNK_RANGE();  // c_begin, active, c_end of this work-group

  DECODE_STAGE_Q(qs);  // q' = q * c (one rounding), zero padding rows

  // Score work-item: key s_key, rows s_sl + KS kk. Statistics work-item: row lid % ROWS.
  const int s_key = lid % BN, s_sl = lid / BN;
  int s_vend[SR];
  UNROLL
  for (int kk = 0; kk < SR; ++kk) {
    const int r = s_sl + KS * kk;
    s_vend[kk] = r < nrows ? sq_att_visible_end((rr0 + r) % lqd, lq, lk, causal) : 0;
  }
  const int m_row = lid % ROWS;
  const int m_vend = m_row < nrows ? sq_att_visible_end((rr0 + m_row) % lqd, lq, lk, causal) : 0;
  float m_run = sq_att_neg_inf();
  // P.V work-item: columns cg * CW .., rows rg * RPT ..
  const int cg = lid % NCG, rg = lid / NCG;
  float acc[RPT][CW], o_r[RPT][CW], l_r[RPT], lse_r[RPT];
  UNROLL
  for (int kk = 0; kk < RPT; ++kk) {
    UNROLL
    for (int cc = 0; cc < CW; ++cc) {
      acc[kk][cc] = 0.0f;
      o_r[kk][cc] = 0.0f;
    }
    l_r[kk] = 0.0f;
    lse_r[kk] = sq_att_neg_inf();
  }

  const int n_begin = c_begin * SQ_ATT_TILES_PER_CHUNK;
  const int n_end = min(c_end * SQ_ATT_TILES_PER_CHUNK, (kend + BN - 1) / BN);
#if KPRE
  uint4 kpre[VR];
#endif
  float kscl = 1.0f;
  long k_at = 0;
#if VPRE
  uint4 vpre[VPT];
  float vscl[VPT];
#endif

#if ASYNC
  if (n_begin < n_end) COPY_TILE(n_begin);
  CP_COMMIT();
#else
  FETCH_K(n_begin);
  barrier(CLK_LOCAL_MEM_FENCE);  // kv_pg / kv_sl of the first tile; q'
#if VPRE
  UNROLL
  for (int i = 0; i < VPT; ++i) FETCH_V1(n_begin, i, vpre[i], vscl[i]);
#endif
#endif

  for (int n = n_begin; n < n_end; ++n) {
    const int j0 = n * BN;
#if ASYNC
    CP_WAIT();
    barrier(CLK_LOCAL_MEM_FENCE);  // tile n landed; everyone is done with tile n - 1's buffer
    if (n + 1 < n_end) COPY_TILE(n + 1);
    CP_COMMIT();
    __local const uint4* vcur = vs + (n & 1) * BN * KROW;
    __local const float* vsccur = vsc + (n & 1) * BN;
#else
    __local const uint4* vcur = vs;
    __local const float* vsccur = vsc;
#endif
    if ((n & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0) {  // a chunk starts from a fresh state
      UNROLL
      for (int kk = 0; kk < RPT; ++kk) {
        UNROLL
        for (int cc = 0; cc < CW; ++cc) acc[kk][cc] = 0.0f;
        l_r[kk] = 0.0f;
      }
      m_run = sq_att_neg_inf();
    }
    // ---- scores of key s_key: one chain over d per row ----
    float s[SR];
    UNROLL
    for (int kk = 0; kk < SR; ++kk) s[kk] = 0.0f;
    {
#if ASYNC
      __local const uint4* krow = kt + ((n & 1) * BN + s_key) * KROW;
      const float ksc = kts[(n & 1) * BN + s_key];
#else
      const float ksc = kscl;
#endif
#if !KPRE && !ASYNC
      const long at = k_at;
#endif
      UNROLL
      for (int i = 0; i < VR; ++i) {
#if ASYNC
        const uint4 raw = krow[i];
#elif KPRE
        const uint4 raw = kpre[i];
#else
        const uint4 raw = at >= 0 ? VEC_AT(k, at + i * DV_VEC) : (uint4)(0u);
#endif
        UNROLL
        for (int p = 0; p < DV_PPV; ++p) {
          const float4 k4 = dv_widen(raw, ksc, p, k_dt);
          UNROLL
          for (int kk = 0; kk < SR; ++kk) {
            const float4 q4 = LD4(qs + (s_sl + KS * kk) * DH + i * DV_VEC + 4 * p);
            float a = s[kk];
            a = fma(q4.x, k4.x, a);
            a = fma(q4.y, k4.y, a);
            a = fma(q4.z, k4.z, a);
            a = fma(q4.w, k4.w, a);
            s[kk] = a;
          }
        }
      }
    }
#if !ASYNC
    barrier(CLK_LOCAL_MEM_FENCE);       // the previous tile's P.V is done with vs, vsc and pp
    if (n + 1 < n_end) FETCH_K(n + 1);  // (writes kv_pg / kv_sl: read by FETCH_V1 below)
#endif
#if ASYNC
#elif VPRE
    UNROLL
    for (int i = 0; i < VPT; ++i) STORE_V1(i, vpre[i], vscl[i]);
#else
    UNROLL
    for (int i = 0; i < VPT; ++i) {
      uint4 val;
      float scl;
      FETCH_V1(n, i, val, scl);
      STORE_V1(i, val, scl);
    }
#endif
    UNROLL
    for (int kk = 0; kk < SR; ++kk)
      ss[(s_sl + KS * kk) * BN + s_key] = j0 + s_key < s_vend[kk] ? s[kk] : sq_att_neg_inf();
    barrier(CLK_LOCAL_MEM_FENCE);
#if VPRE && !ASYNC
    UNROLL
    for (int i = 0; i < VPT; ++i) FETCH_V1(n + 1, i, vpre[i], vscl[i]);
#endif
    {  // partial maxima: row lid / TPR, keys (lid % TPR) * (BN / TPR) ..
      const int r = lid / TPR, kp0 = (lid % TPR) * (BN / TPR);
      float mx = sq_att_neg_inf();
      UNROLL
      for (int jj = 0; jj < BN / TPR; ++jj) mx = sq_mx(mx, ss[r * BN + kp0 + jj]);
      pm[lid] = mx;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    {  // row statistics of row m_row (identical copies; work-items < ROWS publish them)
      float mt = sq_att_neg_inf();
      UNROLL
      for (int t = 0; t < TPR; ++t) mt = sq_mx(mt, pm[m_row * TPR + t]);
      const float m_new = sq_mx(m_run, mt);
      const float alpha = sq_att_alpha(m_run, m_new);
      const int vlim = m_new == sq_att_neg_inf() ? 0 : clamp(m_vend - j0, 0, BN);
      m_run = m_new;
      if (lid < ROWS) {
        st_m[m_row] = m_new;
        st_alpha[m_row] = alpha;
        st_vlim[m_row] = vlim;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    UNROLL
    for (int kk = 0; kk < SR; ++kk) {
      const int r = s_sl + KS * kk;
      pp[s_key * ROWS + r] = s_key < st_vlim[r] ? sq_att_prob(s[kk], st_m[r]) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // ---- P.V and the row sums: V[j][cols] read once per key for the work-item's rows ----
    DB_PV_TILE();
    // ---- end of a chunk: C = (acc / l, m + log2 l), merged into R ----
    DB_MERGE_CHUNK();
  }

  // ---- write R: the output row, or this chunk's workspace entry (split) ----
  DB_WRITE_R();
}
