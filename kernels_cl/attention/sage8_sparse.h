// sage8_sparse.h — Precision::int8 attention over a sparq::SparseIndex (specs/sparse_attention.md
// §2, §11; specs/fp4_attention.md §4.6, §5): the sparse mode (SAGE8_SPARSE=1) of
// kernels_cl/attention/sage8.cl and sage8_mma.cl, and fallback_cpu/attention/sage8_sparse.cpp.
//
// THE DEFINITION. Per query row i of (b, h), kv head hk = h / G, index row (b, hi, qb = i / 64)
// with hi = h (per_q_head) or hk (kv_group); qpos(i) = Lk - Lq + i and kpos(j) = j unless the
// index carries qpos/kpos;
//   visible(i, j) = 0 <= j < Lk && (!causal || kpos(j) <= qpos(i))
//                   && (window == 0 || kpos(j) < sink || kpos(j) > qpos(i) - window)
// The row walks steps of 64 slots: its tiles in list order (slot s = key tile_start + s, a
// multiple of 16, so slot group g = slots 16g..16g+15 is one V group), then its columns in chunks
// of 64 list entries (slot s = col_index[64u + s]); a slot past Lk or past col_count holds no key.
// Segments (dense int8's 4096-key chunks, sage8_common.h): the state starts fresh (m = -inf,
// l = 0, O = 0) at step 0 and at each tile whose start >> 12 differs from the previous tile's;
// the column steps continue the last segment. Each step, from the state (m, l, O), uses the
// per-element arithmetic of attention/sage8_common.h:
//   if no slot is visible to row i: skip the step (state unchanged)
//   S2_s  = ((float)I_s * sq) * sk(j_s)   (sk of key j_s's own 64-key block); delta term as dense
//   m_new = mx(m, mx over visible s of S2_s); if m_new == -inf: skip the step
//   P_s   = visible ? sq_exp2_q(S2_s - m_new) : 0;  groups g of 16 slots: sP_g, p8 as dense
//   L_g   = (float)(sum_s p8_s) * sP_g;  Lt = ((L_0 + L_1) + L_2) + L_3
//   tile:   U_g[d] = sq_s8_pv_term(sum_s p8_s * v8[d][j_s], sP_g, sv[d][(tile_start / 16) + g])
//   column: U_g[d] = 0; for visible s of group g ascending:
//             U_g[d] = U_g[d] + sq_s8_pv_term(p8_s * v8[d][j_s], sP_g, sv[d][j_s / 16])
//           (each term ((float)(p8 * v8) * sP_g) * sv, or 0 when sP_g == 0)
//   Ot[d] = ((U_0 + U_1) + U_2) + U_3; alpha = sq_exp2(m - m_new)
//   O[d] = fma(O[d], alpha, Ot[d]); l = fma(l, alpha, Lt); m = m_new
// Each segment's result C (o_c = l == 0 ? 0 : O / l, lse_c = l == 0 ? -inf : m + sq_log2(l)) is
// merged left to right into R (starts empty) by attention_common.h's sq_att_merge_*; out = R's o
// (0 for a row that sees no key). With the dense index this is exactly dense int8 attention
// (same tiles and chunks; a tile the row cannot see is skipped there too). V groups of a tile past
// the stored V (keys >= Lk64) have no visible slot, so P and sP are 0 there: they read as codes 0
// and scale 0, never out of bounds.
#ifndef SPARQ_ATTENTION_SAGE8_SPARSE_H
#define SPARQ_ATTENTION_SAGE8_SPARSE_H

#include "attention/sage8_common.h"

SQ_BEGIN_NAMESPACE

SQ_FN int sq_s8_visible(int j, int kp, int qp, int causal, int sink, int window) {
  return j >= 0 && !(causal && kp > qp) && !(window > 0 && !(kp < sink || kp > qp - window));
}

SQ_END_NAMESPACE

#ifdef __OPENCL_C_VERSION__
#if SAGE8_SPARSE
// Kernel side; the including kernel defines DH, BN (64), NT, QW, VW and ST4U first.
// The kernels' extra arguments in sparse mode (the SparseIndex of sparq/sparse.h; Hi rows).
#define SAGE8_SPARSE_ARGS                                                                        \
  , __global const int *tcount, __global const int *tstart, __global const int *ccount,          \
      __global const int *cidx, __global const int *qpos, __global const int *kpos, int has_pos, \
      int hi_n, int share, int max_tiles, int max_cols, int sink, int window
// Row position qp sees the key of slot s of the step (kid/kps staged by sq_s8_stage_slots).
#define SAGE8_VIS(s, qp) sq_s8_visible(kid[s], kps[s], qp, causal, sink, window)

// Step n's slot keys (-1: none), positions and K scales (tiles first, then column chunks).
static inline void sq_s8_stage_slots(int n, int ntl, int ncol, int j0, __global const int* cs,
                                     int lk, int has_pos, __global const int* kpos_b,
                                     __global const float* sk_bh, __local int* kid,
                                     __local int* kps, __local float* skl) {
  for (int x = get_local_id(0); x < BN; x += NT) {
    const int c0 = (n - ntl) * BN;
    int j = n < ntl ? j0 + x : (c0 + x < ncol ? cs[c0 + x] : -1);
    j = j < lk ? j : -1;
    kid[x] = j;
    kps[x] = j < 0 ? 0 : (has_pos ? kpos_b[j] : j);
    skl[x] = j < 0 ? 0.0f : sk_bh[j >> 6];
  }
}

// K8 rows of the slots (zero for none): ks[slot * QW + word].
static inline void sq_s8_stage_k(__local uint* ks, __global const uint* k8_bh,
                                 __local const int* kid) {
  for (int x = get_local_id(0); x < BN * (DH / 16); x += NT) {
    const int jj = x / (DH / 16), w = 4 * (x % (DH / 16)), j = kid[jj];
    ST4U(ks + jj * QW + w, j >= 0 ? vload4(0, k8_bh + (long)j * (DH / 4) + w) : (uint4)(0u));
  }
}

// V8 codes of the slots, vs[d * VW + slot / 4]. Tile: the 4 groups from j0 and their scales in
// svs[d * 4 + g] (groups past the stored V have no visible slot: codes 0, scale 0). Column step:
// each slot's code gathered (scales are read per slot in the fold), svs = 0.
static inline void sq_s8_stage_v(__local uint* vs, __local float* svs, int is_tile, int j0,
                                 int lk64, __global const uint* v8_bh, __global const float* sv_bh,
                                 __local const int* kid) {
  if (is_tile) {
    for (int x = get_local_id(0); x < DH * (BN / 16); x += NT) {
      const int d = x / (BN / 16), w = 4 * (x % (BN / 16));
      ST4U(vs + d * VW + w,
           j0 + 4 * w < lk64 ? vload4(0, v8_bh + ((long)d * lk64 + j0) / 4 + w) : (uint4)(0u));
    }
    for (int x = get_local_id(0); x < DH * 4; x += NT) {
      const int gv = j0 / 16 + (x & 3);
      svs[x] = gv < lk64 / 16 ? sv_bh[(long)(x / 4) * (lk64 / 16) + gv] : 0.0f;
    }
  } else {
    __global const uchar* vb = (__global const uchar*)v8_bh;
    for (int x = get_local_id(0); x < DH * (BN / 4); x += NT) {
      const int d = x / (BN / 4), wq = x % (BN / 4);
      uint word = 0;
      for (int e = 0; e < 4; ++e) {
        const int j = kid[4 * wq + e];
        word |= (j >= 0 ? (uint)vb[(long)d * lk64 + j] : 0u) << (8 * e);
      }
      vs[d * VW + wq] = word;
    }
    for (int x = get_local_id(0); x < DH * 4; x += NT) svs[x] = 0.0f;
  }
}

// Column step, row with position qp, channel d: Ot[d] of the definition. P codes of the row in
// pq_row (4 per word, slot order), sP per group in sp_row, V codes of channel d in slot order in
// v_row, sv_d the V scales of (b, hk, d, group 0).
static inline float sq_s8_column_pv(int qp, __local const uint* pq_row, __local const float* sp_row,
                                    __local const uint* v_row, __local const int* kid,
                                    __local const int* kps, __global const float* sv_d, int causal,
                                    int sink, int window) {
  float ot = 0.0f;
  for (int gr = 0; gr < 4; ++gr) {
    const float sp = sp_row[gr];
    float u = 0.0f;
    for (int e = 0; e < 16; ++e) {
      const int s = 16 * gr + e, j = kid[s];
      if (!sq_s8_visible(j, kps[s], qp, causal, sink, window)) continue;
      const int p8 = (int)((pq_row[s >> 2] >> (8 * (s & 3))) & 0xffu);
      const int vb = (int)((v_row[s >> 2] >> (8 * (s & 3))) & 0xffu);
      const int v = vb - ((vb & 0x80) << 1);  // the int8 code, sign-extended
      u = u + sq_s8_pv_term(p8 * v, sp, sv_d[j >> 4]);
    }
    ot = gr == 0 ? u : ot + u;
  }
  return ot;
}
#else
#define SAGE8_SPARSE_ARGS
#endif  // SAGE8_SPARSE
#endif  // __OPENCL_C_VERSION__

#endif  // SPARQ_ATTENTION_SAGE8_SPARSE_H
