// sparse_build.h — per-index-row logic of sparq's static and block-sparse index builders (spec
// §5.1, §5.3), shared by sparse_build.cl and fallback_cpu/sparse/sparse_build.cpp (OpenCL C 1.2
// and C++20). Every builder ends in sq_normalize_row (sparse_select.h).
//
// Positions: identity order (qpos(i) = off + i, kpos(j) = j). Block qb: P0 = off + 64 qb,
// P1 = off + min(64 qb + 64, Lq) - 1, end = P1 + 1.
//
// A-SHAPE (§5.1): intervals [0, min(n_init, end)) and [max(0, P0 - n_local + 1), end) ->
// normalize. max_tiles = ceil(n_init/64) + ceil(n_local/64) + 2, max_cols = 0. Non-causal uses
// the same two intervals (A-shape is a causal pattern; the non-causal index keeps its key set).
//
// BLOCK-SPARSE (§5.3):
//  1. qbar[qb][d] = (sum of rows r of the block, r ascending, plain +, from 0.0f) / n_rows (one
//     correctly rounded division by the true row count); kbar[kb] the same over
//     [64 kb, min(64 kb + 64, Lk)) (sparse_pool).
//  2. bs[kb] = dot(qbar, kbar[kb]) (fma chain, d ascending; no scale). kv_group sharing: bs[kb]
//     = sum over the G query heads of the group (head ascending, plain +, from 0.0f) of their
//     dots (sparq's choice; the spec is silent).
//     Candidates: kb with 64 kb <= P1 (causal) / every kb < nKB (non-causal).
//  3. Forced: block 0 and the diagonal blocks kb in [P0 / 64, min(P1 / 64, nKB - 1)].
//  4. top-(top_k - #forced) (never negative) of the other candidates by the §4 order.
//  5. intervals [64 kb, 64 kb + 64) of forced + selected blocks -> normalize.
//     max_tiles = min(top_k + 3, ceil(Lk/64)), max_cols = 0.
#ifndef SPARQ_SPARSE_BUILD_H
#define SPARQ_SPARSE_BUILD_H

#include "sparse/sparse_select.h"

#ifdef __OPENCL_C_VERSION__
typedef long sq_sp_i64;
#endif

SQ_BEGIN_NAMESPACE
#ifndef __OPENCL_C_VERSION__
typedef slong sq_sp_i64;
#endif

SQ_FN void sq_block_pos(int qb, int lq, int off, int* p0, int* p1) {
  const int r0 = qb * SQ_SP_TILE;
  const int r1 = r0 + SQ_SP_TILE < lq ? r0 + SQ_SP_TILE : lq;
  *p0 = off + r0;
  *p1 = off + r1 - 1;
}

// One A-shape row. ws: 4 ints of scratch. Returns an SQ_NORM_* code.
SQ_FN int sq_ashape_row(int qb, int lq, int lk, int off, int causal, int n_init, int n_local,
                        SQ_GLOBAL int* ws, SQ_GLOBAL int* tiles_out, int max_tiles, int* nt) {
  int p0, p1;
  sq_block_pos(qb, lq, off, &p0, &p1);
  const int end = p1 + 1;
  SQ_GLOBAL int* iva = ws;
  SQ_GLOBAL int* ive = ws + 2;
  iva[0] = 0;
  ive[0] = n_init < end ? n_init : end;
  const int w0 = p0 - n_local + 1;
  iva[1] = w0 > 0 ? w0 : 0;
  ive[1] = end;
  int nc = 0;
  return sq_normalize_row(iva, ive, 2, ws, 0, p1, lk, causal, 0, tiles_out, max_tiles, ws, 0, nt,
                          &nc);
}

// Workspace of one block-sparse row: floats [top_k], ints [top_k + 2 (top_k + 3)].
SQ_FN int sq_block_sparse_ws_ints(int top_k) {
  return top_k + 2 * (top_k + 3);
}

// One block-sparse row. qbar: the G (kv_group) or 1 pooled query rows of the row, each D floats,
// consecutive heads qstride floats apart; kbar: [nkb][D] of the kv head.
SQ_FN int sq_block_sparse_row(SQ_CONST_GLOBAL float* qbar, sq_sp_i64 qstride, int nheads,
                              SQ_CONST_GLOBAL float* kbar, int nkb, int d, int qb, int lq, int lk,
                              int off, int causal, int top_k, SQ_GLOBAL float* wsf,
                              SQ_GLOBAL int* wsi, SQ_GLOBAL int* tiles_out, int max_tiles,
                              int* nt) {
  int p0, p1;
  sq_block_pos(qb, lq, off, &p0, &p1);
  const int kd0 = p0 / SQ_SP_TILE;
  int kd1 = p1 / SQ_SP_TILE;
  if (kd1 > nkb - 1) kd1 = nkb - 1;
  int ncand = nkb;
  if (causal) {
    const int lim = p1 / SQ_SP_TILE + 1;  // 64 kb <= P1
    ncand = lim < nkb ? lim : nkb;
  }
  const int nforced = 1 + (kd1 - kd0 + 1) - (kd0 == 0 ? 1 : 0);
  int k = top_k - nforced;
  if (k < 0) k = 0;
  SQ_GLOBAL int* sel = wsi;
  SQ_GLOBAL int* iva = wsi + top_k;
  SQ_GLOBAL int* ive = iva + (top_k + 3);
  int cnt = 0;
  if (k > 0) {
    for (int kb = 1; kb < ncand; ++kb) {
      if (kb >= kd0 && kb <= kd1) continue;
      float bs = 0.0f;
      for (int g = 0; g < nheads; ++g) {
        SQ_CONST_GLOBAL float* qv = qbar + g * qstride;
        SQ_CONST_GLOBAL float* kv = kbar + (sq_sp_i64)kb * d;
        float a = 0.0f;
        for (int e = 0; e < d; ++e) a = sq_fma(qv[e], kv[e], a);
        bs = nheads == 1 ? a : bs + a;
      }
      sq_topk_push(wsf, sel, &cnt, k, bs, kb);
    }
    sq_sort_int(sel, cnt);
  }
  // intervals in ascending block order: block 0, selected below the diagonal, the diagonal,
  // selected above it (non-causal)
  int n = 0;
  iva[n] = 0;
  ive[n] = SQ_SP_TILE;
  ++n;
  int u = 0;
  for (; u < cnt && sel[u] < kd0; ++u, ++n) {
    iva[n] = sel[u] * SQ_SP_TILE;
    ive[n] = iva[n] + SQ_SP_TILE;
  }
  for (int kb = kd0; kb <= kd1; ++kb, ++n) {
    iva[n] = kb * SQ_SP_TILE;
    ive[n] = iva[n] + SQ_SP_TILE;
  }
  for (; u < cnt; ++u, ++n) {
    iva[n] = sel[u] * SQ_SP_TILE;
    ive[n] = iva[n] + SQ_SP_TILE;
  }
  int nc = 0;
  return sq_normalize_row(iva, ive, n, wsi, 0, p1, lk, causal, 0, tiles_out, max_tiles, wsi, 0, nt,
                          &nc);
}

SQ_END_NAMESPACE

#endif  // SPARQ_SPARSE_BUILD_H
