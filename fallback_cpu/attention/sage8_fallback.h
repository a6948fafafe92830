// The CPU executor of kernels_cl/attention/sage8.cl (Precision::int8 attention on int8 tensors).
#pragma once
#include <cstdint>

namespace sparq::fallback {

// Tensors as in sage8.cl's arguments (contiguous): q8 [B,Hq,Lq,D] / sq [B,Hq,ceil(Lq/128)],
// k8 [B,Hkv,Lk,D] / sk [B,Hkv,ceil(Lk/64)], v8 [B,Hkv,D,Lk64] / sv [B,Hkv,D,Lk64/16], delta
// [B,Hq,delta_nblk,Lk] holding delta blocks [delta_blk0, ...) of delta_rows rows each (null: no
// Q smoothing). Computes output rows [row0, row1) of every (b, h) into out [B,Hq,Lq,D].
struct Sage8Problem {
  const std::int8_t *q8 = nullptr, *k8 = nullptr, *v8 = nullptr;
  const float *sq = nullptr, *sk = nullptr, *sv = nullptr, *delta = nullptr;
  std::int64_t delta_rows = 128, delta_blk0 = 0, delta_nblk = 1;
  float* out = nullptr;
  std::int64_t batch = 0, hq = 0, hkv = 0, d = 0, lq = 0, lk = 0, row0 = 0, row1 = 0;
  bool causal = false;
  float c = 0.0f;
};
void sage8_attention(const Sage8Problem& p);

// The tiles [j_begin, j_end) (j_begin a multiple of 64; keys >= j_end invisible) of row i of
// (b, h), folded into the state (m, l, o[D]) in sage8_common.h's order.
void sage8_walk(const Sage8Problem& p, std::int64_t b, std::int64_t h, std::int64_t i,
                std::int64_t j_begin, std::int64_t j_end, float& m, float& l, float* o);

// Output row i of (b, h) into orow[D]: the 4096-key chunk states of sage8_walk (a fresh state
// each; chunks past the row's visible end are empty) merged left to right (sq_att_merge_*).
// oc[D] is scratch.
void sage8_chunked_row(const Sage8Problem& p, std::int64_t b, std::int64_t h, std::int64_t i,
                       float* oc, float* orow);

// The executor of sage8_decode.cl: every row (Lq <= 127, delta [B,Hq,1,Lk] or null) as 4096-key
// chunk states merged left to right (row0 / row1 / delta_* are ignored).
void sage8_decode(const Sage8Problem& p);

// The SparseIndex of sparq/sparse.h (row (b * hi_rows + hi) * ceil(Lq / 64) + qb; hi = h or h / G
// when share); qpos/kpos null: identity order; sink/window: the exact A-shape token mask.
struct Sage8SparseIndex {
  const std::int32_t *tcount = nullptr, *tstart = nullptr, *ccount = nullptr, *cidx = nullptr;
  const std::int32_t *qpos = nullptr, *kpos = nullptr;
  int hi_rows = 0, max_tiles = 0, max_cols = 0, sink = 0, window = 0;
  bool share = false;
};
// The executor of sage8.cl / sage8_mma.cl with SAGE8_SPARSE=1 (attention/sage8_sparse.h).
void sage8_sparse_attention(const Sage8Problem& p, const Sage8SparseIndex& x);

}  // namespace sparq::fallback
