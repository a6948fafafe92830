#pragma OPENCL FP_CONTRACT OFF
// fp4_attention.cl — FP4 (NVFP4, SageAttention3-style) attention forward on packed inputs
// (specs/fp4_attention.md §3-§4), dense or over a SparseIndex. Mirror:
// fallback_cpu/nvfp4/fp4_attention.cpp.
//
// Macros: HEAD_DIM (64 or 128); FP4_MMA (0: portable integer loops; 1: NVIDIA inline PTX
// mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32, one MMA per 16-group; 2: the MMA path with
// the MMA emulated in local memory, so PoCL checks its fragment indexing; all give the same bits;
// nvfp4/fp4_mma.h); FP4_SPARSE (0: kernel fp4_attention, every key; 1: kernel
// fp4_attention_sparse, the steps of a SparseIndex row). Work-group: 256 work-items, 64 query
// rows of one (b, h) (sparse: query block qb = row0 / 64); work-item (r, q) = (lid / 4, lid % 4).
//
// Defined arithmetic order, per query row i (kv head h / (Hq/Hkv), delta row i / delta_rows,
// delta_rows = 128 for per-block Q smoothing, Lq for per-head). Steps of 64 key slots:
//   dense: visible keys j < limit(i) = Lk, or min(Lk, i + Lk - Lq + 1) when causal; the tiles
//     n = 0, 1, ... while 64n < limit(i) (keys 64n + 0..63);
//   sparse (specs/sparse_attention.md §2, §11; index row (b, h or h / G, i / 64)): the row's tiles
//     in list order (keys start + 0..63, start % 16 == 0), then its columns in chunks of 64 list
//     entries; visible(j) = j < Lk && (!causal || kpos(j) <= qpos(i)) && (no token mask ||
//     kpos(j) < sink || kpos(j) > qpos(i) - window), qpos(i) = Lk - Lq + i, kpos(j) = j unless
//     the index carries qpos/kpos.
// Chunks (ARCHITECTURE §2, attention_common.h; the same state as fp4_decode.cl): the row state
//   (m, mu, l, O) starts empty (m = mu = -inf, l = 0, O = +0) in each chunk. Dense: chunk c holds
//   the tiles of keys [4096c, 4096c + 4096). Sparse: a tile whose start / 4096 differs from the
//   previous tile's begins a new chunk; the columns continue the last one (so the dense index
//   walks dense's chunks). A chunk's result: o_c = (l == 0) ? 0 : O_d / l, lse_c = (l == 0) ?
//   -inf : mu + sq_log2(l) (l carries the level-1 factor 2688 in every chunk alike); chunks are
//   merged left to right into R (starts empty) by sq_att_merge_* (merge_states' formula).
// Per step:
//   S_j = delta_j (0 without delta), then S_j = S_j + T_g for g = 0..D/16-1, where
//     T_g = (sa == 0 || sb == 0) ? +0 : (((float)I_g * sa) * sb) * 0.25f and I_g the exact int
//     dot of the twice values of Q row i and K row j in group g (any order: it is exact);
//   invisible slots S = -inf; m_new = mx(m, max of the step's S) (NaN-propagating, order-free up
//     to the sign of zero, which no result depends on); skip the step when m_new == -inf (dense:
//     also when 64n >= limit(i); a step a row cannot see changes no bit either way: alpha = 1,
//     Ot = Lt = +0, and O, l are never -0);
//   mu_new = m_new * c; Pt_j = sq_exp2_q(S_j * c - mu_new) * 2688 (invisible: 0);
//   quant16 of each group h of 16 slots -> P codes, scale sP_h; L_h = ((float)sum tw * sP_h) * 0.5;
//   tile: U_{h,d} = T of (P group h, V group (start / 16 + h), channel d) (tokens >= Lk64: 0);
//   column chunk: U_{h,d} = +0, then U = U + T1 for each slot t of group h with a nonzero P code,
//     T1 = (((float)(tw(p_t) * tw(v_{j_t,d})) * sP_h) * sV(j_t, d)) * 0.25f (exact), sV the scale
//     of the V group holding key j_t (§4.6; zero-weight slots add nothing, not even a NaN scale);
//   Ot_d = ((U_0 + U_1) + U_2) + U_3; Lt = ((L_0 + L_1) + L_2) + L_3;
//   alpha = sq_exp2(mu_old - mu_new) (mu_old = -inf before the first processed step);
//   O_d = fma(O_d, alpha, Ot_d); l = fma(l, alpha, Lt).
// out_d = R's o_d (0 for a row that sees no key; one chunk: O_d / l). With the dense index, the
// sparse kernel runs the dense steps and chunks.
// The row-to-work-item mapping and the MMA/portable choice change no result: every rounding
// above happens on one value in the stated order, and the integer dots are exact.
#include "attention/attention_common.h"
#include "nvfp4/fp4_math.h"

#define ROWS 64
#define WG 256
#define D HEAD_DIM
#define G (HEAD_DIM / 16)
#define QD (HEAD_DIM / 4)  // channels per work-item in the portable P·V
#ifndef FP4_SPARSE
#define FP4_SPARSE 0
#endif
#if FP4_SPARSE
#define FP4_KERNEL_NAME fp4_attention_sparse
#else
#define FP4_KERNEL_NAME fp4_attention
#endif

#include "nvfp4/fp4_mma.h"

static inline int fp4_dot16(__local const char* a, __local const char* b) {
  int s = 0;
  for (int e = 0; e < 16; ++e) s += (int)a[e] * (int)b[e];
  return s;
}

#if FP4_SPARSE
// Visibility of a slot's key j (-1: none) at position kp to query position qp (sparse §1).
static inline int fp4_visible(int j, int kp, int qp, int causal, int sink, int window) {
  return j >= 0 && (!causal || kp <= qp) && (window <= 0 || kp < sink || kp > qp - window);
}
#endif

// Ot of a column chunk (§4.6): per group hg, u = +0, then u = u + term for each slot with a
// nonzero P code (term: the exact per-column product with that key's V scale, code in vsc);
// Ot = ((U0 + U1) + U2) + U3.
static inline float fp4_col_out(__local const char* p, __local const float* sp,
                                __local const char* v, __local const char* vsc) {
  float ot = 0.0f;
  for (int hg = 0; hg < 4; ++hg) {
    float u = 0.0f;
    for (int e = 0; e < 16; ++e) {
      const int t = 16 * hg + e;
      if (p[t] != 0)
        u = u + sq_fp4_group_term((int)p[t] * (int)v[t], sp[hg], sq_e4m3_decode((uchar)vsc[t]));
    }
    ot = hg == 0 ? u : ot + u;
  }
  return ot;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void FP4_KERNEL_NAME(
    __global const uchar* qc, __global const uchar* qs, __global const uchar* kc,
    __global const uchar* ks, __global const uchar* vc, __global const uchar* vs,
    __global const float* delta, int has_delta, int delta_rows, int delta_blk0, int delta_nblk,
    __global float* out, int hq, int hkv, int lq, int lk, int lk64, int row_begin, int row_end,
    int causal, float c
#if FP4_SPARSE
    ,
    __global const int* tcount, __global const int* tstart, __global const int* ccount,
    __global const int* cidx, __global const int* qpos, __global const int* kpos, int has_pos,
    int hi_n, int share, int max_tiles, int max_cols, int sink, int window
#endif
) {
  __local char ktw[64 * D];       // K tile twice values [key][d]
  __local float ksc[64 * G];      // K tile scales [key][g]
  __local char vtw[D * 64];       // V tile twice values [d][key]
  __local float vsc[D * 4];       // V tile scales [d][group]
  __local float pmax[ROWS * 4];   // partial tile maxima [r][q]
  __local char ptw[ROWS * 64];    // P twice values [r][key]
  __local float psc[ROWS * 4];    // P scales [r][group]
  __local float plsum[ROWS * 4];  // L_h [r][group]
  __local float qsc[ROWS * G];    // Q scales [r][g]
#if FP4_MMA
  __local float sco[ROWS * 64];  // scores [r][key]
  __local float alpha_l[ROWS];
  __local float mu_l[ROWS];  // mu of each row after the step (chunk lse of the MMA lanes)
  __local int act_l[ROWS];
#if FP4_MMA == 2
  __local uint xa[WG * XA_SLOTS * 2];
  __local uint xb[WG * XB_SLOTS];
#endif
#else
  __local char qtw[ROWS * D];  // Q twice values [r][d]
#endif
#if FP4_SPARSE
  __local int kidx[64];  // key of each slot of the step (-1: none)
  __local int kps[64];   // its position
#endif

  const int lid = (int)get_local_id(0);
  const int r = lid >> 2, q = lid & 3;
  const int row0 = row_begin + (int)get_group_id(0) * ROWS;
  const int h = (int)get_group_id(1), b = (int)get_group_id(2);
  const int kvh = b * hkv + h / (hq / hkv);
  const long bh = (long)b * hq + h;
  const int i = row0 + r;
#if FP4_SPARSE
  // The index row (b, hi, qb) of these 64 rows: its tiles, then its columns in chunks of 64.
  const long irow = ((long)b * hi_n + (share ? h / (hq / hkv) : h)) * ((lq + 63) / 64) + row0 / 64;
  int nt = tcount[irow];
  nt = nt < 0 ? 0 : (nt > max_tiles ? max_tiles : nt);
  int ncol = ccount[irow];
  ncol = ncol < 0 ? 0 : (ncol > max_cols ? max_cols : ncol);
  __global const int* ts = tstart + irow * max_tiles;
  __global const int* cs = cidx + irow * max_cols;
  const int nsteps = nt + (ncol + 63) / 64;
  const int qp = i < row_end ? (has_pos ? qpos[(long)b * lq + i] : lk - lq + i) : 0;
#define FP4_VIS(t) (i < row_end && fp4_visible(kidx[t], kps[t], qp, causal, sink, window))
#define FP4_KEY(t) kidx[t]
#else
  const int lim_raw = causal ? i + (lk - lq) + 1 : lk;
  const int limit = i < row_end ? (lim_raw < lk ? (lim_raw > 0 ? lim_raw : 0) : lk) : 0;
  // Keys the whole work-group needs: the largest limit of its rows.
  const int last_row = (row0 + ROWS < row_end ? row0 + ROWS : row_end) - 1;
  const int wg_raw = causal ? last_row + (lk - lq) + 1 : lk;
  const int wg_limit = wg_raw < lk ? (wg_raw > 0 ? wg_raw : 0) : lk;
  const int nsteps = (wg_limit + SQ_FP4_TILE - 1) / SQ_FP4_TILE;
#define FP4_VIS(t) (j0 + (t) < limit)
#define FP4_KEY(t) (j0 + (t))
#endif
  __global const float* drow =
      has_delta ? delta + (bh * delta_nblk + (i < row_end ? i : row0) / delta_rows - delta_blk0) *
                              (long)lk
                : delta;

  // Q rows of the block: twice values and scales (rows >= Lq: zeros).
#if !FP4_MMA
  for (int idx = lid; idx < ROWS * (D / 2); idx += WG) {
    const int rr = idx / (D / 2), k2 = idx % (D / 2);
    const uint byte = row0 + rr < row_end ? qc[((bh * lq) + row0 + rr) * (D / 2) + k2] : 0u;
    qtw[rr * D + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
    qtw[rr * D + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
  }
#endif
  for (int idx = lid; idx < ROWS * G; idx += WG) {
    const int rr = idx / G;
    qsc[idx] = row0 + rr < row_end ? sq_e4m3_decode(qs[(bh * lq + row0 + rr) * G + idx % G]) : 0.0f;
  }

#if FP4_MMA
  const int lane = lid & 31, warp = lid >> 5;
  const int fg = lane >> 2, ft = lane & 3;
  const int slab = warp >> 1;  // rows 16*slab .. 16*slab+15
  const int whalf = warp & 1;  // scores: keys 32*whalf..; P·V: channels (D/2)*whalf..
  // Q fragments for all groups: rows 16*slab + fg (+8), elements 16g + 4ft .. +3.
  uint qa0[G], qa1[G];
  for (int g = 0; g < G; ++g) {
    uint w0 = 0u, w1 = 0u;
    const int ra = row0 + 16 * slab + fg, rb = ra + 8;
    for (int e = 0; e < 4; e += 2) {
      const int k2 = (16 * g + 4 * ft + e) / 2;
      const uint ba = ra < row_end ? qc[((bh * lq) + ra) * (D / 2) + k2] : 0u;
      const uint bb = rb < row_end ? qc[((bh * lq) + rb) * (D / 2) + k2] : 0u;
      w0 |= ((uint)(sq_e2m1_twice(sq_fp4_lo(ba)) & 255) |
             ((uint)(sq_e2m1_twice(sq_fp4_hi(ba)) & 255) << 8))
            << (8 * e);
      w1 |= ((uint)(sq_e2m1_twice(sq_fp4_lo(bb)) & 255) |
             ((uint)(sq_e2m1_twice(sq_fp4_hi(bb)) & 255) << 8))
            << (8 * e);
    }
    qa0[g] = w0;
    qa1[g] = w1;
  }
  float O[D / 16][4];  // channels (D/2)*whalf + 8nt + 2ft (+1), rows fg and fg+8 of the slab
  for (int nt = 0; nt < D / 16; ++nt) O[nt][0] = O[nt][1] = O[nt][2] = O[nt][3] = 0.0f;
  float lrow[2] = {0.0f, 0.0f};
  float R[D / 16][4];  // merged chunk states, same layout
  for (int nt = 0; nt < D / 16; ++nt) R[nt][0] = R[nt][1] = R[nt][2] = R[nt][3] = 0.0f;
  float lse_r[2] = {-INFINITY, -INFINITY};
#else
  float O[QD], R[QD];
  for (int dd = 0; dd < QD; ++dd) O[dd] = R[dd] = 0.0f;
  float l = 0.0f, lse_r = -INFINITY;
#endif
  float m = -INFINITY, mu_old = -INFINITY;

  for (int n = 0; n < nsteps; ++n) {
#if FP4_SPARSE
    const int is_tile = n < nt, c0 = (n - nt) * 64;
    const int j0 = is_tile ? ts[n] : 0;
    // The step closes its chunk when it is the last, or the next tile starts another chunk.
    const int close =
        n + 1 == nsteps || (n + 1 < nt && ts[n + 1] / SQ_ATT_CHUNK != j0 / SQ_ATT_CHUNK);
#define FP4_SLOT_KEY(t) \
  (is_tile ? (j0 + (t) < lk ? j0 + (t) : -1) : (c0 + (t) < ncol ? cs[c0 + (t)] : -1))
#else
    const int is_tile = 1, j0 = n * SQ_FP4_TILE;
    const int close = n + 1 == nsteps || (j0 + SQ_FP4_TILE) % SQ_ATT_CHUNK == 0;
#define FP4_SLOT_KEY(t) (j0 + (t))
#endif
    const int tile_groups = is_tile ? 4 : 0;  // V groups of the step's tile P·V (columns: none)
    barrier(CLK_LOCAL_MEM_FENCE);
#if FP4_SPARSE
    if (lid < 64) {
      const int j = FP4_SLOT_KEY(lid);
      kidx[lid] = j;
      kps[lid] = j < 0 ? 0 : (has_pos ? kpos[(long)b * lk + j] : j);
    }
#endif
    // K rows of the slots (no key, or keys >= Lk: zero codes and scales); V: a tile's tokens
    // (padded to Lk64 by the format; tokens past Lk64: zero), or the columns' tokens.
    for (int idx = lid; idx < 64 * (D / 2); idx += WG) {
      const int key = idx / (D / 2), k2 = idx % (D / 2);
      const int j = FP4_SLOT_KEY(key);
      const uint byte = j >= 0 && j < lk ? kc[((long)kvh * lk + j) * (D / 2) + k2] : 0u;
      ktw[key * D + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
      ktw[key * D + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
    }
    for (int idx = lid; idx < 64 * G; idx += WG) {
      const int j = FP4_SLOT_KEY(idx / G);
      ksc[idx] = j >= 0 && j < lk ? sq_e4m3_decode(ks[((long)kvh * lk + j) * G + idx % G]) : 0.0f;
    }
    if (is_tile) {
      for (int idx = lid; idx < D * 32; idx += WG) {
        const int d = idx >> 5, k2 = idx & 31;
        const uint byte =
            j0 + 2 * k2 < lk64 ? vc[((long)kvh * D + d) * (lk64 / 2) + j0 / 2 + k2] : 0u;
        vtw[d * 64 + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
        vtw[d * 64 + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
      }
      for (int idx = lid; idx < D * 4; idx += WG) {
        const int d = idx >> 2, vg = j0 / 16 + (idx & 3);
        vsc[idx] =
            vg < lk64 / 16 ? sq_e4m3_decode(vs[((long)kvh * D + d) * (lk64 / 16) + vg]) : 0.0f;
      }
    } else {
      for (int idx = lid; idx < D * 64; idx += WG) {
        const int d = idx >> 6, j = FP4_SLOT_KEY(idx & 63);
        const uint byte = j >= 0 ? vc[((long)kvh * D + d) * (lk64 / 2) + j / 2] : 0u;
        vtw[idx] = (char)sq_e2m1_twice(j & 1 ? sq_fp4_hi(byte) : sq_fp4_lo(byte));
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // Scores of row r, keys 16q .. 16q+15 of the tile.
    float S[16];
#if FP4_MMA
#if FP4_MMA == 2
    for (int g = 0; g < G; ++g) {
      xa[(lid * XA_SLOTS + g) * 2] = qa0[g];
      xa[(lid * XA_SLOTS + g) * 2 + 1] = qa1[g];
      for (int nt = 0; nt < 4; ++nt)
        xb[lid * XB_SLOTS + nt * G + g] =
            fp4_pack4(ktw + (32 * whalf + 8 * nt + fg) * D + 16 * g + 4 * ft);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
    {
      // Warp: rows 16*slab.., keys 32*whalf + 8nt + (2ft, 2ft+1) for nt = 0..3.
      for (int nt = 0; nt < 4; ++nt) {
        const int kb = 32 * whalf + 8 * nt;
        const int ra = 16 * slab + fg, rb = ra + 8;
        const int ia = row0 + ra < row_end ? row0 + ra : row0;
        const int ib = row0 + rb < row_end ? row0 + rb : row0;
        __global const float* da =
            has_delta ? delta + (bh * delta_nblk + ia / delta_rows - delta_blk0) * (long)lk : delta;
        __global const float* db =
            has_delta ? delta + (bh * delta_nblk + ib / delta_rows - delta_blk0) * (long)lk : delta;
        const int c0 = kb + 2 * ft, c1 = c0 + 1;
        const int jc0 = FP4_KEY(c0), jc1 = FP4_KEY(c1);
        float s00 = 0.0f, s01 = 0.0f, s10 = 0.0f, s11 = 0.0f;
        if (has_delta) {
          if (jc0 >= 0 && jc0 < lk) s00 = da[jc0], s10 = db[jc0];
          if (jc1 >= 0 && jc1 < lk) s01 = da[jc1], s11 = db[jc1];
        }
        for (int g = 0; g < G; ++g) {
          const uint kb0 = fp4_pack4(ktw + (kb + fg) * D + 16 * g + 4 * ft);
          int4 I;
          MMA16(I, qa0[g], qa1[g], kb0, g, nt * G + g)
          s00 = s00 + sq_fp4_group_term(I.x, qsc[ra * G + g], ksc[c0 * G + g]);
          s01 = s01 + sq_fp4_group_term(I.y, qsc[ra * G + g], ksc[c1 * G + g]);
          s10 = s10 + sq_fp4_group_term(I.z, qsc[rb * G + g], ksc[c0 * G + g]);
          s11 = s11 + sq_fp4_group_term(I.w, qsc[rb * G + g], ksc[c1 * G + g]);
        }
        sco[ra * 64 + c0] = s00;
        sco[ra * 64 + c1] = s01;
        sco[rb * 64 + c0] = s10;
        sco[rb * 64 + c1] = s11;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = 0; e < 16; ++e) S[e] = FP4_VIS(16 * q + e) ? sco[r * 64 + 16 * q + e] : -INFINITY;
#else
    for (int e = 0; e < 16; ++e) {
      const int t = 16 * q + e, j = FP4_KEY(t);
      float s = -INFINITY;
      if (FP4_VIS(t)) {
        s = has_delta ? drow[j] : 0.0f;
        for (int g = 0; g < G; ++g)
          s = s + sq_fp4_group_term(fp4_dot16(qtw + r * D + 16 * g, ktw + t * D + 16 * g),
                                    qsc[r * G + g], ksc[t * G + g]);
      }
      S[e] = s;
    }
#endif
    float pm = -INFINITY;
    for (int e = 0; e < 16; ++e) pm = sq_mx(pm, S[e]);
    pmax[r * 4 + q] = pm;
    barrier(CLK_LOCAL_MEM_FENCE);

    // Softmax step and two-level quantization of P group q of row r.
    const float tmax =
        sq_mx(sq_mx(sq_mx(pmax[r * 4], pmax[r * 4 + 1]), pmax[r * 4 + 2]), pmax[r * 4 + 3]);
    const float m_new = sq_mx(m, tmax);
#if FP4_SPARSE
    const int act = m_new != -INFINITY;
    // A column chunk's V scale codes [d][slot] go where the K tile was (no longer read).
    if (!is_tile)
      for (int idx = lid; idx < D * 64; idx += WG) {
        const int d = idx >> 6, j = kidx[idx & 63];
        ktw[idx] = j >= 0 ? (char)vs[((long)kvh * D + d) * (lk64 / 16) + j / 16] : (char)0;
      }
#else
    const int act = j0 < limit && m_new != -INFINITY;
#endif
    float alpha = 0.0f;
    if (act) {
      const float mu_new = m_new * c;
      float pt[16];
      for (int e = 0; e < 16; ++e)
        pt[e] = FP4_VIS(16 * q + e) ? sq_fp4_p_level1(S[e], c, mu_new) : 0.0f;
      uchar bytes[8];
      const uint sc = sq_fp4_quant16(pt, bytes);
      int sum = 0;
      for (int k = 0; k < 8; ++k) {
        const int lo = sq_e2m1_twice(sq_fp4_lo(bytes[k])), hi = sq_e2m1_twice(sq_fp4_hi(bytes[k]));
        ptw[r * 64 + 16 * q + 2 * k] = (char)lo;
        ptw[r * 64 + 16 * q + 2 * k + 1] = (char)hi;
        sum += lo + hi;
      }
      const float sp = sq_e4m3_decode(sc);
      psc[r * 4 + q] = sp;
      plsum[r * 4 + q] = sq_fp4_p_group_sum(sum, sp);
      alpha = sq_exp2(mu_old - mu_new);
      m = m_new;
      mu_old = mu_new;
    } else {
      for (int e = 0; e < 16; ++e) ptw[r * 64 + 16 * q + e] = 0;
      psc[r * 4 + q] = 0.0f;
      plsum[r * 4 + q] = 0.0f;
    }
#if FP4_MMA
    if (q == 0) {
      alpha_l[r] = alpha;
      mu_l[r] = mu_old;
      act_l[r] = act;
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // P·V and the online update.
#if FP4_MMA
    {
      const int ra = 16 * slab + fg, rb = ra + 8;
      const int acta = act_l[ra], actb = act_l[rb];
      const float ala = alpha_l[ra], alb = alpha_l[rb];
      uint pa0[4], pa1[4];
      for (int hg = 0; hg < 4; ++hg) {
        pa0[hg] = fp4_pack4(ptw + ra * 64 + 16 * hg + 4 * ft);
        pa1[hg] = fp4_pack4(ptw + rb * 64 + 16 * hg + 4 * ft);
      }
#if FP4_MMA == 2
      for (int hg = 0; hg < 4; ++hg) {
        xa[(lid * XA_SLOTS + hg) * 2] = pa0[hg];
        xa[(lid * XA_SLOTS + hg) * 2 + 1] = pa1[hg];
        for (int nt = 0; nt < D / 16; ++nt)
          xb[lid * XB_SLOTS + nt * 4 + hg] =
              fp4_pack4(vtw + ((D / 2) * whalf + 8 * nt + fg) * 64 + 16 * hg + 4 * ft);
      }
      barrier(CLK_LOCAL_MEM_FENCE);
#endif
      for (int nt = 0; nt < D / 16; ++nt) {
        const int cb = (D / 2) * whalf + 8 * nt;
        const int d0 = cb + 2 * ft, d1 = d0 + 1;
        float u00 = 0.0f, u01 = 0.0f, u10 = 0.0f, u11 = 0.0f;
        if (!is_tile) {
          u00 = fp4_col_out(ptw + ra * 64, psc + ra * 4, vtw + d0 * 64, ktw + d0 * 64);
          u01 = fp4_col_out(ptw + ra * 64, psc + ra * 4, vtw + d1 * 64, ktw + d1 * 64);
          u10 = fp4_col_out(ptw + rb * 64, psc + rb * 4, vtw + d0 * 64, ktw + d0 * 64);
          u11 = fp4_col_out(ptw + rb * 64, psc + rb * 4, vtw + d1 * 64, ktw + d1 * 64);
        }
        for (int hg = 0; hg < tile_groups; ++hg) {
          const uint vb0 = fp4_pack4(vtw + (cb + fg) * 64 + 16 * hg + 4 * ft);
          int4 I;
          MMA16(I, pa0[hg], pa1[hg], vb0, hg, nt * 4 + hg)
          const float t00 = sq_fp4_group_term(I.x, psc[ra * 4 + hg], vsc[d0 * 4 + hg]);
          const float t01 = sq_fp4_group_term(I.y, psc[ra * 4 + hg], vsc[d1 * 4 + hg]);
          const float t10 = sq_fp4_group_term(I.z, psc[rb * 4 + hg], vsc[d0 * 4 + hg]);
          const float t11 = sq_fp4_group_term(I.w, psc[rb * 4 + hg], vsc[d1 * 4 + hg]);
          // ((U0 + U1) + U2) + U3: the first group is taken as is (0 + U0 would turn -0 to +0;
          // U is never -0, but keep the fold literal).
          u00 = hg == 0 ? t00 : u00 + t00;
          u01 = hg == 0 ? t01 : u01 + t01;
          u10 = hg == 0 ? t10 : u10 + t10;
          u11 = hg == 0 ? t11 : u11 + t11;
        }
        if (acta) {
          O[nt][0] = fma(O[nt][0], ala, u00);
          O[nt][1] = fma(O[nt][1], ala, u01);
        }
        if (actb) {
          O[nt][2] = fma(O[nt][2], alb, u10);
          O[nt][3] = fma(O[nt][3], alb, u11);
        }
      }
      if (acta)
        lrow[0] =
            fma(lrow[0], ala,
                ((plsum[ra * 4] + plsum[ra * 4 + 1]) + plsum[ra * 4 + 2]) + plsum[ra * 4 + 3]);
      if (actb)
        lrow[1] =
            fma(lrow[1], alb,
                ((plsum[rb * 4] + plsum[rb * 4 + 1]) + plsum[rb * 4 + 2]) + plsum[rb * 4 + 3]);
      if (close) {  // chunk states of rows ra, rb into R; fresh states
        const SqAttMerge wa = sq_att_merge_weights(lse_r[0], sq_att_chunk_lse(mu_l[ra], lrow[0]));
        const SqAttMerge wb = sq_att_merge_weights(lse_r[1], sq_att_chunk_lse(mu_l[rb], lrow[1]));
        for (int nt = 0; nt < D / 16; ++nt) {
          R[nt][0] = sq_att_merge_out(wa, R[nt][0], sq_att_chunk_out(O[nt][0], lrow[0]));
          R[nt][1] = sq_att_merge_out(wa, R[nt][1], sq_att_chunk_out(O[nt][1], lrow[0]));
          R[nt][2] = sq_att_merge_out(wb, R[nt][2], sq_att_chunk_out(O[nt][2], lrow[1]));
          R[nt][3] = sq_att_merge_out(wb, R[nt][3], sq_att_chunk_out(O[nt][3], lrow[1]));
          O[nt][0] = O[nt][1] = O[nt][2] = O[nt][3] = 0.0f;
        }
        lse_r[0] = wa.lse;
        lse_r[1] = wb.lse;
        lrow[0] = lrow[1] = 0.0f;
      }
    }
#else
    if (act) {
      for (int dd = 0; dd < QD; ++dd) {
        const int d = q * QD + dd;
        float ot =
            is_tile ? 0.0f : fp4_col_out(ptw + r * 64, psc + r * 4, vtw + d * 64, ktw + d * 64);
        for (int hg = 0; hg < tile_groups; ++hg) {
          const float u =
              sq_fp4_group_term(fp4_dot16(ptw + r * 64 + 16 * hg, vtw + d * 64 + 16 * hg),
                                psc[r * 4 + hg], vsc[d * 4 + hg]);
          ot = hg == 0 ? u : ot + u;
        }
        O[dd] = fma(O[dd], alpha, ot);
      }
      const float lt = ((plsum[r * 4] + plsum[r * 4 + 1]) + plsum[r * 4 + 2]) + plsum[r * 4 + 3];
      l = fma(l, alpha, lt);
    }
    if (close) {  // the chunk state of row r (channels q * QD ..) into R; a fresh state
      const SqAttMerge w = sq_att_merge_weights(lse_r, sq_att_chunk_lse(mu_old, l));
      for (int dd = 0; dd < QD; ++dd) {
        R[dd] = sq_att_merge_out(w, R[dd], sq_att_chunk_out(O[dd], l));
        O[dd] = 0.0f;
      }
      lse_r = w.lse;
      l = 0.0f;
    }
#endif
    if (close) m = mu_old = -INFINITY;
  }

  // out_d = R's o_d.
#if FP4_MMA
  {
    const int ra = row0 + 16 * slab + fg, rb = ra + 8;
    for (int nt = 0; nt < D / 16; ++nt) {
      const int d0 = (D / 2) * whalf + 8 * nt + 2 * ft;
      if (ra < row_end) {
        __global float* o = out + (bh * lq + ra) * D + d0;
        o[0] = R[nt][0];
        o[1] = R[nt][1];
      }
      if (rb < row_end) {
        __global float* o = out + (bh * lq + rb) * D + d0;
        o[0] = R[nt][2];
        o[1] = R[nt][3];
      }
    }
  }
#else
  if (i < row_end) {
    __global float* o = out + (bh * lq + i) * D + q * QD;
    for (int dd = 0; dd < QD; ++dd) o[dd] = R[dd];
  }
#endif
}
