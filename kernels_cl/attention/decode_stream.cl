#pragma OPENCL FP_CONTRACT OFF
// decode_stream.cl — exact fp32 attention for decode-shaped calls (a few query rows of one kv
// head per work-group against a long context): the same definition, arguments, launch and bits
// as decode.cl (attention_common.h states the order), built for memory bandwidth:
//  - K and V move in 16-byte vectors (storage dtype fixed at compile time, so no run-time dtype
//    switch), and the next tile's V (and K, when a row fits 8 vectors) is loaded into registers
//    while the current tile is computed, so the load latency overlaps the math;
//  - K is not staged: work-item (key lid % 64, half lid / 64) reads its key's row straight into
//    registers and runs the dot chains of rows half + 2k (k < ROWS / 2), d ascending;
//  - V is dequantized once into local memory ([64][D] floats); P.V work-item (row, float4 column)
//    runs the row's acc chain over the tile's visible prefix, ascending, and folds the row sum r
//    over the tile's 64 p_j in the same loop (same order as decode.cl: invisible p_j are 0);
//  - the tile max of a row is folded from NT / ROWS partial maxima (max is exact in any order).
// Every work-item keeps (m, alpha, visible prefix) of all ROWS rows in registers (identical
// copies, as decode.cl's per-row steps), so no loop sits under a work-item condition (PoCL note).
//
// Macros: HEAD_DIM (64 or 128), KV_ES (bytes per stored K/V element: 4 f32, 2 f16/bf16 (the
// run-time dtype picks which), 1 int8 pages). No hooks (masked calls use decode.cl). Up to 8 query
// rows per work-group; the score and P.V work of rows past the group's is skipped. The host
// checks that every K/V row start (offset and strides, in elements) is a whole 16-byte vector.
// Launch: local (128), global (128 * nRG, nC, B * Hkv), split as decode.cl.
#include "attention/attention_common.h"
#include "attention/decode_vec.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#define ROWS 8
#define DH HEAD_DIM
#define NT 128
#define BN SQ_ATT_TILE
#define ES KV_ES
#define VEC (16 / ES)                       // elements per 16-byte vector
#define VR (DH / VEC)                       // vectors per K/V row
#define VPT (BN * VR / NT)                  // V vectors of a tile per work-item
#define SR (ROWS / 2)                       // score rows per work-item
#define PR ((ROWS * DH / 4 + NT - 1) / NT)  // P.V (row, float4 column) slots per work-item
#define TPR (NT / ROWS)                     // partial maxima per row
#define KPRE (VR <= 8)                      // prefetch the next K row into registers
#if (BN * VR) % NT != 0
#error "a V tile must split evenly over the work-items"
#endif

#define widen dv_widen
#define PPV DV_PPV

// Element offset of key j's row of kv head hk (and of its scale), paged or contiguous/varlen.
#define ROW_AT(off, sb, sr, sh, j)                                                \
  (mode == 2 ? (off) + (long)pages[pt_off + b * pt_st + (j) / page_size] * (sb) + \
                   (long)((j) % page_size) * (sr) + hk * (sh)                     \
             : (off) + b * (sb) + (k0 + (j)) * (sr) + hk * (sh))
#define VEC_AT(base, at) (((__global const uint4*)(base))[(at) / VEC])
// arr[idx] for a run-time idx < ROWS without private-memory indexing (a chain of selects).
#define PICK(out, arr, idx)                                              \
  {                                                                      \
    out = arr[0];                                                        \
    for (int pk = 1; pk < ROWS; ++pk) out = (idx) == pk ? arr[pk] : out; \
  }

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
  __local float vs[BN * DH] SQ_ATT_LOCAL_ALIGN;    // the tile's V, dequantized
  __local float ss[ROWS * BN] SQ_ATT_LOCAL_ALIGN;  // scores (-inf where not visible)
  __local float pp[ROWS * BN] SQ_ATT_LOCAL_ALIGN;  // probabilities (0 where not visible)
  __local float pm[ROWS * TPR];                    // partial tile maxima
  (void)d;

  DECODE_CALL_SETUP();  // lid, b, hk, q0, k0, lq, lk, rr0, nrows, lqd, nchunks
  int vend[ROWS];       // visible end of each row (0 for padding rows)
  int kend = 0;
  for (int r = 0; r < ROWS; ++r) {
    vend[r] = r < nrows ? sq_att_visible_end((rr0 + r) % lqd, lq, lk, causal) : 0;
    kend = max(kend, vend[r]);
  }
  DECODE_CHUNK_RANGE();  // c_begin, active, c_end of this work-group

  DECODE_STAGE_Q(qs);  // q' = q * c (one rounding), zero padding rows

  const int s_key = lid & (BN - 1), s_half = lid / BN;  // score rows s_half + 2 kk
  float m_all[ROWS];                                    // running m of every row (identical copies)
  float4 acc[PR], o_r[PR];
  float l_r[PR], lse_r[PR];
  for (int x = 0; x < PR; ++x) {
    acc[x] = (float4)(0.0f);
    o_r[x] = (float4)(0.0f);
    l_r[x] = 0.0f;
    lse_r[x] = sq_att_neg_inf();
  }

  const int n_begin = c_begin * SQ_ATT_TILES_PER_CHUNK;
  const int n_end = min(c_end * SQ_ATT_TILES_PER_CHUNK, (kend + BN - 1) / BN);
  // Prefetch registers: this work-item's V vectors of the next tile (and its K row).
  uint4 vpre[VPT];
  float vscl[VPT];
#if KPRE
  uint4 kpre[VR];
  float kscl = 1.0f;
#endif
#define FETCH_V(n)                                                              \
  for (int i = 0; i < VPT; ++i) {                                               \
    const int x = lid + NT * i, j = (n)*BN + x / VR;                            \
    vpre[i] = (uint4)(0u);                                                      \
    vscl[i] = 1.0f;                                                             \
    if (j < lk) {                                                               \
      vpre[i] = VEC_AT(v, ROW_AT(v_off, v_sb, v_sr, v_sh, j) + (x % VR) * VEC); \
      if (ES == 1) vscl[i] = v_sc[ROW_AT(vs_off, vs_sb, vs_sr, vs_sh, j)];      \
    }                                                                           \
  }
#define FETCH_K(n)                                                                         \
  {                                                                                        \
    const int j = (n)*BN + s_key;                                                          \
    const long at = j < lk ? ROW_AT(k_off, k_sb, k_sr, k_sh, j) : 0;                       \
    for (int i = 0; i < VR; ++i) kpre[i] = j < lk ? VEC_AT(k, at + i * VEC) : (uint4)(0u); \
    kscl = (ES == 1 && j < lk) ? k_sc[ROW_AT(ks_off, ks_sb, ks_sr, ks_sh, j)] : 1.0f;      \
  }
  if (n_begin < n_end) {
    FETCH_V(n_begin);
#if KPRE
    FETCH_K(n_begin);
#endif
  }

  for (int n = n_begin; n < n_end; ++n) {
    const int j0 = n * BN;
    if ((n & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0) {  // a chunk starts from a fresh state
      for (int x = 0; x < PR; ++x) {
        acc[x] = (float4)(0.0f);
        l_r[x] = 0.0f;
      }
      for (int r = 0; r < ROWS; ++r) m_all[r] = sq_att_neg_inf();
    }
    barrier(CLK_LOCAL_MEM_FENCE);  // the previous tile's P.V is done with vs and pp
    for (int i = 0; i < VPT; ++i) {
      const int x = lid + NT * i;
      for (int p = 0; p < PPV; ++p)
        ST4(vs + (x / VR) * DH + (x % VR) * VEC + 4 * p, widen(vpre[i], vscl[i], p, v_dt));
    }
    // ---- scores of key s_key for rows s_half + 2 kk: one chain over d each ----
    float s[SR];
    for (int kk = 0; kk < SR; ++kk) s[kk] = 0.0f;
    {
#if KPRE
      uint4 kr[VR];
      for (int i = 0; i < VR; ++i) kr[i] = kpre[i];
      const float ksc = kscl;
      if (n + 1 < n_end) FETCH_K(n + 1);
#else
      const int j = j0 + s_key;
      const long at = j < lk ? ROW_AT(k_off, k_sb, k_sr, k_sh, j) : 0;
      const float ksc = (ES == 1 && j < lk) ? k_sc[ROW_AT(ks_off, ks_sb, ks_sr, ks_sh, j)] : 1.0f;
#endif
      if (n + 1 < n_end) FETCH_V(n + 1);
      for (int i = 0; i < VR; ++i) {
#if KPRE
        const uint4 raw = kr[i];
#else
        const uint4 raw = j < lk ? VEC_AT(k, at + i * VEC) : (uint4)(0u);
#endif
        for (int p = 0; p < PPV; ++p) {
          const float4 k4 = widen(raw, ksc, p, k_dt);
          for (int kk = 0; kk < SR; ++kk) {
            if (s_half + 2 * kk >= nrows) continue;  // a padding row (uniform per warp)
            const float4 q4 = LD4(qs + (s_half + 2 * kk) * DH + i * VEC + 4 * p);
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
    for (int kk = 0; kk < SR; ++kk) {
      const int r = s_half + 2 * kk;
      int ve;
      PICK(ve, vend, r);
      ss[r * BN + s_key] = j0 + s_key < ve ? s[kk] : sq_att_neg_inf();
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    {  // partial maxima: work-item (row lid / TPR, keys (lid % TPR) * (BN / TPR) ..)
      const int r = lid / TPR, k0p = (lid % TPR) * (BN / TPR);
      float mx = sq_att_neg_inf();
      for (int jj = 0; jj < BN / TPR; ++jj) mx = sq_mx(mx, ss[r * BN + k0p + jj]);
      pm[lid] = mx;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float alpha[ROWS];
    int vlim[ROWS];
    for (int r = 0; r < ROWS; ++r) {
      float mt = sq_att_neg_inf();
      for (int t = 0; t < TPR; ++t) mt = sq_mx(mt, pm[r * TPR + t]);
      const float m_new = sq_mx(m_all[r], mt);
      alpha[r] = sq_att_alpha(m_all[r], m_new);
      vlim[r] = m_new == sq_att_neg_inf() ? 0 : clamp(vend[r] - j0, 0, BN);
      m_all[r] = m_new;
    }
    for (int kk = 0; kk < SR; ++kk) {
      const int r = s_half + 2 * kk;
      int vl;
      float mr;
      PICK(vl, vlim, r);
      PICK(mr, m_all, r);
      pp[r * BN + s_key] = s_key < vl ? sq_att_prob(s[kk], mr) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // ---- P.V and the row sum: slot x = (row x / (DH / 4), float4 column x % (DH / 4)) ----
    for (int i = 0; i < PR; ++i) {
      const int x = lid + NT * i, r = min(x / (DH / 4), ROWS - 1), col = (x % (DH / 4)) * 4;
      float al;
      int vl;
      PICK(al, alpha, r);
      PICK(vl, vlim, r);
      float4 a = acc[i] * al;
      float rs = 0.0f;
      for (int jj = 0; jj < (x / (DH / 4) < nrows ? BN : 0); ++jj) {  // padding rows: none
        const float p = pp[r * BN + jj];
        rs = rs + p;
        if (jj < vl) a = fma((float4)(p), LD4(vs + jj * DH + col), a);
      }
      acc[i] = a;
      l_r[i] = fma(l_r[i], al, rs);
    }
    // ---- end of a chunk: C = (acc / l, m + log2 l), merged into R ----
    const bool chunk_end =
        n == n_end - 1 || (n & (SQ_ATT_TILES_PER_CHUNK - 1)) == SQ_ATT_TILES_PER_CHUNK - 1;
    if (chunk_end)
      for (int i = 0; i < PR; ++i) {
        const int r = min((lid + NT * i) / (DH / 4), ROWS - 1);
        const float l = l_r[i];
        float mr;
        PICK(mr, m_all, r);
        const SqAttMerge w = sq_att_merge_weights(lse_r[i], sq_att_chunk_lse(mr, l));
        o_r[i].x = sq_att_merge_out(w, o_r[i].x, sq_att_chunk_out(acc[i].x, l));
        o_r[i].y = sq_att_merge_out(w, o_r[i].y, sq_att_chunk_out(acc[i].y, l));
        o_r[i].z = sq_att_merge_out(w, o_r[i].z, sq_att_chunk_out(acc[i].z, l));
        o_r[i].w = sq_att_merge_out(w, o_r[i].w, sq_att_chunk_out(acc[i].w, l));
        lse_r[i] = w.lse;
      }
  }

  // ---- write R: the output row, or this chunk's workspace entry (split) ----
  for (int i = 0; i < PR; ++i) {
    const int x = lid + NT * i, r = x / (DH / 4), col = (x % (DH / 4)) * 4;
    if (!active || r >= nrows) continue;
    const int rr = rr0 + r, h = hk * group + rr / lqd, ii = rr % lqd;
    if (split) {
      const long ws_row = mode == 1 ? (q0 + ii) * hq + h : ((long)b * hq + h) * lq + ii;
      const long e = ws_row * ws_chunks + c_begin;
      vstore4(o_r[i], 0, ws_o + e * DH + col);
      if (col == 0) ws_lse[e] = lse_r[i];
    } else {
      sq_att_store4(out, o_off + b * o_sb + (q0 + ii) * o_sr + h * o_sh + col, o_dt, o_r[i]);
      if (want_lse && col == 0) lse[l_off + b * l_sb + (q0 + ii) * l_sr + h * l_sh] = lse_r[i];
    }
  }
}
