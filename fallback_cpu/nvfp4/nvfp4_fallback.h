// Bit-exact C++ executors of kernels_cl/nvfp4/*.cl (same shared headers, same orders).
#pragma once
#include <cstdint>

namespace sparq::fallback::nvfp4 {

// fp4_quant.cl: fp4_quantize_rows. x [BH, L, D]; mean [BH, nblk, D] or null (mean_rows 0).
void quantize_rows(const float* x, const float* mean, int mean_rows, int nblk,
                   std::int64_t bh_count, int L, int D, std::uint8_t* codes, std::uint8_t* scales);
// fp4_quant.cl: fp4_quantize_tokens. x [BH, L, D] -> codes [BH, D, L64/2], scales [BH, D, L64/16].
void quantize_tokens(const float* x, std::int64_t bh_count, int L, int L64, int D,
                     std::uint8_t* codes, std::uint8_t* scales);

// fp4_attention.cl with FP4_SPARSE 1: the steps of a SparseIndex row (specs/sparse_attention.md
// §2; arrays as in SparseIndex, row (b * hi_n + hi) * nqb + qb, hi = share ? h / G : h).
struct Fp4SparseSteps {
  const std::int32_t *tcount = nullptr, *tstart = nullptr, *ccount = nullptr, *cidx = nullptr;
  const std::int32_t *qpos = nullptr, *kpos = nullptr;  // null: identity order
  int hi_n = 0, max_tiles = 0, max_cols = 0;
  bool share = false;
  int off = 0;               // Lk - Lq
  int sink = 0, window = 0;  // token A-shape mask when window > 0
};

// fp4_attention.cl: one call over all (b, h, rows). Pointers to whole contiguous tensors.
struct Fp4AttentionProblem {
  const std::uint8_t *qc = nullptr, *qs = nullptr;  // [B, Hq, Lq, D/2], [B, Hq, Lq, D/16]
  const std::uint8_t *kc = nullptr, *ks = nullptr;  // [B, Hkv, Lk, D/2], [.., D/16]
  const std::uint8_t *vc = nullptr, *vs = nullptr;  // [B, Hkv, D, Lk64/2], [.., Lk64/16]
  const float* delta = nullptr;                     // [B, Hq, ceil(Lq/delta_rows), Lk] or null
  int delta_rows = 128;  // query rows per delta row (128, or Lq for per-head smoothing)
  int delta_blk0 = 0;    // delta holds the rows of query blocks [delta_blk0, +delta_nblk)
  int delta_nblk = 0;
  int row_begin = 0, row_end = 0;  // the query rows computed (others are left untouched)
  float* out = nullptr;            // [B, Hq, Lq, D]
  int batch = 0, hq = 0, hkv = 0, lq = 0, lk = 0, lk64 = 0, d = 0;
  bool causal = false;
  float c = 0.0f;
  const Fp4SparseSteps* sparse = nullptr;  // null: dense (every key, causal prefix)
};
void fp4_attention(const Fp4AttentionProblem& p);

}  // namespace sparq::fallback::nvfp4
