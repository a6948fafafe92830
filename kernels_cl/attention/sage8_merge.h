// sage8_merge.h — the chunk epilogue of kernels_cl/attention/sage8.cl (attention/sage8_common.h,
// attention_common.h's sq_att_merge_*): at a chunk's end the row's owners fold the chunk state C
// = (O / l, m + log2 l) into the merge weights and the merged lse and publish the weights; after
// the next barrier each work-item merges its O registers into R and restarts O; after the walk
// R is the output (0 for a row that sees no key). OpenCL C only; the macros expand inside the
// kernel and use its variables (lid, own, side, chunk_end, m_own, l_own, lse_r, o, o_r, mw_*).
#ifndef SPARQ_ATTENTION_SAGE8_MERGE_H
#define SPARQ_ATTENTION_SAGE8_MERGE_H

// R = merge(R, C) for this work-item's O registers (rows rg + 8kk, channels cg + 16t), with the
// weights the rows' owners published at the chunk's end; O restarts at 0 (a fresh chunk).
#define MERGE_CHUNK()                                                     \
  do {                                                                    \
    const int rg_ = lid >> 4;                                             \
    for (int kk = 0; kk < 8; ++kk) {                                      \
      const int row = rg_ + 8 * kk;                                       \
      SqAttMerge w;                                                       \
      w.wa = mw_wa[row];                                                  \
      w.wb = mw_wb[row];                                                  \
      w.s = mw_s[row];                                                    \
      w.mode = mw_mode[row];                                              \
      w.lse = 0.0f; /* not read by sq_att_merge_out */                    \
      const float lc = mw_l[row];                                         \
      for (int t = 0; t < DH / 16; ++t) {                                 \
        const int x = kk * (DH / 16) + t;                                 \
        o_r[x] = sq_att_merge_out(w, o_r[x], sq_att_chunk_out(o[x], lc)); \
        o[x] = 0.0f;                                                      \
      }                                                                   \
    }                                                                     \
  } while (0)

// The chunk's state of row `own` into the merge weights (published by side 0); a fresh state.
#define SAGE8_CLOSE_CHUNK()                                                                      \
  if (chunk_end) { /* the chunk's state C = (O / l, m + log2 l) merges into R after a barrier */ \
    const SqAttMerge w = sq_att_merge_weights(lse_r, sq_att_chunk_lse(m_own, l_own));            \
    lse_r = w.lse;                                                                               \
    if (side == 0) {                                                                             \
      mw_wa[own] = w.wa;                                                                         \
      mw_wb[own] = w.wb;                                                                         \
      mw_s[own] = w.s;                                                                           \
      mw_l[own] = l_own;                                                                         \
      mw_mode[own] = w.mode;                                                                     \
    }                                                                                            \
    m_own = sq_att_neg_inf();                                                                    \
    l_own = 0.0f;                                                                                \
  }

// out = R: rows rg + 8kk of the block, channels cg + 16t.
#define SAGE8_STORE_OUT()                                                                       \
  __global float* ob = out + (((long)b * hq + h) * lq + r0) * DH;                               \
  {                                                                                             \
    const int rg = lid >> 4, cg = lid & 15;                                                     \
    for (int kk = 0; kk < 8; ++kk) {                                                            \
      const int row = rg + 8 * kk;                                                              \
      if (row < nrows)                                                                          \
        for (int t = 0; t < DH / 16; ++t) ob[row * DH + cg + 16 * t] = o_r[kk * (DH / 16) + t]; \
    }                                                                                           \
  }

#endif  // SPARQ_ATTENTION_SAGE8_MERGE_H
