// decode_bw_merge.h — the chunk epilogue of kernels_cl/attention/decode_bw.cl: at the end of a
// chunk each row's state C = (acc / l, m + log2 l) is merged into R (attention_common.h's
// sq_att_merge_*, chunks left to right); after the walk R is written: the output row (and lse),
// or this chunk's workspace entry (split, merged by merge.cl). OpenCL C only; the macros expand
// inside the kernel after decode_bw.h's layout and use its variables.
#ifndef SPARQ_ATTENTION_DECODE_BW_MERGE_H
#define SPARQ_ATTENTION_DECODE_BW_MERGE_H

#include "attention/decode_bw.h"

// Tile n ends a chunk: the rows' chunk states into R.
#define DB_MERGE_CHUNK()                                                                  \
  const bool chunk_end =                                                                  \
      n == n_end - 1 || (n & (SQ_ATT_TILES_PER_CHUNK - 1)) == SQ_ATT_TILES_PER_CHUNK - 1; \
  if (chunk_end) {                                                                        \
    UNROLL                                                                                \
    for (int kk = 0; kk < RPT; ++kk) {                                                    \
      const float l = l_r[kk];                                                            \
      const SqAttMerge w =                                                                \
          sq_att_merge_weights(lse_r[kk], sq_att_chunk_lse(st_m[rg * RPT + kk], l));      \
      UNROLL                                                                              \
      for (int cc = 0; cc < CW; ++cc)                                                     \
        o_r[kk][cc] = sq_att_merge_out(w, o_r[kk][cc], sq_att_chunk_out(acc[kk][cc], l)); \
      lse_r[kk] = w.lse;                                                                  \
    }                                                                                     \
  }

// R of the work-item's rows and columns: the output row, or the workspace entry (split).
#define DB_WRITE_R()                                                                               \
  UNROLL                                                                                           \
  for (int kk = 0; kk < RPT; ++kk) {                                                               \
    const int r = rg * RPT + kk;                                                                   \
    if (!active || r >= nrows) continue;                                                           \
    const int rr = rr0 + r, h = hk * group + rr / lqd, ii = rr % lqd;                              \
    UNROLL                                                                                         \
    for (int cc = 0; cc < CW; ++cc) {                                                              \
      const int col = cg * CW + cc;                                                                \
      if (split) {                                                                                 \
        const long ws_row = mode == 1 ? (q0 + ii) * hq + h : ((long)b * hq + h) * lq + ii;         \
        const long e = ws_row * ws_chunks + c_begin;                                               \
        ws_o[e * DH + col] = o_r[kk][cc];                                                          \
        if (col == 0) ws_lse[e] = lse_r[kk];                                                       \
      } else {                                                                                     \
        sq_att_store1(out, o_off + b * o_sb + (q0 + ii) * o_sr + h * o_sh + col, o_dt,             \
                      o_r[kk][cc]);                                                                \
        if (want_lse && col == 0) lse[l_off + b * l_sb + (q0 + ii) * l_sr + h * l_sh] = lse_r[kk]; \
      }                                                                                            \
    }                                                                                              \
  }

#endif  // SPARQ_ATTENTION_DECODE_BW_MERGE_H
