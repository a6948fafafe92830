// fp4_attention_merge.h — the chunk epilogue of kernels_cl/nvfp4/fp4_attention.cl: at a step that
// closes a chunk, each row's chunk state (o_c = (l == 0) ? 0 : O_d / l, lse_c = (l == 0) ? -inf
// : mu + sq_log2(l)) is merged into R by attention_common.h's sq_att_merge_* (merge_states'
// formula, chunks left to right) and the state starts fresh; at the end, out_d = R's o_d.
// OpenCL C only; the macros expand inside the kernel and use its variables (close, O, l / lrow,
// mu_old / mu_l, R, lse_r, bh, lq, row0, row_end, i, out; MMA: the lane layout and, in
// FP4_CLOSE_CHUNK, the rows ra, rb declared by FP4_PV_UPDATE, fp4_attention_pv.h).
#ifndef SPARQ_NVFP4_FP4_ATTENTION_MERGE_H
#define SPARQ_NVFP4_FP4_ATTENTION_MERGE_H

#if FP4_MMA
// The chunk states of rows ra, rb into R; fresh states.
#define FP4_CLOSE_CHUNK()                                                                      \
  if (close) {                                                                                 \
    const SqAttMerge wa = sq_att_merge_weights(lse_r[0], sq_att_chunk_lse(mu_l[ra], lrow[0])); \
    const SqAttMerge wb = sq_att_merge_weights(lse_r[1], sq_att_chunk_lse(mu_l[rb], lrow[1])); \
    for (int nt = 0; nt < D / 16; ++nt) {                                                      \
      R[nt][0] = sq_att_merge_out(wa, R[nt][0], sq_att_chunk_out(O[nt][0], lrow[0]));          \
      R[nt][1] = sq_att_merge_out(wa, R[nt][1], sq_att_chunk_out(O[nt][1], lrow[0]));          \
      R[nt][2] = sq_att_merge_out(wb, R[nt][2], sq_att_chunk_out(O[nt][2], lrow[1]));          \
      R[nt][3] = sq_att_merge_out(wb, R[nt][3], sq_att_chunk_out(O[nt][3], lrow[1]));          \
      O[nt][0] = O[nt][1] = O[nt][2] = O[nt][3] = 0.0f;                                        \
    }                                                                                          \
    lse_r[0] = wa.lse;                                                                         \
    lse_r[1] = wb.lse;                                                                         \
    lrow[0] = lrow[1] = 0.0f;                                                                  \
  }
// out_d = R's o_d: channels (D/2)*whalf + 8nt + 2ft (+1) of rows fg and fg + 8 of the slab.
#define FP4_STORE_OUT()                                    \
  {                                                        \
    const int ra = row0 + 16 * slab + fg, rb = ra + 8;     \
    for (int nt = 0; nt < D / 16; ++nt) {                  \
      const int d0 = (D / 2) * whalf + 8 * nt + 2 * ft;    \
      if (ra < row_end) {                                  \
        __global float* o = out + (bh * lq + ra) * D + d0; \
        o[0] = R[nt][0];                                   \
        o[1] = R[nt][1];                                   \
      }                                                    \
      if (rb < row_end) {                                  \
        __global float* o = out + (bh * lq + rb) * D + d0; \
        o[0] = R[nt][2];                                   \
        o[1] = R[nt][3];                                   \
      }                                                    \
    }                                                      \
  }
#else
// The chunk state of row r (channels q * QD ..) into R; a fresh state.
#define FP4_CLOSE_CHUNK()                                                          \
  if (close) {                                                                     \
    const SqAttMerge w = sq_att_merge_weights(lse_r, sq_att_chunk_lse(mu_old, l)); \
    for (int dd = 0; dd < QD; ++dd) {                                              \
      R[dd] = sq_att_merge_out(w, R[dd], sq_att_chunk_out(O[dd], l));              \
      O[dd] = 0.0f;                                                                \
    }                                                                              \
    lse_r = w.lse;                                                                 \
    l = 0.0f;                                                                      \
  }
#define FP4_STORE_OUT()                                   \
  if (i < row_end) {                                      \
    __global float* o = out + (bh * lq + i) * D + q * QD; \
    for (int dd = 0; dd < QD; ++dd) o[dd] = R[dd];        \
  }
#endif

#endif  // SPARQ_NVFP4_FP4_ATTENTION_MERGE_H
