#pragma OPENCL FP_CONTRACT OFF
// decode.cl — exact fp32 attention, general path: any D <= 256; contiguous, varlen or paged K/V;
// up to ROWS query rows of one kv head per work-group (decode: the G query heads of a GQA group
// read each K/V tile once). The defined order is attention_common.h's; the same bits as dense.cl
// and fallback_cpu/attention/dense.cpp.
//
// Launch: local (128), global (128 * nRG, nC, B * Hkv). Rows of (b, hk) are numbered
// rr = hh * Lq_b + i (query head hk * G + hh, query row i); work-group x takes rr in
// [ROWS x, ROWS x + ROWS).
//  - split == 0 (nC = 1): the work-group walks every chunk and merges in place, then writes O/lse.
//  - split == 1: work-group y computes chunk y only (fresh state, its tiles) and writes the chunk
//    state (o_c, lse_c) to the workspace; merge.cl's attention_merge_chunks then merges the
//    chunks left to right with the same formula. Chunk states do not depend on who computes them,
//    so both give the same bits.
// Macros: SQ_ATT_HOOKS (1: masks and logit hooks of attention_common.h, extra arguments at the
// end; invisible (row, key) pairs then hold -1 in P and are skipped by the row sum and P.V, as in
// prefill_body.h; split mode leaves the sink to merge.cl). D, dtypes, mode, causal: run time.
// K/V may be int8 pages (SQ_DT_I8, paged mode): each element is sq_att_deq_i8(code, its row's
// scale) when staged; or NVFP4 pages (SQ_DT_FP4): sq_att_deq_fp4(E2M1 code, E4M3 code of its
// 16-group), exact. Either way the definition is the fp32 one over the dequantized values.
//
// Work split (no chain is split): scores: work-item (key lid % 64, rows lid / 64 + 2k, k < 4),
// each dot one sequential chain over d (K staged 128 d at a time); tile max, m, alpha, the row
// sum r and l of row lid % ROWS: every work-item, sequentially (identical copies); P.V:
// work-item (float4 column lid % 64, rows 4 (lid / 64) + k), each acc[d] chain over the visible
// keys ascending (V staged 64 keys at a time up to D = 128).
#include "attention/attention_common.h"
#include "attention/decode_merge.h"  // chunk merges, the write of R
#include "attention/decode_stage.h"  // K / V slice loads

#define ROWS 8
#define NT 128
#define BN SQ_ATT_TILE
#define DMAX 256
#define KD 128               // d per K slice: one slice (one load phase per tile) up to D = 128
#define KS (KD + 4)          // padded K slice row stride
#define KV_FLOATS (BN * KS)  // local region of the K slice, or of a V slice [jsv][d4]
#define PS (BN + 4)

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void attention_rows(
    gbytes q, long q_off, long q_sb, long q_sr, long q_sh, int q_dt,  //
    gbytes k, long k_off, long k_sb, long k_sr, long k_sh, int k_dt,  //
    gbytes v, long v_off, long v_sb, long v_sr, long v_sh, int v_dt,  //
    gbytes k_sc, long ks_off, long ks_sb, long ks_sr, long ks_sh,     // int8 / NVFP4 pages:
    gbytes v_sc, long vs_off, long vs_sb, long vs_sr, long vs_sh,     // their scales
    __global uchar* out, long o_off, long o_sb, long o_sr, long o_sh, int o_dt, __global float* lse,
    long l_off, long l_sb, long l_sr, long l_sh, int want_lse, __global float* ws_o,
    __global float* ws_lse, int split, int ws_chunks, __global const int* seq_a, long sa_off,
    long sa_st,                                          // varlen: cu_q; paged: seq_lens
    __global const int* seq_b, long sb_off, long sb_st,  // varlen: cu_k
    __global const int* pages, long pt_off, long pt_st, int page_size, int mode, int hq, int group,
    int d, int lq, int lk, int causal, float c
#if SQ_ATT_HOOKS
    ,
    __global const float* hk_head, __global const uchar* hk_mask, long hk_moff, long hk_msb,
    int hk_has_mask, int hk_wl, int hk_wr, float hk_cap2
#endif
) {
  __local float qs[ROWS * DMAX] SQ_ATT_LOCAL_ALIGN;  // q' rows, zero beyond d
  __local float kv[KV_FLOATS] SQ_ATT_LOCAL_ALIGN;    // K slice [64][KS], or V slice [jsv][d4]
  __local float sp[ROWS * PS] SQ_ATT_LOCAL_ALIGN;    // scores, then p
  __local float row_m[ROWS], row_alpha[ROWS], row_l[ROWS];  // published by work-items < ROWS
  __local int row_vlim[ROWS];

  const int lid = get_local_id(0);
  const int b = get_group_id(2) / (hq / group), hk = get_group_id(2) % (hq / group);
  long q0 = 0, k0 = 0;
  if (mode == 1) {
    q0 = seq_a[sa_off + b * sa_st];
    k0 = seq_b[sb_off + b * sb_st];
    lq = seq_a[sa_off + (b + 1) * sa_st] - (int)q0;
    lk = seq_b[sb_off + (b + 1) * sb_st] - (int)k0;
  } else if (mode == 2) {
    lk = seq_a[sa_off + b * sa_st];
  }
  const int rr0 = get_group_id(0) * ROWS;
  // No early return (see "PoCL" in attention_common.h): an idle work-group runs zero tiles and
  // writes nothing.
  const int nrows = clamp(group * lq - rr0, 0, ROWS);
  const int lqd = max(lq, 1);  // divisor for row numbering (lq may be 0 for a varlen sequence)
  const int nchunks = lk > 0 ? (lk + SQ_ATT_CHUNK - 1) / SQ_ATT_CHUNK : 0;
  const int d4 = (d + 3) & ~3;
  // The rows' visible ends grow with i; the group's last row may belong to an earlier head.
  int kend = 0;
  for (int r = 0; r < nrows; ++r)
    kend = max(kend, sq_att_visible_end((rr0 + r) % lqd, lq, lk, causal));
  const int c_begin = split ? (int)get_group_id(1) : 0;
  const bool active = nrows > 0 && (!split || c_begin < nchunks);
  const int c_end = !active ? c_begin
                    : split ? c_begin + 1
                            : (kend + SQ_ATT_CHUNK - 1) / SQ_ATT_CHUNK;

  // Stage q' = q * c (one rounding), zero for padding rows and d >= D.
  for (int x = lid; x < ROWS * (DMAX / 4); x += NT) {
    const int r = x / (DMAX / 4), dv = (x % (DMAX / 4)) * 4;
    float4 y = (float4)(0.0f);
    if (r < nrows && dv < d) {
      const int rr = rr0 + r, h = hk * group + rr / lqd, i = rr % lqd;
      const long at = q_off + b * q_sb + (q0 + i) * q_sr + h * q_sh + dv;
      y = (dv + 4 <= d ? sq_att_load4(q, at, q_dt) : sq_att_load4n(q, at, q_dt, d - dv)) * c;
    }
    ST4(qs + r * DMAX + dv, y);
  }

  // Score work split and P.V work split.
  const int s_key = lid & 63, s_rh = lid >> 6;
  const int pv_col = (lid & 63) * 4, pv_r0 = (lid >> 6) * 4;
  float4 acc[4], o_r[4];
  float lse_r[4];
  for (int kk = 0; kk < 4; ++kk) {
    o_r[kk] = (float4)(0.0f);
    lse_r[kk] = sq_att_neg_inf();
  }
  // Row state of row lid % ROWS (m, l, the tile's alpha), kept by every work-item.
  const int my_row = lid & (ROWS - 1);
  float m_mine = sq_att_neg_inf(), l_mine = 0.0f, alpha_mine = 1.0f;
  const int jsv_cap = min(BN, (KV_FLOATS / max(d4, 4)) & ~3);
#if SQ_ATT_HOOKS
  const long hk_mrow = hk_moff + b * hk_msb;
  int vbits = 0;  // bit kk: key s_key of the tile visible to row s_rh + 2 kk
#endif

  // One flat loop over the tiles; chunk starts and ends happen inside it.
  const int n_begin = c_begin * SQ_ATT_TILES_PER_CHUNK;
  const int n_end = min(c_end * SQ_ATT_TILES_PER_CHUNK, (kend + BN - 1) / BN);
  for (int n = n_begin; n < n_end; ++n) {
    if ((n & (SQ_ATT_TILES_PER_CHUNK - 1)) == 0) {  // a chunk starts from a fresh state
      for (int kk = 0; kk < 4; ++kk) acc[kk] = (float4)(0.0f);
      m_mine = sq_att_neg_inf();
      l_mine = 0.0f;
    }
    {
      const int j0 = n * BN;
      // ---- scores over K slices of KD d ----
      float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int d0 = 0; d0 < d4; d0 += KD) {
        barrier(CLK_LOCAL_MEM_FENCE);
        DECODE_STAGE_K_SLICE();
        barrier(CLK_LOCAL_MEM_FENCE);
        const int dn = min(KD, d4 - d0);
        for (int dd = 0; dd < dn; dd += 4) {
          const float4 kk4 = LD4(kv + s_key * KS + dd);
          for (int kk = 0; kk < 4; ++kk) {
            const float4 qv = LD4(qs + (s_rh + 2 * kk) * DMAX + d0 + dd);
            float a = s[kk];
            a = fma(qv.x, kk4.x, a);
            a = fma(qv.y, kk4.y, a);
            a = fma(qv.z, kk4.z, a);
            a = fma(qv.w, kk4.w, a);
            s[kk] = a;
          }
        }
      }
      for (int kk = 0; kk < 4; ++kk) {
        const int r = s_rh + 2 * kk;
        const int ve = sq_att_visible_end((rr0 + r) % lqd, lq, lk, causal);
#if SQ_ATT_HOOKS
        const int j = j0 + s_key, qpos = lk - lq + (rr0 + r) % lqd;
        const bool ok = j < ve && sq_att_hook_window(qpos, j, hk_wl, hk_wr) &&
                        (!hk_has_mask || hk_mask[hk_mrow + j] != 0);
        const float slope2 = r < nrows ? hk_head[hk * group + (rr0 + r) / lqd] : 0.0f;
        s[kk] = sq_att_hook_score(s[kk], hk_cap2, slope2, qpos, j);
        vbits = (vbits & ~(1 << kk)) | ((int)ok << kk);
        sp[r * PS + s_key] = ok ? s[kk] : sq_att_neg_inf();
#else
        sp[r * PS + s_key] = j0 + s_key < ve ? s[kk] : sq_att_neg_inf();
#endif
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      // ---- per row: tile max, m_new, alpha, visible prefix ----
      // Every work-item runs the row steps for row lid % ROWS (identical copies; the owners
      // lid < ROWS publish), so no loop sits inside "if (lid < ROWS)" (PoCL note).
      {
        float mt = sq_att_neg_inf();
        for (int jj = 0; jj < BN; ++jj) mt = sq_mx(mt, sp[my_row * PS + jj]);
        const float m_new = sq_mx(m_mine, mt);
        alpha_mine = sq_att_alpha(m_mine, m_new);
        m_mine = m_new;
        const int ve = sq_att_visible_end((rr0 + my_row) % lqd, lq, lk, causal) - j0;
        if (lid < ROWS) {
          row_alpha[lid] = alpha_mine;
          row_m[lid] = m_new;
          row_vlim[lid] = m_new == sq_att_neg_inf() ? 0 : clamp(ve, 0, BN);
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int kk = 0; kk < 4; ++kk) {
        const int r = s_rh + 2 * kk;
#if SQ_ATT_HOOKS
        const bool ok = s_key < row_vlim[r] && ((vbits >> kk) & 1);
        sp[r * PS + s_key] = ok ? sq_att_prob(s[kk], row_m[r]) : -1.0f;
#else
        sp[r * PS + s_key] = s_key < row_vlim[r] ? sq_att_prob(s[kk], row_m[r]) : 0.0f;
#endif
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      {  // the row sum: one chain over the tile's 64 p_j, ascending
        float r = 0.0f;
#if SQ_ATT_HOOKS
        for (int jj = 0; jj < BN; ++jj) {
          const float p = sp[my_row * PS + jj];
          r = p < 0.0f ? r : r + p;
        }
#else
        for (int jj = 0; jj < BN; ++jj) r = r + sp[my_row * PS + jj];
#endif
        l_mine = fma(l_mine, alpha_mine, r);
      }
      for (int kk = 0; kk < 4; ++kk) acc[kk] = acc[kk] * row_alpha[pv_r0 + kk];
      // ---- P.V over V slices ----
      for (int js = 0; js < BN; js += jsv_cap) {
        const int jn = min(jsv_cap, BN - js);
        barrier(CLK_LOCAL_MEM_FENCE);
        DECODE_STAGE_V_SLICE();
        barrier(CLK_LOCAL_MEM_FENCE);
        if (pv_col < d4) {
          for (int jj = 0; jj < jn; ++jj) {
            const float4 vv = LD4(kv + jj * d4 + pv_col);
            for (int kk = 0; kk < 4; ++kk) {
              const int r = pv_r0 + kk;
#if SQ_ATT_HOOKS
              const float p = sp[r * PS + js + jj];
              if (js + jj < row_vlim[r] && !(p < 0.0f)) acc[kk] = fma((float4)(p), vv, acc[kk]);
#else
              if (js + jj < row_vlim[r]) acc[kk] = fma((float4)(sp[r * PS + js + jj]), vv, acc[kk]);
#endif
            }
          }
        }
      }
    }
    // ---- end of a chunk: C = (acc / l, m + log2 l), merged into R ----
    DECODE_MERGE_CHUNK();
  }

  // ---- write R: the output (whole row), or this chunk's workspace entry (split) ----
  DECODE_WRITE_R();
}
