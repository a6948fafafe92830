// builder_math.h — the per-element and per-row arithmetic of sparq's dynamic index builders
// (vertical-slash, specs/sparse_attention.md §5.2; XAttention, §6), compiled by
// kernels_cl/sparse/vertical_slash.cl, kernels_cl/sparse/xattention.cl and by their fallback twins
// fallback_cpu/sparse/vertical_slash.cpp and xattention.cpp (OpenCL C 1.2 and C++20). Every value
// and every selected index comes from these functions, so the device and the fallback agree bit
// for bit.
#ifndef SPARQ_SPARSE_BUILDER_MATH_H
#define SPARQ_SPARSE_BUILDER_MATH_H

#include "common/exact_math.h"
#include "common/prelude.h"
#include "sparse/sparse_select.h"

#define SQ_SB_TILE 64     // key tile / query block of the common index (§1 T)
#define SQ_SB_PROBE 64    // probe rows of vertical-slash (last_q)
#define SQ_SB_XBLOCK 128  // XAttention selection block (§6)

SQ_BEGIN_NAMESPACE

SQ_FN float sq_sb_neg_inf(void) {
  return sq_as_float(0xff800000u);
}
SQ_FN float sq_sb_pos_inf(void) {
  return sq_as_float(0x7f800000u);
}

// One probe-softmax probability p = sq_exp2(x - m) / Z (§4; x = -INF gives +0 for a finite m).
SQ_FN float sq_sb_prob(float x, float m, float z) {
  return sq_exp2(x - m) / z;
}

// ---- vertical-slash conversion (§5.2 step 5), one (b, hi, qb) ----
// vlist: ascending key columns; slist: ascending distances t. P0 = first position of the block,
// end = P1 + 1, E = P0 + 64. Diagonal t = 0 is added unconditionally (invariant 6). Writes
// tile_start[0..max_tiles) and col_index[0..max_cols) (unused slots -1) and the counts.
SQ_FN void sq_sb_vs_convert(SQ_GLOBAL const int* vlist, int nv, SQ_GLOBAL const int* slist, int ns,
                            int p0, int end, int lk, SQ_GLOBAL int* tile_start, int max_tiles,
                            SQ_GLOBAL int* tile_count, SQ_GLOBAL int* col_index, int max_cols,
                            SQ_GLOBAL int* col_count) {
  const int big_e = p0 + SQ_SB_TILE;
  const int hi = end < lk ? end : lk;
  sq_norm_stream n;
  sq_norm_stream_init(&n, max_tiles);
  // t descending gives e = max(E - t, 64) ascending, hence a = e - 64 ascending.
  for (int i = ns - 1; i >= -1; --i) {
    const int t = i >= 0 ? slist[i] : 0;
    if (t >= big_e) continue;
    if (i >= 0 && t == 0) continue;  // the diagonal comes last, once
    int e = big_e - t;
    if (e < SQ_SB_TILE) e = SQ_SB_TILE;
    const int a = e - SQ_SB_TILE;
    sq_norm_stream_add(&n, tile_start, a, e < hi ? e : hi);
  }
  sq_norm_stream_flush(&n, tile_start);
  const int nt = n.count < max_tiles ? n.count : max_tiles;
  for (int s = nt; s < max_tiles; ++s) tile_start[s] = -1;
  *tile_count = n.count;
  const int nc =
      sq_norm_stream_columns(vlist, nv, tile_start, nt, lk, end - 1, col_index, max_cols);
  for (int s = nc < max_cols ? nc : max_cols; s < max_cols; ++s) col_index[s] = -1;
  *col_count = nc;
}

// ---- XAttention threshold selection (§6.2), one (index head, 128-row block qb) ----
// sb[kb], kb < nkb: block scores of this row block; f0, f1: the forced blocks (-1: none);
// candidates: kb <= last_vis, not forced. Walk: candidates in §4 order (sq_topk_before),
// "if cum < need: select, cum += sb; else stop". Returns the last selected candidate as
// (*stop_s, *stop_idx) (*stop_idx = -1: none): the selection is the forced blocks plus every
// candidate at or before it in the order. Each step rescans (no per-row memory).
SQ_FN void sq_sb_xattn_select(SQ_GLOBAL const float* sb, int nkb, int f0, int f1, int last_vis,
                              float tau, float* stop_s, int* stop_idx) {
  float total = 0.0f;
  for (int kb = 0; kb < nkb; ++kb) total = total + sb[kb];
  const float need = tau * total;
  float cum = 0.0f;
  if (f0 >= 0) cum = cum + sb[f0];
  if (f1 >= 0) cum = cum + sb[f1];
  float ps = 0.0f;  // previous pick (pi = -1: none yet)
  int pi = -1;
  while (cum < need) {
    float bs = 0.0f;
    int bi = -1;
    for (int kb = 0; kb <= last_vis; ++kb) {
      if (kb == f0 || kb == f1) continue;
      const float s = sb[kb];
      if (pi >= 0 && !sq_topk_before(ps, pi, s, kb)) continue;  // already taken
      if (bi < 0 || sq_topk_before(s, kb, bs, bi)) {
        bs = s;
        bi = kb;
      }
    }
    if (bi < 0) break;
    cum = cum + bs;
    ps = bs;
    pi = bi;
  }
  *stop_s = ps;
  *stop_idx = pi;
}

SQ_FN int sq_sb_xattn_selected(SQ_GLOBAL const float* sb, int kb, int f0, int f1, int last_vis,
                               float stop_s, int stop_idx) {
  if (kb == f0 || kb == f1) return 1;
  if (stop_idx < 0 || kb > last_vis) return 0;
  return kb == stop_idx || sq_topk_before(sb[kb], kb, stop_s, stop_idx);
}

// ---- XAttention selection + conversion (§6.2 steps 1-6), one (index head, 128-row block qb) --
// sb: Sb[qb][0..nkb) of this index head; off % 128 == 0. Rows 2qb and 2qb + 1 (if < nqb) of the
// common index get the intervals [128 kb, 128 kb + 128) of the selected kb, normalized (clipped
// to [0, min(end, Lk)) when causal). `row0` points at the index row 2qb (row 2qb + 1 follows).
SQ_FN void sq_sb_xattn_convert(SQ_GLOBAL const float* sb, int nkb, int qb, int nqb, int lq, int lk,
                               int causal, float tau, SQ_GLOBAL int* tile_start, int max_tiles,
                               SQ_GLOBAL int* tile_count) {
  const int off = lk - lq;
  const int kb_diag = (SQ_SB_XBLOCK * qb + off) / SQ_SB_XBLOCK;
  int f0 = causal ? 0 : qb;
  int f1 = causal && kb_diag != 0 ? kb_diag : -1;
  const int last_vis = causal ? kb_diag : nkb - 1;
  float stop_s;
  int stop_idx;
  sq_sb_xattn_select(sb, nkb, f0, f1, last_vis, tau, &stop_s, &stop_idx);
  for (int part = 0; part < 2; ++part) {
    const int r = 2 * qb + part;
    if (r >= nqb) break;
    const int end = off + (SQ_SB_TILE * r + SQ_SB_TILE < lq ? SQ_SB_TILE * r + SQ_SB_TILE : lq);
    const int hi = causal ? (end < lk ? end : lk) : lk;
    SQ_GLOBAL int* tiles = tile_start + part * max_tiles;
    sq_norm_stream n;
    sq_norm_stream_init(&n, max_tiles);
    for (int kb = 0; kb <= last_vis; ++kb) {
      if (!sq_sb_xattn_selected(sb, kb, f0, f1, last_vis, stop_s, stop_idx)) continue;
      const int a = SQ_SB_XBLOCK * kb;
      const int e = a + SQ_SB_XBLOCK < hi ? a + SQ_SB_XBLOCK : hi;
      sq_norm_stream_add(&n, tiles, a, e);
    }
    sq_norm_stream_flush(&n, tiles);
    for (int s = n.count < max_tiles ? n.count : max_tiles; s < max_tiles; ++s) tiles[s] = -1;
    tile_count[part] = n.count;
  }
}

SQ_END_NAMESPACE

#endif  // SPARQ_SPARSE_BUILDER_MATH_H
