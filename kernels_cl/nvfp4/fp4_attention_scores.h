// fp4_attention_scores.h — the scores of one step of kernels_cl/nvfp4/fp4_attention.cl:
// S[e] of row r, keys 16q .. 16q+15 of the step (invisible: -inf), in the order of that file's
// banner: S_j = delta_j (0 without delta), then S_j = S_j + T_g for g = 0..D/16-1. The integer
// group dots are exact, so the MMA path (FP4_MMA 1, 2: fp4_mma.h) and the portable loops give
// the same bits. OpenCL C only; FP4_SCORES() expands inside the kernel's step loop and uses its
// variables (lid, r, q, row0, row_end, bh, lk, delta arguments, drow, the staged tiles,
// FP4_VIS / FP4_KEY; MMA: lane layout, Q fragments, sco, xa, xb).
#ifndef SPARQ_NVFP4_FP4_ATTENTION_SCORES_H
#define SPARQ_NVFP4_FP4_ATTENTION_SCORES_H

static inline int fp4_dot16(__local const char* a, __local const char* b) {
  int s = 0;
  for (int e = 0; e < 16; ++e) s += (int)a[e] * (int)b[e];
  return s;
}

#if FP4_MMA
#if FP4_MMA == 2
// The emulated MMA reads every lane's published fragments (fp4_mma.h).
#define FP4_PUBLISH_QK_FRAGMENTS()                                           \
  for (int g = 0; g < G; ++g) {                                              \
    xa[(lid * XA_SLOTS + g) * 2] = qa0[g];                                   \
    xa[(lid * XA_SLOTS + g) * 2 + 1] = qa1[g];                               \
    for (int nt = 0; nt < 4; ++nt)                                           \
      xb[lid * XB_SLOTS + nt * G + g] =                                      \
          fp4_pack4(ktw + (32 * whalf + 8 * nt + fg) * D + 16 * g + 4 * ft); \
  }                                                                          \
  barrier(CLK_LOCAL_MEM_FENCE)
#else
#define FP4_PUBLISH_QK_FRAGMENTS()
#endif
// The group loop of a score slot pair; TERM: FP4_MMA_TERM, or FP4_MMA_TERM_N in a step whose
// scales are all nonzero (sflag: sbad[n & 1] == 0, fp4_attention_stage.h), where the zero-scale
// test never fires.
#define FP4_QK_GROUPS(TERM)                                            \
  for (int g = 0; g < G; ++g) {                                        \
    const uint kb0 = fp4_pack4(ktw + (kb + fg) * D + 16 * g + 4 * ft); \
    int4 I;                                                            \
    MMA16(I, qa0[g], qa1[g], kb0, g, nt* G + g)                        \
    s00 = s00 + TERM(I.x, qsc[ra * G + g], ksc[c0 * G + g]);           \
    s01 = s01 + TERM(I.y, qsc[ra * G + g], ksc[c1 * G + g]);           \
    s10 = s10 + TERM(I.z, qsc[rb * G + g], ksc[c0 * G + g]);           \
    s11 = s11 + TERM(I.w, qsc[rb * G + g], ksc[c1 * G + g]);           \
  }
#if FP4_FORMS & FP4_F_SFLAG
#define FP4_QK_TERMS()            \
  if (!sbad[n & 1]) {             \
    FP4_QK_GROUPS(FP4_MMA_TERM_N) \
  } else {                        \
    FP4_QK_GROUPS(FP4_MMA_TERM)   \
  }
#else
#define FP4_QK_TERMS() FP4_QK_GROUPS(FP4_MMA_TERM)
#endif
// Warp: rows 16*slab.., keys 32*whalf + 8nt + (2ft, 2ft+1) for nt = 0..3, into sco; then each
// work-item reads its row's 16 slots.
#define FP4_SCORES()                                                                               \
  FP4_PUBLISH_QK_FRAGMENTS();                                                                      \
  {                                                                                                \
    for (int nt = 0; nt < 4; ++nt) {                                                               \
      const int kb = 32 * whalf + 8 * nt;                                                          \
      const int ra = 16 * slab + fg, rb = ra + 8;                                                  \
      const int ia = row0 + ra < row_end ? row0 + ra : row0;                                       \
      const int ib = row0 + rb < row_end ? row0 + rb : row0;                                       \
      __global const float* da =                                                                   \
          has_delta ? delta + (bh * delta_nblk + ia / delta_rows - delta_blk0) * (long)lk : delta; \
      __global const float* db =                                                                   \
          has_delta ? delta + (bh * delta_nblk + ib / delta_rows - delta_blk0) * (long)lk : delta; \
      const int c0 = kb + 2 * ft, c1 = c0 + 1;                                                     \
      const int jc0 = FP4_KEY(c0), jc1 = FP4_KEY(c1);                                              \
      float s00 = 0.0f, s01 = 0.0f, s10 = 0.0f, s11 = 0.0f;                                        \
      if (has_delta) {                                                                             \
        if (jc0 >= 0 && jc0 < lk) s00 = da[jc0], s10 = db[jc0];                                    \
        if (jc1 >= 0 && jc1 < lk) s01 = da[jc1], s11 = db[jc1];                                    \
      }                                                                                            \
      FP4_QK_TERMS()                                                                               \
      sco[ra * 64 + c0] = s00;                                                                     \
      sco[ra * 64 + c1] = s01;                                                                     \
      sco[rb * 64 + c0] = s10;                                                                     \
      sco[rb * 64 + c1] = s11;                                                                     \
    }                                                                                              \
  }                                                                                                \
  barrier(CLK_LOCAL_MEM_FENCE);                                                                    \
  for (int e = 0; e < 16; ++e) S[e] = FP4_VIS(16 * q + e) ? sco[r * 64 + 16 * q + e] : -INFINITY
#else
// One work-item: its row's 16 slots, each a sequential chain over the groups.
#define FP4_SCORES()                                                                     \
  for (int e = 0; e < 16; ++e) {                                                         \
    const int t = 16 * q + e, j = FP4_KEY(t);                                            \
    float s = -INFINITY;                                                                 \
    if (FP4_VIS(t)) {                                                                    \
      s = has_delta ? drow[j] : 0.0f;                                                    \
      for (int g = 0; g < G; ++g)                                                        \
        s = s + sq_fp4_group_term(fp4_dot16(qtw + r * D + 16 * g, ktw + t * D + 16 * g), \
                                  qsc[r * G + g], ksc[t * G + g]);                       \
    }                                                                                    \
    S[e] = s;                                                                            \
  }
#endif

#endif  // SPARQ_NVFP4_FP4_ATTENTION_SCORES_H
