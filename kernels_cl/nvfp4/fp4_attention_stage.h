// fp4_attention_stage.h — the loads of kernels_cl/nvfp4/fp4_attention.cl: the block's Q rows
// (twice values, scales, MMA A fragments) and each step's slot keys and K/V tiles, decoded from
// packed NVFP4 into local memory or registers. Loads only: every value staged is the exact
// decode of one stored code (zero where a slot holds no key), so no arithmetic order lives here.
// OpenCL C only; included by that kernel after ROWS, WG, D, G and FP4_SLOT_KEY's mode are set.
// The macros expand inside the kernel and use its variables (lid, row0, row_end, bh, lq, kvh,
// lk, lk64, j0, is_tile, the packed arguments and the local tiles; FP4_SLOT_KEY for the slots).
#ifndef SPARQ_NVFP4_FP4_ATTENTION_STAGE_H
#define SPARQ_NVFP4_FP4_ATTENTION_STAGE_H

// Q rows of the block: twice values (portable path) and scales (rows >= Lq: zeros). The MMA
// path stages Q and V scales through FP4_S4 (times 0.25 with the fold form, fp4_mma.h).
#if FP4_MMA
#define FP4_QS4(s) FP4_S4(s)
#else
#define FP4_QS4(s) (s)
#endif
#define FP4_STAGE_Q_TWICE()                                                                  \
  for (int idx = lid; idx < ROWS * (D / 2); idx += WG) {                                     \
    const int rr = idx / (D / 2), k2 = idx % (D / 2);                                        \
    const uint byte = row0 + rr < row_end ? qc[((bh * lq) + row0 + rr) * (D / 2) + k2] : 0u; \
    qtw[rr * D + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));                             \
    qtw[rr * D + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));                         \
  }
#define FP4_STAGE_Q_SCALES()                                                          \
  for (int idx = lid; idx < ROWS * G; idx += WG) {                                    \
    const int rr = idx / G;                                                           \
    qsc[idx] = row0 + rr < row_end                                                    \
                   ? FP4_QS4(sq_e4m3_decode(qs[(bh * lq + row0 + rr) * G + idx % G])) \
                   : 0.0f;                                                            \
  }

// MMA path: Q fragments qa0, qa1 for all groups, rows 16*slab + fg (+8), elements
// 16g + 4ft .. +3 (declares them).
#define FP4_LOAD_Q_FRAGMENTS()                                                 \
  uint qa0[G], qa1[G];                                                         \
  for (int g = 0; g < G; ++g) {                                                \
    uint w0 = 0u, w1 = 0u;                                                     \
    const int ra = row0 + 16 * slab + fg, rb = ra + 8;                         \
    for (int e = 0; e < 4; e += 2) {                                           \
      const int k2 = (16 * g + 4 * ft + e) / 2;                                \
      const uint ba = ra < row_end ? qc[((bh * lq) + ra) * (D / 2) + k2] : 0u; \
      const uint bb = rb < row_end ? qc[((bh * lq) + rb) * (D / 2) + k2] : 0u; \
      w0 |= ((uint)(sq_e2m1_twice(sq_fp4_lo(ba)) & 255) |                      \
             ((uint)(sq_e2m1_twice(sq_fp4_hi(ba)) & 255) << 8))                \
            << (8 * e);                                                        \
      w1 |= ((uint)(sq_e2m1_twice(sq_fp4_lo(bb)) & 255) |                      \
             ((uint)(sq_e2m1_twice(sq_fp4_hi(bb)) & 255) << 8))                \
            << (8 * e);                                                        \
    }                                                                          \
    qa0[g] = w0;                                                               \
    qa1[g] = w1;                                                               \
  }

// Sparse: the key of each slot of the step (-1: none) and its position.
#define FP4_STAGE_SLOTS()                                          \
  if (lid < 64) {                                                  \
    const int j = FP4_SLOT_KEY(lid);                               \
    kidx[lid] = j;                                                 \
    kps[lid] = j < 0 ? 0 : (has_pos ? kpos[(long)b * lk + j] : j); \
  }

// The two twice values of a packed byte at p, p + 1 (p even). FP4_F_LUT (lut): one 16-bit load
// from a 256-entry table of exactly those pairs (built by FP4_BUILD_LUT, one entry per
// work-item, before the step loop's first barrier) and one 16-bit store.
#if FP4_FORMS & FP4_F_LUT
#define FP4_BUILD_LUT()                                                        \
  tw2_lut[lid] = (ushort)(((uint)sq_e2m1_twice(sq_fp4_lo((uint)lid)) & 255u) | \
                          (((uint)sq_e2m1_twice(sq_fp4_hi((uint)lid)) & 255u) << 8))
#define FP4_PUT_TW2(p, byte) (*(__local ushort*)(p) = tw2_lut[(byte)&255u])
#else
#define FP4_BUILD_LUT()
#define FP4_PUT_TW2(p, byte)                       \
  do {                                             \
    (p)[0] = (char)sq_e2m1_twice(sq_fp4_lo(byte)); \
    (p)[1] = (char)sq_e2m1_twice(sq_fp4_hi(byte)); \
  } while (0)
#endif

// K rows of the slots (no key, or keys >= Lk: zero codes and scales); V: a tile's tokens
// (padded to Lk64 by the format; tokens past Lk64: zero), or the columns' tokens.
#define FP4_STAGE_KV()                                                                           \
  for (int idx = lid; idx < 64 * (D / 2); idx += WG) {                                           \
    const int key = idx / (D / 2), k2 = idx % (D / 2);                                           \
    const int j = FP4_SLOT_KEY(key);                                                             \
    const uint byte = j >= 0 && j < lk ? kc[((long)kvh * lk + j) * (D / 2) + k2] : 0u;           \
    FP4_PUT_TW2(ktw + key * D + 2 * k2, byte);                                                   \
  }                                                                                              \
  for (int idx = lid; idx < 64 * G; idx += WG) {                                                 \
    const int j = FP4_SLOT_KEY(idx / G);                                                         \
    ksc[idx] = j >= 0 && j < lk ? sq_e4m3_decode(ks[((long)kvh * lk + j) * G + idx % G]) : 0.0f; \
  }                                                                                              \
  if (is_tile) {                                                                                 \
    for (int idx = lid; idx < D * 32; idx += WG) {                                               \
      const int d = idx >> 5, k2 = idx & 31;                                                     \
      const uint byte =                                                                          \
          j0 + 2 * k2 < lk64 ? vc[((long)kvh * D + d) * (lk64 / 2) + j0 / 2 + k2] : 0u;          \
      FP4_PUT_TW2(vtw + d * 64 + 2 * k2, byte);                                                  \
    }                                                                                            \
    for (int idx = lid; idx < D * 4; idx += WG) {                                                \
      const int d = idx >> 2, vg = j0 / 16 + (idx & 3);                                          \
      vsc[idx] = vg < lk64 / 16                                                                  \
                     ? FP4_QS4(sq_e4m3_decode(vs[((long)kvh * D + d) * (lk64 / 16) + vg]))       \
                     : 0.0f;                                                                     \
    }                                                                                            \
  } else {                                                                                       \
    for (int idx = lid; idx < D * 64; idx += WG) {                                               \
      const int d = idx >> 6, j = FP4_SLOT_KEY(idx & 63);                                        \
      const uint byte = j >= 0 ? vc[((long)kvh * D + d) * (lk64 / 2) + j / 2] : 0u;              \
      vtw[idx] = (char)sq_e2m1_twice(j & 1 ? sq_fp4_hi(byte) : sq_fp4_lo(byte));                 \
    }                                                                                            \
  }

// sflag (MMA path, FP4_F_SFLAG): per-step work-group flags in local memory, sbad[n & 1]: a
// scale the step's scores use is ±0 (a Q scale of a row < row_end, or a K scale of a key < Lk;
// the other slots' scores are never read); vbad[n & 1]: a V scale of the tile is not > 0.
// Set by the work-items that stage those scales (stores of the same value); lid 0 clears the
// next step's pair (read by step n - 1, which ended before this step's first barrier).
#if FP4_MMA && (FP4_FORMS & FP4_F_SFLAG)
#define FP4_FLAGS_INIT()                                   \
  int qzero = 0;                                           \
  for (int idx = lid; idx < ROWS * G; idx += WG)           \
    qzero |= row0 + idx / G < row_end && qsc[idx] == 0.0f; \
  if (lid == 0) sbad[0] = vbad[0] = 0
#define FP4_FLAGS_STEP()                                                    \
  {                                                                         \
    int kz = qzero, vz = 0;                                                 \
    for (int idx = lid; idx < 64 * G; idx += WG) {                          \
      const int j = FP4_SLOT_KEY(idx / G);                                  \
      kz |= j >= 0 && j < lk && ksc[idx] == 0.0f;                           \
    }                                                                       \
    if (is_tile)                                                            \
      for (int idx = lid; idx < D * 4; idx += WG) vz |= !(vsc[idx] > 0.0f); \
    if (lid == 0) sbad[(n + 1) & 1] = vbad[(n + 1) & 1] = 0;                \
    if (kz) sbad[n & 1] = 1;                                                \
    if (vz) vbad[n & 1] = 1;                                                \
  }
#else
#define FP4_FLAGS_INIT()
#define FP4_FLAGS_STEP()
#endif

// Sparse: a column chunk's V scale codes [d][slot] go where the K tile was (no longer read).
#define FP4_STAGE_COLUMN_V_SCALES()                                                       \
  if (!is_tile)                                                                           \
    for (int idx = lid; idx < D * 64; idx += WG) {                                        \
      const int d = idx >> 6, j = kidx[idx & 63];                                         \
      ktw[idx] = j >= 0 ? (char)vs[((long)kvh * D + d) * (lk64 / 16) + j / 16] : (char)0; \
    }

#endif  // SPARQ_NVFP4_FP4_ATTENTION_STAGE_H
