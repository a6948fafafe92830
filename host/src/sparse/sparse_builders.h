// The index builders behind sparq::build_index (internal). One overload of build() per pattern
// alternative of sparq::Pattern; a new pattern adds its alternative to the variant in
// sparq/sparse.h and one build() overload here (defined in its own .cpp).
#pragma once
#include <cstdint>

#include "sparse_common.h"

namespace sparq::sparse_detail {

// A validated build_index call.
struct BuildArgs {
  const char* op = "build_index";
  int B = 0, Hq = 0, Hkv = 0, Hi = 0, D = 0, nqb = 0;
  std::int64_t Lq = 0, Lk = 0, off = 0;
  bool causal = true;
  IndexSharing sharing = IndexSharing::per_q_head;
  int layer = -1;  // IndexOptions::layer (per-layer thresholds / per-head configs)
};

// An index under construction: its tensors allocated on ctx (tile_start/col_index
// uninitialized), metadata from `a`; checks the index bytes against the device's largest
// allocation first.
SparseIndex new_index(Context& ctx, const BuildArgs& a, int max_tiles, int max_cols);

// Throws sparq::Error(internal) for a nonzero SQ_NORM_* code (a builder bug).
void check_build_status(const char* op, int code);

SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const Dense& p,
                  const BuildArgs& a);
SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const AShape& p,
                  const BuildArgs& a);
SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const BlockSparse& p,
                  const BuildArgs& a);
// Dynamic builders (vertical_slash.cpp, xattention.cpp, per_head_config.cpp).
SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const VerticalSlash& p,
                  const BuildArgs& a);
SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const XAttention& p,
                  const BuildArgs& a);
SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const PerHeadConfig& p,
                  const BuildArgs& a);
// MMInference grid head and boundary heads (grid.cpp, grid_boundary.cpp).
SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const Grid& p,
                  const BuildArgs& a);

// The sparse kernel (sparse_attention.cpp): validates the call and the index, then
// execute_sparse_prefill (sparse_prefill_launch.h).
AttentionResult run_sparse_prefill(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                   const SparseIndex& x, const AttentionOptions& options);

}  // namespace sparq::sparse_detail
