// The host part of the MMInference grid builder (spec §7.3 steps 2, 3, 5; §7.4): from the probe's
// column mass, the stride of each video segment, the key and query permutations and each index
// row's line tiles. Everything here is a function of the probe's bits (computed by the device
// kernels or the fallback, bit-identical), so the plan is the same on every executor.
#pragma once
#include <cstdint>
#include <vector>

#include "sparse_builders.h"

namespace sparq::sparse_detail {

// Tokens-per-frame candidates when Grid::stride and the segment's frame_tokens are both 0.
constexpr std::int64_t kGridMinStride = 8, kGridMaxStride = 2048;

struct GridPlan {
  std::vector<std::int32_t> qperm, kperm, kinv, kbmin, qpos;  // [B, Lq], [B, Lk], [B, Lk],
                                                              // [B, nKB], [B, Lq]
  std::vector<std::int32_t> lines, nlines;                    // [rows, max_lines], [rows]
  int max_lines = 0;
  std::vector<std::int64_t> strides;  // [B, segments]: frame tokens used (0: left in order)
};

// Column mass of the probes: one group per query modality (boundary heads; ids ascending) or a
// single group (id -1, every query row) without boundary. v[g] is [B * Hi, Lk].
struct GridProbes {
  std::vector<std::int32_t> ids;
  std::vector<std::vector<float>> v;
};

// Validates a Grid pattern against the call (sparq::Error naming the field).
void check_grid(const Grid& pat, const BuildArgs& a);

// §7.3 step 2 on column mass v[0..Lk) for segment [s0, s1): for F = 8 .. min(2048, n / 2)
// ascending, M_F[phi] = sum over j in the segment with (j - s0) % F == phi of v[j] (j ascending,
// plain + from 0); score = sum of the ceil(F / 8) largest M_F (§4 order) in phase order; the
// largest score wins, ties to the smaller F. Returns 0 when no candidate exists (n < 16) or no
// score is > -inf (the segment then keeps its order).
std::int64_t choose_grid_stride(const float* v, std::int64_t s0, std::int64_t s1);

GridPlan grid_plan(const Grid& pat, const BuildArgs& a, const GridProbes& probes);

// Step 1: the vertical-slash probe's column mass v [B * Hi, Lk] (last min(64, Lq) queries,
// no forced columns).
std::vector<float> grid_probe_scores(Context& ctx, const Tensor& q, const Tensor& k,
                                     const BuildArgs& a);

// Steps 4, 6, 7 on the device or the fallback; the index gets qpos / kpos of the plan.
SparseIndex grid_select_index(Context& ctx, const Tensor& q, const Tensor& k, const BuildArgs& a,
                              const GridPlan& plan, int top_k);

// §7.4 (grid_boundary.cpp): per-modality probes, then grid_plan + grid_select_index.
SparseIndex build_grid_boundary(Context& ctx, const Tensor& q, const Tensor& k, const Grid& pat,
                                const BuildArgs& a);

}  // namespace sparq::sparse_detail
