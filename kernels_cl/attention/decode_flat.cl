#pragma OPENCL FP_CONTRACT OFF
// decode_flat.cl — exact fp32 attention for decode-shaped calls with the tile-to-tile barrier
// chain flattened: the same definition (attention_common.h), arguments, launch, split and bits as
// decode_bw.cl and decode_stream.cl. Inside a chunk the only sequential dependency between tiles
// is the running max m_n = mx(m_{n-1}, tilemax_n) (and the acc / l chains, which stay sequential
// in one work-item each); so a work-group walks its chunk in spans of SPAN keys (SPAN / 64 tiles)
// and, per span, runs four barrier-free phases:
//  1. scores: work-item lid owns keys lid + NT u of the span; it first copies their V rows (raw,
//     with the int8 scales) into local memory (cp.async with DB_ASYNC_PTX), then loads their K
//     rows (DF_KPI keys' loads in flight, each q' read serving them all) and runs the dot chains
//     of all ROWS rows (d ascending, K widened once per key), writing S[key][row] to local memory;
//  2. tile maxima: work-item (row, tile, part) folds part of the tile's visible scores with sq_mx
//     (any order and grouping);
//  3. probabilities: work-item (row, keys) folds m_new = mx(m_old, tile max) tile by tile from
//     the running max (the definition's sequential fold) and writes p = (key < the visible
//     prefix, 0 when m_new == -inf: a skipped tile) ? sq_exp2(s - m_new) : 0 over S; work-items
//     < ROWS publish each tile's m_new, alpha = sq_att_alpha(m_old, m_new) and visible prefix;
//  4. work-item (row, tile) sums the tile's p in key order (r = r + p_j from +0, all 64 keys);
//     P.V work-item (column group, row group) walks the span's tiles in order exactly as
//     decode_bw.cl's P.V: acc *= alpha, then fma over the visible keys ascending.
// After the span's last barrier every P.V work-item folds l = fma(l, alpha, r) tile by tile for
// its rows and, at a chunk's end, merges C = (acc / l, m + log2 l) into R. The running max of
// each row goes to the next span through local memory (mrun). Spans divide 4096, so none
// straddles a chunk; tiles past the work-group's last visible key are not walked.
//
// Macros: HEAD_DIM (64, 128 or 256), KV_ES (4, 2, 1), DB_ROWS (4 or 8), DB_THREADS (64, 128, 256),
// DB_COLS (decode_bw.h's P.V layout), DF_SPAN (keys per span: 64 .. 4096, a power of two; the
// host keeps the local memory within the device's), DF_KPI (keys per work-item whose K loads are
// issued together: 1, 2 or 4), DV_MAGIC, DB_UNROLL, DB_ASYNC + DB_ASYNC_PTX (V copies as
// cp.async), DF_GATE (decode_flat.h). No hooks. Launch: as decode_bw.cl.
#include "attention/attention_common.h"
#include "attention/decode_flat.h"  // layout, helper macros, decode_bw.h

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
  __local uint4 vls[SPAN * FROW];                  // the span's V rows, raw
  __local float vsc[SPAN];                         // their int8 row scales
#if DF_KLOC
  __local uint4 kls[SPAN * FROW];  // the span's K rows, raw (read by the work-item that copied)
  __local float ksl[SPAN];         // their int8 row scales
#endif
  __local float ps[SPAN * ROWS] SQ_ATT_LOCAL_ALIGN;  // scores, then probabilities: [key][row]
  __local float tmx[ROWS * NTL * PARTS];             // partial tile maxima [row][tile][part]
  __local float st_m[ROWS * NTL], st_al[ROWS * NTL], st_rs[ROWS * NTL];  // m_new, alpha, r
  __local int st_vl[ROWS * NTL];  // visible prefix of the tile (0: skipped)
  __local float mrun[ROWS];       // running max at the span's start
  (void)d;

  DECODE_CALL_SETUP();  // lid, b, hk, q0, k0, lq, lk, rr0, nrows, lqd, nchunks
  int kend = 0;
  for (int r = 0; r < nrows; ++r) kend = max(kend, VEND(r));
  DECODE_CHUNK_RANGE();  // c_begin, active, c_end of this work-group

  DECODE_STAGE_Q(qs);  // q' = q * c (one rounding), zero padding rows

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
  const int jlim = min(lk, n_end * BN);  // keys past it are never visible to these rows
  const int vend_p = VEND(lid % ROWS);   // visible end of the row this work-item's p items are in

  for (int n0 = n_begin; n0 < n_end; n0 += NTL) {
    const int nt = min(NTL, n_end - n0), j0 = n0 * BN;
    if ((n0 & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0) {  // a chunk starts from a fresh state
      UNROLL
      for (int kk = 0; kk < RPT; ++kk) {
        UNROLL
        for (int cc = 0; cc < CW; ++cc) acc[kk][cc] = 0.0f;
        l_r[kk] = 0.0f;
      }
      if (lid < ROWS) mrun[lid] = sq_att_neg_inf();
    }
    // ---- 1. K (DF_KLOC) and V rows of keys lid + NT u copied to local memory (copies first),
    // then K rows loaded DF_KPI keys at a time and the scores of all rows computed ----
#if DF_KLOC
    UNROLL
    for (int u = 0; u < KPW; ++u) {
      KEY_AT(u);
      COPY_ROW(kls, ksl, k, k_off, k_sb, k_sr, k_sh, k_sc, ks_off, ks_sb, ks_sr, ks_sh);
    }
    CP_COMMIT();
#endif
    UNROLL
    for (int u = 0; u < KPW; ++u) {
      KEY_AT(u);
      COPY_ROW(vls, vsc, v, v_off, v_sb, v_sr, v_sh, v_sc, vs_off, vs_sb, vs_sr, vs_sh);
    }
    CP_COMMIT();
#if DF_KLOC
    CP_WAIT1();  // this work-item's K copies (the V group may still be in flight)
#endif
    for (int u0 = 0; u0 < KPW; u0 += KPI) {
      uint4 kr[KPI][VR];
      float ksc[KPI], s[KPI][ROWS];
      UNROLL
      for (int u = 0; u < KPI; ++u) {
        KEY_AT(u0 + u);
#if DF_KLOC
        (void)in;
        const int xr = min(x, SPAN - 1);
        ksc[u] = ksl[xr];
        UNROLL
        for (int i = 0; i < VR; ++i) kr[u][i] = kls[xr * FROW + i];
#else
        const long ka = ROW(k_off, k_sb, k_sr, k_sh, pg, sl);
        ksc[u] = (KV_ES == 1 && in) ? k_sc[ROW(ks_off, ks_sb, ks_sr, ks_sh, pg, sl)] : 1.0f;
        UNROLL
        for (int i = 0; i < VR; ++i) kr[u][i] = in ? VEC_AT(k, ka + i * DV_VEC) : (uint4)(0u);
#endif
        UNROLL
        for (int r = 0; r < ROWS; ++r) s[u][r] = 0.0f;
      }
      UNROLL
      for (int i = 0; i < VR; ++i) {
        UNROLL
        for (int p = 0; p < DV_PPV; ++p) {
          float4 k4[KPI];
          UNROLL
          for (int u = 0; u < KPI; ++u) k4[u] = dv_widen(kr[u][i], ksc[u], p, k_dt);
          UNROLL
          for (int r = 0; r < ROWS; ++r) {
            const float4 q4 = QLD4(qs + r * DH + i * DV_VEC + 4 * p);  // one read, KPI keys
            UNROLL
            for (int u = 0; u < KPI; ++u) {
              float a = s[u][r];
              a = fma(q4.x, k4[u].x, a);
              a = fma(q4.y, k4[u].y, a);
              a = fma(q4.z, k4[u].z, a);
              a = fma(q4.w, k4[u].w, a);
              s[u][r] = a;
            }
          }
        }
      }
      UNROLL
      for (int u = 0; u < KPI; ++u) {
        const int x = lid + NT * (u0 + u);
        if (x < SPAN) {
          UNROLL
          for (int r = 0; r < ROWS; ++r) ps[x * ROWS + r] = s[u][r];
        }
      }
    }
    CP_WAIT();
    barrier(CLK_LOCAL_MEM_FENCE);
    // ---- 2. tile maxima: work-item (row, tile, part) folds BN / PARTS visible scores with sq_mx
    // (any order and grouping: exact) ----
    for (int x0 = 0; x0 < ROWS * NTL * PARTS; x0 += NT) {
      const int x = min(x0 + lid, ROWS * NTL * PARTS - 1), r = x / (NTL * PARTS);
      const int t = x / PARTS % NTL, k0p = x % PARTS * (BN / PARTS);
      if (GATE(x0 + lid < ROWS * NTL * PARTS)) {
        const int lim = VEND(r) - (j0 + t * BN);
        float mt = sq_att_neg_inf();
        UNROLL8
        for (int jj = k0p; jj < k0p + BN / PARTS; ++jj)
          mt = jj < lim ? sq_mx(mt, ps[(t * BN + jj) * ROWS + r]) : mt;
        if (x0 + lid < ROWS * NTL * PARTS) tmx[x] = mt;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // ---- 3. probabilities: work-item lid owns row lid % ROWS of keys lid / ROWS + PKS q of
    // every tile; the tile's m_new is folded once per tile (tiles past nt: all keys invisible) ----
    {
      const int r = lid % ROWS;
      float m_old = mrun[r];
      for (int t = 0; t < NTL; ++t) {
        float m_new = m_old;
        UNROLL
        for (int pa = 0; pa < PARTS; ++pa) m_new = sq_mx(m_new, tmx[(r * NTL + t) * PARTS + pa]);
        const int vl = m_new == sq_att_neg_inf() ? 0 : clamp(vend_p - (j0 + t * BN), 0, BN);
        _Pragma("unroll 1") for (int qq = 0; qq < BN / PKS; ++qq) {  // (registers)
          const int e = (t * BN + lid / ROWS + PKS * qq) * ROWS + r;
          ps[e] = lid / ROWS + PKS * qq < vl ? sq_att_prob(ps[e], m_new) : 0.0f;
        }
        if (lid < ROWS) {  // the row's statistics of the tile
          st_m[r * NTL + t] = m_new;
          st_al[r * NTL + t] = sq_att_alpha(m_old, m_new);
          st_vl[r * NTL + t] = vl;
        }
        m_old = m_new;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // ---- 4. row sums of (row, tile) in key order (their work-items before their P.V), the
    // next span's running max, and P.V tile by tile (decode_bw.cl's order) ----
    for (int x0 = 0; x0 < ROWS * NTL; x0 += NT) {
      const int x = min(x0 + lid, ROWS * NTL - 1), r = x / NTL, t = x % NTL;
      if (GATE(x0 + lid < ROWS * NTL)) {
        float rs = 0.0f;
        UNROLL8
        for (int jj = 0; jj < BN; ++jj) rs = rs + ps[(t * BN + jj) * ROWS + r];
        if (x0 + lid < ROWS * NTL) st_rs[x] = rs;
      }
    }
    if (lid < ROWS) mrun[lid] = st_m[lid * NTL + nt - 1];
    for (int t = 0; t < nt; ++t) {
      int vl[RPT], vmin = BN, vmax = 0;
      UNROLL
      for (int kk = 0; kk < RPT; ++kk) {
        const int r = rg * RPT + kk;
        vl[kk] = st_vl[r * NTL + t];
        if (r < nrows) {  // padding rows (never stored) do not bound the key loops
          vmin = min(vmin, vl[kk]);
          vmax = max(vmax, vl[kk]);
        }
        const float al = st_al[r * NTL + t];
        UNROLL
        for (int cc = 0; cc < CW; ++cc) acc[kk][cc] = acc[kk][cc] * al;
      }
      vmin = min(vmin, vmax);
      __local const dv_raw* vcol = (__local const dv_raw*)(vls + t * BN * FROW) + cg * CW;
      __local const float* vst = vsc + t * BN;
      __local const float* pt = ps + t * BN * ROWS + rg * RPT;
      if (vmin == BN) {  // every key of the tile visible to every row (the common case)
        UNROLL8
        for (int jj = 0; jj < BN; ++jj) PV_STEP(false);
      } else {
        UNROLL8
        for (int jj = 0; jj < vmin; ++jj) PV_STEP(false);
        for (int jj = vmin; jj < vmax; ++jj) PV_STEP(true);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);  // the span's buffers are free; row sums published
    // ---- l = fma(l, alpha, r) per tile; at the end of a chunk, C = (acc / l, m + log2 l)
    // merged into R (the statistics arrays are next written after two more barriers) ----
    UNROLL
    for (int kk = 0; kk < RPT; ++kk) {
      const int r = rg * RPT + kk;
      for (int t = 0; t < nt; ++t) l_r[kk] = fma(l_r[kk], st_al[r * NTL + t], st_rs[r * NTL + t]);
    }
    if (n0 + nt == n_end || ((n0 + nt) & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0) {
      UNROLL
      for (int kk = 0; kk < RPT; ++kk) {
        const float l = l_r[kk], m = st_m[(rg * RPT + kk) * NTL + nt - 1];
        const SqAttMerge w = sq_att_merge_weights(lse_r[kk], sq_att_chunk_lse(m, l));
        UNROLL
        for (int cc = 0; cc < CW; ++cc)
          o_r[kk][cc] = sq_att_merge_out(w, o_r[kk][cc], sq_att_chunk_out(acc[kk][cc], l));
        lse_r[kk] = w.lse;
      }
    }
  }

  // ---- write R: the output row, or this chunk's workspace entry (split) ----
  UNROLL
  for (int kk = 0; kk < RPT; ++kk) {
    const int r = rg * RPT + kk;
    if (!active || r >= nrows) continue;
    const int rr = rr0 + r, h = hk * group + rr / lqd, ii = rr % lqd;
    UNROLL
    for (int cc = 0; cc < CW; ++cc) {
      const int col = cg * CW + cc;
      if (split) {
        const long ws_row = mode == 1 ? (q0 + ii) * hq + h : ((long)b * hq + h) * lq + ii;
        const long e = ws_row * ws_chunks + c_begin;
        ws_o[e * DH + col] = o_r[kk][cc];
        if (col == 0) ws_lse[e] = lse_r[kk];
      } else {
        sq_att_store1(out, o_off + b * o_sb + (q0 + ii) * o_sr + h * o_sh + col, o_dt, o_r[kk][cc]);
        if (want_lse && col == 0) lse[l_off + b * l_sb + (q0 + ii) * l_sr + h * l_sh] = lse_r[kk];
      }
    }
  }
}
