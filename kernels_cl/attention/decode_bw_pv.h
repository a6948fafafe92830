// decode_bw_pv.h — P.V and the row sums of one tile of kernels_cl/attention/decode_bw.cl, in the
// order of attention_common.h: per row, acc[d] = acc[d] * alpha, then for keys j ascending
// acc[d] = fma(p_j, V[j][d], acc[d]) (keys past the row's visible prefix are never multiplied)
// and r = r + p_j; l = fma(l, alpha, r). P.V work-item (column group cg, row group rg) reads
// V[j][cols] once per key for all of its RPT rows. OpenCL C only; DB_PV_TILE() expands inside
// the kernel's tile loop after decode_bw.h's layout and uses its variables (nrows, st_vlim,
// st_alpha, pp, vcur, vsccur, v_dt, acc, l_r, cg, rg).
#ifndef SPARQ_ATTENTION_DECODE_BW_PV_H
#define SPARQ_ATTENTION_DECODE_BW_PV_H

#include "attention/decode_bw.h"

// One key jj for the work-item's rows; masked: keys at or past a row's visible prefix leave
// its acc unchanged.
#define PV_STEP(masked)                                           \
  {                                                               \
    const float scl = vsccur[jj];                                 \
    float vv[CW];                                                 \
    LOAD_V(vv, vcol + jj * (KROW * DV_VEC), scl);                 \
    float pr[RPT];                                                \
    LOAD_P(pr, pp + jj * ROWS + rg * RPT);                        \
    UNROLL for (int kk = 0; kk < RPT; ++kk) {                     \
      const float p = pr[kk];                                     \
      rs[kk] = rs[kk] + p;                                        \
      UNROLL for (int cc = 0; cc < CW; ++cc) {                    \
        const float t = fma(p, vv[cc], acc[kk][cc]);              \
        acc[kk][cc] = (masked) && jj >= vl[kk] ? acc[kk][cc] : t; \
      }                                                           \
    }                                                             \
  }

// The work-item's acc chains and row sums over the tile, then l.
#define DB_PV_TILE()                                                                          \
  {                                                                                           \
    int vl[RPT], vmin = BN, vmax = 0;                                                         \
    float rs[RPT];                                                                            \
    UNROLL                                                                                    \
    for (int kk = 0; kk < RPT; ++kk) {                                                        \
      const int r = rg * RPT + kk;                                                            \
      vl[kk] = st_vlim[r];                                                                    \
      if (r < nrows) { /* padding rows (never stored) do not bound the key loops */           \
        vmin = min(vmin, vl[kk]);                                                             \
        vmax = max(vmax, vl[kk]);                                                             \
      }                                                                                       \
      const float al = st_alpha[r];                                                           \
      UNROLL                                                                                  \
      for (int cc = 0; cc < CW; ++cc) acc[kk][cc] = acc[kk][cc] * al;                         \
      rs[kk] = 0.0f;                                                                          \
    }                                                                                         \
    vmin = min(vmin, vmax);                                                                   \
    __local const dv_raw* vcol = (__local const dv_raw*)vcur + cg * CW;                       \
    if (vmin == BN) { /* every key of the tile visible to every row (the common case) */      \
      UNROLL8                                                                                 \
      for (int jj = 0; jj < BN; ++jj) PV_STEP(false);                                         \
    } else {                                                                                  \
      UNROLL8                                                                                 \
      for (int jj = 0; jj < vmin; ++jj) PV_STEP(false);                                       \
      for (int jj = vmin; jj < vmax; ++jj) PV_STEP(true);                                     \
    }                                                                                         \
    UNROLL                                                                                    \
    for (int kk = 0; kk < RPT; ++kk) l_r[kk] = fma(l_r[kk], st_alpha[rg * RPT + kk], rs[kk]); \
  }

#endif  // SPARQ_ATTENTION_DECODE_BW_PV_H
