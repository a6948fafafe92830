// MMInference token permutations (specs/sparse_attention.md §7.1-7.2; Li et al., arXiv
// 2504.16083): row gather/scatter of [B, H, L, D] tensors by a validated permutation, and the
// generators of the grid (stride) and modality permutations. Copies only: bit-exact by
// construction on every device and on the fallback.
//
// A permutation pi (int32 [B, L], or [B, Hg, L] per head group: head h uses group
// h / (H / Hg)) maps new index -> old: permute_rows gives Xp[b, h, n] = X[b, h, pi[n]];
// unpermute_rows gives O[b, h, pi[n]] = Op[b, h, n]. Positions travel with the rows:
// permuted_positions gives pos_p[n] = offset + pi[n].
#pragma once
#include <cstdint>
#include <vector>

#include "sparq/context.h"
#include "sparq/tensor.h"

namespace sparq {

// X [B, H, L, D] (f32/f16/bf16, D contiguous, any outer strides) -> contiguous [B, H, L, D].
SPARQ_API Tensor permute_rows(Context& ctx, const Tensor& x, const Tensor& perm);
SPARQ_API Tensor unpermute_rows(Context& ctx, const Tensor& x, const Tensor& perm);

// int32 [B, L] (or [B, Hg, L]): offset + perm[...], the positions of the permuted rows (qpos
// with offset = off = Lk - Lq for queries, kpos with offset 0 for keys).
SPARQ_API Tensor permuted_positions(Context& ctx, const Tensor& perm, std::int64_t offset = 0);

// A video segment [start, end) of frame_tokens tokens per frame (the last frame may be partial).
struct SPARQ_API VideoSegment {
  std::int64_t start = 0, end = 0;
  std::int64_t frame_tokens = 0;
};

// Grid permutation of length L (new -> old): inside each segment, token start + f*F + phi moves
// to phase-major order, sorted by (phi, f); tokens outside segments keep their place. Segments
// must be disjoint, inside [0, L), with frame_tokens >= 1.
SPARQ_API std::vector<std::int32_t> grid_permutation(std::int64_t length,
                                                     const std::vector<VideoSegment>& segments);

// Modality permutation (new -> old): a stable sort of the tokens by modality id ascending (text
// = 0 < vision = 1 by default); ids must be >= 0.
SPARQ_API std::vector<std::int32_t> modality_permutation(const std::vector<std::int32_t>& modality);

}  // namespace sparq
