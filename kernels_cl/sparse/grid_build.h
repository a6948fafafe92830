// grid_build.h — per-element / per-row logic of the MMInference grid head index (specs/
// sparse_attention.md §7.3 steps 4-7), shared by kernels_cl/sparse/grid.cl and
// fallback_cpu/sparse/grid.cpp (OpenCL C 1.2 and C++20). Everything is in the PERMUTED order:
// query row n has position qpos[n], key n has position kpos[n] (a permutation of [0, Lk)); kinv is
// its inverse (kinv[kpos[n]] = n). The host did steps 1-3 and 5 (probe, stride, permutation, the
// lines list); see host/src/sparse/grid.cpp.
//
// POOL (step 4, §5.3 step 1 over permuted blocks): xbar[blk][d] = (sum over n in
// [64 blk, min(64 blk + 64, L)) ascending of x[perm[n]][d], plain +, from 0.0f) / n_rows.
//
// ROW (b, hi, qb), P1 = max qpos over the block's rows:
//  4. candidates: permuted key blocks kb with kbmin[kb] (smallest kpos in the block) <= P1;
//     bs[kb] = dot(qbar, kbar[kb]) (fma chain, d ascending; kv_group: the G heads' dots summed
//     head ascending, plain +, from the first); top-top_k by the §4 order.
//  5. the line tiles lines[0..nlines) of the row (tile indices, chosen on the host).
//  6. forced: for every row n of the block the 64-aligned tile holding key kinv[qpos[n]] (its own
//     position), and the tile holding kinv[0] (the sink, original key 0).
//  7. intervals [64 t, 64 t + 64) of 4-6 -> sq_normalize_row with kpos (drops tiles no row sees).
//  max_tiles = min(ceil(Lk / 64), top_k + lines + 65), max_cols = 0.
#ifndef SPARQ_SPARSE_GRID_BUILD_H
#define SPARQ_SPARSE_GRID_BUILD_H

#include "sparse/sparse_build.h"  // sq_sp_i64
#include "sparse/sparse_select.h"

SQ_BEGIN_NAMESPACE

// Interval workspace (ints) of one grid row: iva and ive, each top_k + nlines + 65 long.
SQ_FN int sq_grid_ws_ints(int top_k, int nlines) {
  return 2 * (top_k + nlines + 65);
}

// One grid index row. qbar: the nheads pooled query rows of this block (consecutive heads qstride
// floats apart); kbar [nkb][d] of the kv head. wsf: top_k floats; sel: top_k ints; ws:
// sq_grid_ws_ints ints. Returns an SQ_NORM_* code; *nt = tile count.
SQ_FN int sq_grid_row(SQ_CONST_GLOBAL float* qbar, sq_sp_i64 qstride, int nheads,
                      SQ_CONST_GLOBAL float* kbar, int nkb, int d, SQ_CONST_GLOBAL int* kbmin,
                      SQ_CONST_GLOBAL int* qpos, SQ_CONST_GLOBAL int* kpos,
                      SQ_CONST_GLOBAL int* kinv, SQ_CONST_GLOBAL int* lines, int nlines, int qb,
                      int lq, int lk, int top_k, SQ_GLOBAL float* wsf, SQ_GLOBAL int* sel,
                      SQ_GLOBAL int* ws, SQ_GLOBAL int* tiles_out, int max_tiles, int* nt) {
  const int r0 = qb * SQ_SP_TILE;
  const int r1 = r0 + SQ_SP_TILE < lq ? r0 + SQ_SP_TILE : lq;
  int p1 = qpos[r0];
  for (int n = r0 + 1; n < r1; ++n) p1 = qpos[n] > p1 ? qpos[n] : p1;
  int cnt = 0;
  if (top_k > 0) {
    for (int kb = 0; kb < nkb; ++kb) {
      if (kbmin[kb] > p1) continue;
      float bs = 0.0f;
      for (int g = 0; g < nheads; ++g) {
        SQ_CONST_GLOBAL float* qv = qbar + g * qstride;
        SQ_CONST_GLOBAL float* kv = kbar + (sq_sp_i64)kb * d;
        float a = 0.0f;
        for (int e = 0; e < d; ++e) a = sq_fma(qv[e], kv[e], a);
        bs = g == 0 ? a : bs + a;
      }
      sq_topk_push(wsf, sel, &cnt, top_k, bs, kb);
    }
    sq_sort_int(sel, cnt);
  }
  const int cap = top_k + nlines + 65;
  SQ_GLOBAL int* iva = ws;
  SQ_GLOBAL int* ive = ws + cap;
  int n = 0;
  const int sink = kinv[0] & ~(SQ_SP_TILE - 1);
  iva[n] = sink;
  ive[n++] = sink + SQ_SP_TILE;
  for (int u = 0; u < cnt; ++u, ++n) {
    iva[n] = sel[u] * SQ_SP_TILE;
    ive[n] = iva[n] + SQ_SP_TILE;
  }
  for (int u = 0; u < nlines; ++u, ++n) {
    iva[n] = lines[u] * SQ_SP_TILE;
    ive[n] = iva[n] + SQ_SP_TILE;
  }
  int last = -1;  // own tiles: consecutive rows usually share one, add each run once
  for (int r = r0; r < r1; ++r) {
    const int t = kinv[qpos[r]] & ~(SQ_SP_TILE - 1);
    if (t == last) continue;
    last = t;
    iva[n] = t;
    ive[n++] = t + SQ_SP_TILE;
  }
  int nc = 0;
  return sq_normalize_row(iva, ive, n, ws, 0, p1, lk, 1, kpos, tiles_out, max_tiles, ws, 0, nt,
                          &nc);
}

SQ_END_NAMESPACE

#endif  // SPARQ_SPARSE_GRID_BUILD_H
