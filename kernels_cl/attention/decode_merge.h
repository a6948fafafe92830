// decode_merge.h — the chunk epilogue of kernels_cl/attention/decode.cl: at the end of a chunk
// each row's state C = (acc / l, m + log2 l) is merged into R (attention_common.h's
// sq_att_merge_*, chunks left to right); after the walk R is written: the output row (with the
// sink of SQ_ATT_HOOKS merged last) and lse, or this chunk's workspace entry (split: merge.cl
// merges the chunks and the sink). OpenCL C only; the macros expand inside the kernel and use its
// variables.
#ifndef SPARQ_ATTENTION_DECODE_MERGE_H
#define SPARQ_ATTENTION_DECODE_MERGE_H

// Component e of x (no private-memory indexing).
static inline float comp(float4 x, int e) {
  return e == 0 ? x.x : (e == 1 ? x.y : (e == 2 ? x.z : x.w));
}

// Tile n ends a chunk: row l published, then the rows' chunk states into R (P.V work split).
#define DECODE_MERGE_CHUNK()                                                               \
  const bool chunk_end =                                                                   \
      n == n_end - 1 || (n & (SQ_ATT_TILES_PER_CHUNK - 1)) == SQ_ATT_TILES_PER_CHUNK - 1;  \
  if (chunk_end && lid < ROWS) row_l[lid] = l_mine;                                        \
  barrier(CLK_LOCAL_MEM_FENCE);                                                            \
  if (chunk_end) {                                                                         \
    for (int kk = 0; kk < 4; ++kk) {                                                       \
      const int r = pv_r0 + kk;                                                            \
      const float l = row_l[r];                                                            \
      const SqAttMerge w = sq_att_merge_weights(lse_r[kk], sq_att_chunk_lse(row_m[r], l)); \
      o_r[kk].x = sq_att_merge_out(w, o_r[kk].x, sq_att_chunk_out(acc[kk].x, l));          \
      o_r[kk].y = sq_att_merge_out(w, o_r[kk].y, sq_att_chunk_out(acc[kk].y, l));          \
      o_r[kk].z = sq_att_merge_out(w, o_r[kk].z, sq_att_chunk_out(acc[kk].z, l));          \
      o_r[kk].w = sq_att_merge_out(w, o_r[kk].w, sq_att_chunk_out(acc[kk].w, l));          \
      lse_r[kk] = w.lse;                                                                   \
    }                                                                                      \
  }

// SQ_ATT_HOOKS: the sink (logit hk_head[Hq + h]) merged into R of row kk last (not in split mode).
#if SQ_ATT_HOOKS
#define DECODE_MERGE_SINK()                                                             \
  const SqAttMerge w = sq_att_merge_weights(lse_r[kk], hk_head[hq + h]); /* the sink */ \
  o_r[kk].x = sq_att_merge_out(w, o_r[kk].x, 0.0f);                                     \
  o_r[kk].y = sq_att_merge_out(w, o_r[kk].y, 0.0f);                                     \
  o_r[kk].z = sq_att_merge_out(w, o_r[kk].z, 0.0f);                                     \
  o_r[kk].w = sq_att_merge_out(w, o_r[kk].w, 0.0f);                                     \
  lse_r[kk] = w.lse
#else
#define DECODE_MERGE_SINK()
#endif

// R of the work-item's rows and columns: the output, or the workspace entry (split).
#define DECODE_WRITE_R()                                                                           \
  for (int kk = 0; kk < 4; ++kk) {                                                                 \
    const int r = pv_r0 + kk;                                                                      \
    if (!active || r >= nrows) continue;                                                           \
    const int rr = rr0 + r, h = hk * group + rr / lqd, i = rr % lqd;                               \
    if (split) {                                                                                   \
      const long ws_row = mode == 1 ? (q0 + i) * hq + h : ((long)b * hq + h) * lq + i;             \
      const long e = ws_row * ws_chunks + c_begin;                                                 \
      for (int x = 0; x < 4; ++x)                                                                  \
        if (pv_col + x < d) ws_o[e * d + pv_col + x] = comp(o_r[kk], x);                           \
      if (pv_col == 0) ws_lse[e] = lse_r[kk];                                                      \
    } else {                                                                                       \
      DECODE_MERGE_SINK();                                                                         \
      const long at = o_off + b * o_sb + (q0 + i) * o_sr + h * o_sh;                               \
      for (int x = 0; x < 4; ++x)                                                                  \
        if (pv_col + x < d) sq_att_store1(out, at + pv_col + x, o_dt, comp(o_r[kk], x));           \
      if (want_lse && pv_col == 0) lse[l_off + b * l_sb + (q0 + i) * l_sr + h * l_sh] = lse_r[kk]; \
    }                                                                                              \
  }

#endif  // SPARQ_ATTENTION_DECODE_MERGE_H
