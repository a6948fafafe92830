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
