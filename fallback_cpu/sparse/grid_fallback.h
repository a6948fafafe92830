// Fallback of kernels_cl/sparse/grid.cl (MMInference grid head index, steps 4-7): the same shared
// per-row code (sparse/grid_build.h). Arrays as the kernel's arguments (contiguous, batch-major).
#pragma once
#include <cstdint>

#include "sparse_fallback.h"

namespace sparq::fallback::sparse {

// out [B, H, nblk, D]: mean of x[b][h][perm[b][n]] over permuted 64-row blocks.
void grid_pool(const In& x, const std::int32_t* perm, float* out, int B, int H, int L, int D);

struct GridSelectProblem {
  const float *qbar = nullptr, *kbar = nullptr;
  const std::int32_t *kbmin = nullptr, *qpos = nullptr, *kpos = nullptr, *kinv = nullptr;
  const std::int32_t *lines = nullptr, *nlines = nullptr;  // [rows, max_lines], [rows]
  int max_lines = 0;
  int B = 0, Hi = 0, Hq = 0, Hkv = 0, nqb = 0, nkb = 0, D = 0, top_k = 0, lq = 0, lk = 0;
  bool share = false;
};
// Returns the OR of the rows' SQ_NORM_* codes.
int grid_select(const GridSelectProblem& p, const IndexOut& o);

}  // namespace sparq::fallback::sparse
