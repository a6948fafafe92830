// sparse_select.h — the deterministic selection primitives (spec §4) and the index
// normalization (spec §2) of the sparse-attention family, shared by every index builder kernel
// (OpenCL C 1.2) and its C++ fallback, so both run literally the same code.
//
// Arrays are SQ_GLOBAL (global memory on the device, plain memory in C++): builders keep their
// per-row candidate lists in a global workspace. Unqualified pointers (int* out counts) are
// private. Nothing here uses floating-point arithmetic except comparisons.
//
// TOP-K ORDER (§4). Candidates are (score, index) pairs; invisible positions are never passed in.
// The strict total order: +INF first, then finite scores descending, then -INF, then NaN; equal
// scores (-0.0 == +0.0) by index ascending. sq_topk_select returns the first min(k, n) pairs of
// this order, sorted by index ascending: any sort, network or radix select that respects the order
// returns the same set, so a faster builder may replace the selection but not the order.
//
// NORMALIZATION (§2) of one index row (b, hi, qb): key intervals [a, e) + candidate columns ->
// tile starts + columns:
//  0. clip every interval to [0, hi) with hi = min(P1 + 1, Lk) when causal in the identity order
//     (kpos == 0), else hi = Lk; empty intervals vanish;
//  1. sort intervals by (a, e); merge those that overlap or touch;
//  2. cursor = INT_MIN; for each merged [a, e): s = max(a & ~15, cursor); while s < e: emit s,
//     s += 64; then cursor = s;
//  3. causal with kpos: drop a tile whose smallest kpos over [s, min(s + 64, Lk)) is > P1;
//  4. columns: drop those < 0 or >= Lk or (causal) with kpos(col) > P1; sort ascending, remove
//     duplicates, drop those inside an emitted tile;
//  5. more than max_tiles tiles / max_cols columns: SQ_NORM_TILE_OVERFLOW / SQ_NORM_COL_OVERFLOW
//     (a builder bug; the host raises sparq::Error(internal)). Unused slots are set to -1.
// Sorting is insertion sort: O(n) for input that is already (nearly) sorted, which is what the
// builders produce (feed intervals in ascending order); it is part of no result (the output of a
// sort does not depend on the algorithm).
#ifndef SPARQ_SPARSE_SELECT_H
#define SPARQ_SPARSE_SELECT_H

#include "common/prelude.h"

#define SQ_SP_TILE 64
#define SQ_SP_INT_MIN (-2147483647 - 1)
#define SQ_NORM_OK 0
#define SQ_NORM_TILE_OVERFLOW 1
#define SQ_NORM_COL_OVERFLOW 2

SQ_BEGIN_NAMESPACE

// Rank of a score's class in the top-k order: 0 = +INF, 1 = finite, 2 = -INF, 3 = NaN.
SQ_FN int sq_topk_class(float s) {
  if (sq_isnan(s)) return 3;
  if (sq_isinf(s)) return s > 0.0f ? 0 : 2;
  return 1;
}

// 1 iff (sa, ia) comes strictly before (sb, ib) in the top-k order (ia != ib for a strict order).
SQ_FN int sq_topk_before(float sa, int ia, float sb, int ib) {
  const int ca = sq_topk_class(sa), cb = sq_topk_class(sb);
  if (ca != cb) return ca < cb ? 1 : 0;
  if (ca == 1 && sa != sb) return sa > sb ? 1 : 0;
  return ia < ib ? 1 : 0;
}

// Ascending insertion sort of a[0..n).
SQ_FN void sq_sort_int(SQ_GLOBAL int* a, int n) {
  for (int t = 1; t < n; ++t) {
    const int x = a[t];
    int p = t;
    while (p > 0 && a[p - 1] > x) {
      a[p] = a[p - 1];
      --p;
    }
    a[p] = x;
  }
}

// Streaming top-k: offers candidate (s, i) to the running selection (ws[0..*cnt) scores,
// sel[0..*cnt) indices, kept in top-k order, capacity k >= 1). After all candidates are offered,
// sel[0..*cnt) holds the first min(k, #offered) of the order; call sq_sort_int(sel, *cnt) for
// the index-ascending list. Lets a builder score candidates on the fly without storing them.
SQ_FN void sq_topk_push(SQ_GLOBAL float* ws, SQ_GLOBAL int* sel, int* cnt, int k, float s, int i) {
  int n = *cnt;
  if (n == k && !sq_topk_before(s, i, ws[k - 1], sel[k - 1])) return;
  int p = n < k ? n : k - 1;  // when full, the last entry leaves
  while (p > 0 && sq_topk_before(s, i, ws[p - 1], sel[p - 1])) {
    ws[p] = ws[p - 1];
    sel[p] = sel[p - 1];
    --p;
  }
  ws[p] = s;
  sel[p] = i;
  if (n < k) *cnt = n + 1;
}

// Top-k of the candidates (score[t], idx ? idx[t] : t), t < n: writes the indices of the first
// min(k, n) candidates in the top-k order to out_idx, sorted ascending, and returns their count.
// ws: scratch of k floats. out_idx holds k ints. k <= 0 or n <= 0 selects nothing.
SQ_FN int sq_topk_select(SQ_CONST_GLOBAL float* score, SQ_CONST_GLOBAL int* idx, int n, int k,
                         SQ_GLOBAL float* ws, SQ_GLOBAL int* out_idx) {
  if (k <= 0 || n <= 0) return 0;
  int cnt = 0;
  for (int t = 0; t < n; ++t) sq_topk_push(ws, out_idx, &cnt, k, score[t], idx ? idx[t] : t);
  sq_sort_int(out_idx, cnt);
  return cnt;
}

// Normalization of one index row (see the top of this file). iva/ive: interval starts/ends
// (niv of them; reordered and overwritten); cols: candidate columns (ncols; overwritten);
// kpos: this batch's key positions [Lk], or 0 for the identity order; p1 = P1(qb).
// Writes tiles_out[0..max_tiles) and cols_out[0..max_cols) (unused slots -1) and the counts.
SQ_FN int sq_normalize_row(SQ_GLOBAL int* iva, SQ_GLOBAL int* ive, int niv, SQ_GLOBAL int* cols,
                           int ncols, int p1, int lk, int causal, SQ_CONST_GLOBAL int* kpos,
                           SQ_GLOBAL int* tiles_out, int max_tiles, SQ_GLOBAL int* cols_out,
                           int max_cols, int* nt_out, int* nc_out) {
  int hi = lk;
  if (causal && !kpos && p1 + 1 < hi) hi = p1 + 1;
  // 0. clip, compact
  int n = 0;
  for (int t = 0; t < niv; ++t) {
    const int a = iva[t] < 0 ? 0 : iva[t];
    const int e = ive[t] > hi ? hi : ive[t];
    if (a < e) {
      iva[n] = a;
      ive[n] = e;
      ++n;
    }
  }
  // 1. sort by (a, e)
  for (int t = 1; t < n; ++t) {
    const int a = iva[t], e = ive[t];
    int p = t;
    while (p > 0 && (iva[p - 1] > a || (iva[p - 1] == a && ive[p - 1] > e))) {
      iva[p] = iva[p - 1];
      ive[p] = ive[p - 1];
      --p;
    }
    iva[p] = a;
    ive[p] = e;
  }
  // 1-3. merge, emit tiles, drop invisible tiles
  int err = SQ_NORM_OK;
  int nt = 0;
  int cursor = SQ_SP_INT_MIN;
  int t = 0;
  while (t < n) {
    const int a = iva[t];
    int e = ive[t];
    ++t;
    while (t < n && iva[t] <= e) {
      if (ive[t] > e) e = ive[t];
      ++t;
    }
    int s = a & ~15;
    if (s < cursor) s = cursor;
    while (s < e) {
      int keep = 1;
      if (causal && kpos) {
        int mn = kpos[s];
        const int te = s + SQ_SP_TILE < lk ? s + SQ_SP_TILE : lk;
        for (int j = s + 1; j < te; ++j) mn = kpos[j] < mn ? kpos[j] : mn;
        keep = mn <= p1;
      }
      if (keep) {
        if (nt < max_tiles)
          tiles_out[nt] = s;
        else
          err = SQ_NORM_TILE_OVERFLOW;
        ++nt;
      }
      s += SQ_SP_TILE;
    }
    cursor = s;
  }
  if (nt > max_tiles) nt = max_tiles;
  // 4. columns
  int m = 0;
  for (int u = 0; u < ncols; ++u) {
    const int c = cols[u];
    if (c < 0 || c >= lk) continue;
    if (causal && (kpos ? kpos[c] : c) > p1) continue;
    cols[m++] = c;
  }
  sq_sort_int(cols, m);
  int nc = 0, ti = 0, prev = -1;
  for (int u = 0; u < m; ++u) {
    const int c = cols[u];
    if (c == prev) continue;
    prev = c;
    while (ti < nt && tiles_out[ti] + SQ_SP_TILE <= c) ++ti;
    if (ti < nt && tiles_out[ti] <= c) continue;
    if (nc < max_cols)
      cols_out[nc] = c;
    else if (err == SQ_NORM_OK)
      err = SQ_NORM_COL_OVERFLOW;
    ++nc;
  }
  if (nc > max_cols) nc = max_cols;
  for (int u = nt; u < max_tiles; ++u) tiles_out[u] = -1;
  for (int u = nc; u < max_cols; ++u) cols_out[u] = -1;
  *nt_out = nt;
  *nc_out = nc;
  return err;
}

// ---- additions for the dynamic builders (vertical-slash, XAttention) ----

// The top-k order as one unsigned key, for radix selection: (sa, ia) comes before (sb, ib) iff
// key(sa) > key(sb), or the keys are equal and ia < ib — the same order as sq_topk_before.
// +INF highest, finite scores by value (-0 == +0), then -INF, NaN lowest (0).
SQ_FN uint sq_topk_key(float s) {
  if (sq_isnan(s)) return 0u;
  const uint u = sq_as_uint(s == 0.0f ? 0.0f : s);
  return (u >> 31) ? ~u : (u | 0x80000000u);
}

// Normalization (steps 1-2 and 4 above, identity order) streamed: for a builder whose intervals
// arrive already sorted by (a, e) and already clipped (empty ones are ignored), so no workspace
// is needed. Gives the tiles of sq_normalize_row on the same input. Slots past cap are not
// written; count keeps counting (count > cap is the overflow the caller reports).
typedef struct {
  int have, ca, ce, cursor, count, cap;
} sq_norm_stream;

SQ_FN void sq_norm_stream_init(sq_norm_stream* n, int cap) {
  n->have = 0;
  n->ca = 0;
  n->ce = 0;
  n->cursor = SQ_SP_INT_MIN;
  n->count = 0;
  n->cap = cap;
}

SQ_FN void sq_norm_stream_flush(sq_norm_stream* n, SQ_GLOBAL int* tiles) {
  if (!n->have) return;
  int s = n->ca & ~15;
  if (s < n->cursor) s = n->cursor;
  while (s < n->ce) {
    if (n->count < n->cap) tiles[n->count] = s;
    n->count += 1;
    s += SQ_SP_TILE;
  }
  n->cursor = s;
  n->have = 0;
}

SQ_FN void sq_norm_stream_add(sq_norm_stream* n, SQ_GLOBAL int* tiles, int a, int e) {
  if (a >= e) return;
  if (n->have && a <= n->ce) {
    if (e > n->ce) n->ce = e;
    return;
  }
  sq_norm_stream_flush(n, tiles);
  n->have = 1;
  n->ca = a;
  n->ce = e;
}

// Step 4 for columns already ascending and duplicate-free (identity order, causal: visible iff
// col <= p1): keeps those < lk, <= p1 and outside every tile; returns the count (slots past cap
// not written).
SQ_FN int sq_norm_stream_columns(SQ_CONST_GLOBAL int* cols, int ncols, SQ_CONST_GLOBAL int* tiles,
                                 int ntiles, int lk, int p1, SQ_GLOBAL int* out, int cap) {
  int t = 0, count = 0;
  for (int i = 0; i < ncols; ++i) {
    const int c = cols[i];
    if (c >= lk || c > p1) break;
    while (t < ntiles && tiles[t] + SQ_SP_TILE <= c) ++t;
    if (t < ntiles && tiles[t] <= c) continue;
    if (count < cap) out[count] = c;
    ++count;
  }
  return count;
}

SQ_END_NAMESPACE

#endif  // SPARQ_SPARSE_SELECT_H
