// decode_flat.h — the compile-time layout of decode_flat.cl (from DF_SPAN, DF_KPI, DF_GATE and
// decode_bw.h's DB_* macros) and its helper macros, which expand inside attention_rows and use its
// variables (lid, j0, jlim, b, k0, mode, the page table; nrows, rr0, lqd, lq, lk, causal; the
// P.V work-item's vcol, vst, pt, vl, acc); OpenCL C only.
#ifndef SPARQ_ATTENTION_DECODE_FLAT_H
#define SPARQ_ATTENTION_DECODE_FLAT_H

#include "attention/decode_bw.h"  // P.V layout, LOAD_V / LOAD_P, cp16 / cp4, decode_vec.h

#ifndef DF_SPAN
#define DF_SPAN 256
#endif
#ifndef DF_KPI
#define DF_KPI 1
#endif
#define SPAN DF_SPAN
#define NTL (SPAN / BN)             // tiles per span
#define FROW (VR + 1)               // uint4 per V row in local memory (padded: conflict-free)
#define KPW ((SPAN + NT - 1) / NT)  // keys per work-item per span
#define KPI (DF_KPI < KPW ? DF_KPI : KPW)
#define PARTS (NT > ROWS * NTL ? NT / (ROWS * NTL) : 1)  // partial maxima per (row, tile)
#define PKS (NT / ROWS)  // key stride of a work-item's probability items in a tile (<= BN)
#if SPAN % BN != 0 || SQ_ATT_CHUNK % SPAN != 0 || KPW % KPI != 0
#error "decode_flat.cl: DF_SPAN / DF_KPI do not tile a chunk"
#endif
#define VEND(r) ((r) < nrows ? sq_att_visible_end((rr0 + (r)) % lqd, lq, lk, causal) : 0)
// q' reads of the score loop: volatile, so the compiler does not hoist all ROWS * DH values out of
// the loop over a work-item's keys into registers (spills).
#define QLD4(p) (*(volatile __local const float4*)(p))
// DF_GATE (GPUs): the (row, tile) loops run on the work-items that own an item only; off, every
// work-item runs them with only the stores predicated (PoCL: see attention_common.h).
#ifndef DF_GATE
#define DF_GATE DB_UNROLL
#endif
#define GATE(cond) (!DF_GATE || (cond))
// Key x = lid + NT u of the span: index j, whether it is loaded, its page (or sequence) and slot.
#define KEY_AT(u)                                                                     \
  const int x = lid + NT * (u), j = j0 + x;                                           \
  const bool in = x < SPAN && j < jlim;                                               \
  const int pg = !in ? 0 : mode == 2 ? pages[pt_off + b * pt_st + j / page_size] : b; \
  const int sl = !in ? 0 : mode == 2 ? j % page_size : (int)k0 + j;

// DF_KLOC=1: K rows also go through local memory (copied with the V rows, cp.async where V is),
// so a span's loads are all issued before its first score; 0: K rows loaded into registers.
#ifndef DF_KLOC
#define DF_KLOC 0
#endif
#if ASYNC && DB_ASYNC_PTX
#define CP_WAIT1() DB_ASM volatile("cp.async.wait_group 1;" ::: "memory")
#else
#define CP_WAIT1()
#endif
// Copies key x's row of `src` (and its int8 scale) into row x of `dst` / `dsc` (zeros and scale 1
// for a key past jlim; nothing past the span); inside KEY_AT's scope.
#define COPY_ROW(dst, dsc, src, off, sb, sr, sh, sc, s_off, s_sb, s_sr, s_sh)      \
  {                                                                                \
    __local uint4* rd = (dst) + x * FROW;                                          \
    if (in) {                                                                      \
      __global const uint4* rg_ =                                                  \
          (__global const uint4*)(src) + ROW(off, sb, sr, sh, pg, sl) / DV_VEC;    \
      UNROLL for (int i = 0; i < VR; ++i) cp16(rd + i, rg_ + i);                   \
      if (KV_ES == 1) cp4((dsc) + x, (sc) + ROW(s_off, s_sb, s_sr, s_sh, pg, sl)); \
    } else if (x < SPAN) {                                                         \
      UNROLL for (int i = 0; i < VR; ++i) rd[i] = (uint4)(0u);                     \
      (dsc)[x] = 1.0f;                                                             \
    }                                                                              \
  }

// One key jj of a tile in P.V: V[jj][cols] read once for the work-item's RPT rows; `masked`:
// rows whose visible prefix ends before jj keep their acc.
#define PV_STEP(masked)                                           \
  {                                                               \
    const float scl = vst[jj];                                    \
    float vv[CW];                                                 \
    LOAD_V(vv, vcol + jj * (FROW * DV_VEC), scl);                 \
    float pr[RPT];                                                \
    LOAD_P(pr, pt + jj * ROWS);                                   \
    UNROLL for (int kk = 0; kk < RPT; ++kk) {                     \
      UNROLL for (int cc = 0; cc < CW; ++cc) {                    \
        const float y = fma(pr[kk], vv[cc], acc[kk][cc]);         \
        acc[kk][cc] = (masked) && jj >= vl[kk] ? acc[kk][cc] : y; \
      }                                                           \
    }                                                             \
  }

#endif  // SPARQ_ATTENTION_DECODE_FLAT_H
