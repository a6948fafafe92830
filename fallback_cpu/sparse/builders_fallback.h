// The CPU executors of the dynamic index builders (vertical-slash, XAttention): bit-exact twins of
// kernels_cl/sparse/vertical_slash.cl and xattention.cl, running the same shared arithmetic
// (sparse/builder_math.h, sparse/sparse_select.h, common/exact_math.h) in the same defined order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/convert.h"

namespace sparq::fallback::sparse {

// A float tensor [B, H, L, D] as the executors read it: base bytes, dtype code (0 f32, 1 f16,
// 2 bf16), element strides of b, h, l (d contiguous).
struct QKView {
  const std::byte* p = nullptr;
  int dtype = 0;
  std::int64_t sb = 0, sh = 0, sl = 0;
  float at(std::int64_t b, std::int64_t h, std::int64_t l, std::int64_t d) const {
    const std::int64_t i = b * sb + h * sh + l * sl + d;
    if (dtype == 0) {
      float v;
      std::memcpy(&v, p + i * 4, 4);
      return v;
    }
    std::uint16_t u;
    std::memcpy(&u, p + i * 2, 2);
    return dtype == 1 ? cl_common::sq_f16_to_f32(u) : cl_common::sq_bf16_to_f32(u);
  }
};

// The output index arrays (contiguous, [B, Hi, nqb] and [B, Hi, nqb, max_*]).
struct BuilderIndexOut {
  std::int32_t *tile_count = nullptr, *tile_start = nullptr, *col_count = nullptr,
               *col_index = nullptr;
  int max_tiles = 0, max_cols = 0;
};

// vertical_slash.cpp. G = Hq / Hkv; gi = G with kv_group sharing, else 1 (Hi = Hq / gi).
struct VerticalSlashProblem {
  QKView q, k;
  int B = 0, Hq = 0, G = 1, gi = 1, D = 0;
  int Lq = 0, Lk = 0;
  float c = 0.0f;
  int V = 0, S = 0, forced_cols = 0, forced_diags = 0;
  BuilderIndexOut out;
  // Optional: the per-index-head scores v[B*Hi][Lk], sl[B*Hi][Lk] and lists, for tests.
  std::vector<float>* vscore = nullptr;
  std::vector<float>* sscore = nullptr;
  std::vector<std::int32_t>* vlist = nullptr;
  std::vector<std::int32_t>* slist = nullptr;
  // Only the scores (vscore/sscore); no lists, no index (the grid builder's probe, §7.3 step 1).
  bool scores_only = false;
};
void vertical_slash(const VerticalSlashProblem& p);

// Top-k (spec §4 order) of score[0..n): the first min(k, n) indices of the order, ascending.
std::vector<std::int32_t> topk_ascending(const float* score, int n, int k);

// xattention.cpp.
struct XAttentionProblem {
  QKView q, k;
  int B = 0, Hq = 0, G = 1, gi = 1, D = 0;
  int Lq = 0, Lk = 0, stride = 8;
  bool causal = true;
  float cx = 0.0f;
  const float* tau = nullptr;  // [Hi] thresholds of the index heads
  BuilderIndexOut out;
  std::vector<float>* block_scores = nullptr;  // optional: Sb [B*Hi][nqb128][nkb] (for tests)
};
void xattention(const XAttentionProblem& p);

}  // namespace sparq::fallback::sparse
