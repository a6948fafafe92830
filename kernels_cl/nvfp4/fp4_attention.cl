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
#ifndef FP4_FORMS
#define FP4_FORMS 0  // speed forms, bits FP4_F_* (fp4_attention_p.h, fp4_mma.h): the same bits
#endif
#define FP4_F_EXP 1
#define FP4_F_DIV 2
#define FP4_F_PCODE 4
#define FP4_F_BIAS 8
#define FP4_F_SFLAG 16
#define FP4_F_FOLD 32
#define FP4_F_LD32 64
#define FP4_F_LUT 128
#if FP4_SPARSE
#define FP4_KERNEL_NAME fp4_attention_sparse
#else
#define FP4_KERNEL_NAME fp4_attention
#endif

#include "nvfp4/fp4_attention_merge.h"   // chunk merges, output
#include "nvfp4/fp4_attention_p.h"       // softmax step, P quantization
#include "nvfp4/fp4_attention_pv.h"      // P·V, online update
#include "nvfp4/fp4_attention_scores.h"  // S of a step
#include "nvfp4/fp4_attention_stage.h"   // Q, slot and K/V loads
#include "nvfp4/fp4_mma.h"

#if FP4_SPARSE
// Visibility of a slot's key j (-1: none) at position kp to query position qp (sparse §1).
static inline int fp4_visible(int j, int kp, int qp, int causal, int sink, int window) {
  return j >= 0 && (!causal || kp <= qp) && (window <= 0 || kp < sink || kp > qp - window);
}
#endif

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
  __local char ktw[64 * D] SQ_ATT_LOCAL_ALIGN;     // K tile twice values [key][d]
  __local float ksc[64 * G];                       // K tile scales [key][g]
  __local char vtw[D * 64] SQ_ATT_LOCAL_ALIGN;     // V tile twice values [d][key]
  __local float vsc[D * 4];                        // V tile scales [d][group]
  __local float pmax[ROWS * 4];                    // partial tile maxima [r][q]
  __local char ptw[ROWS * 64] SQ_ATT_LOCAL_ALIGN;  // P twice values [r][key]
  __local float psc[ROWS * 4];                     // P scales [r][group]
  __local float plsum[ROWS * 4];                   // L_h [r][group]
  __local float qsc[ROWS * G];                     // Q scales [r][g]
#if FP4_FORMS & FP4_F_LUT
  __local ushort tw2_lut[256];  // lut: the twice-value pair of each packed byte
#endif
#if FP4_MMA
  __local float sco[ROWS * 64];  // scores [r][key]
  __local float alpha_l[ROWS];
  __local float mu_l[ROWS];  // mu of each row after the step (chunk lse of the MMA lanes)
  __local int act_l[ROWS];
#if FP4_FORMS & FP4_F_SFLAG
  __local int sbad[2], vbad[2];  // sflag: the step's scores / tile P.V keep the zero-scale test
#endif
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
  FP4_STAGE_Q_TWICE();
#endif
  FP4_STAGE_Q_SCALES();
  FP4_FLAGS_INIT();
  FP4_BUILD_LUT();

#if FP4_MMA
  const int lane = lid & 31, warp = lid >> 5;
  const int fg = lane >> 2, ft = lane & 3;
  const int slab = warp >> 1;  // rows 16*slab .. 16*slab+15
  const int whalf = warp & 1;  // scores: keys 32*whalf..; P·V: channels (D/2)*whalf..
  FP4_LOAD_Q_FRAGMENTS();
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
    FP4_STAGE_SLOTS();
#endif
    FP4_STAGE_KV();
    FP4_FLAGS_STEP();
    barrier(CLK_LOCAL_MEM_FENCE);

    // Scores of row r, keys 16q .. 16q+15 of the tile.
    float S[16];
    FP4_SCORES();
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
    FP4_STAGE_COLUMN_V_SCALES();
#else
    const int act = j0 < limit && m_new != -INFINITY;
#endif
    float alpha = 0.0f;
    FP4_QUANTIZE_P();
    FP4_SHARE_ROW_STEP();
    barrier(CLK_LOCAL_MEM_FENCE);

    // P·V and the online update; a step that closes its chunk merges the chunk state into R.
    {
      FP4_PV_UPDATE();
      FP4_CLOSE_CHUNK();
    }
    if (close) m = mu_old = -INFINITY;
  }

  // out_d = R's o_d.
  FP4_STORE_OUT();
}
