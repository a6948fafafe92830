// One validated permute_rows / unpermute_rows call, as both executors read it
// (kernels_cl/sparse/permute.cl through permute.cpp, fallback_cpu/sparse/permute.cpp).
#pragma once
#include <cstdint>

#include "sparq/tensor.h"

namespace sparq::permute_detail {

struct PermutePlan {
  Tensor src, dst, perm;  // dst contiguous [B, H, L, D]; perm int32 [B, (Hg,) L]
  std::int64_t batch = 0, heads = 0, len = 0, d = 0;
  std::int64_t s_b = 0, s_h = 0, s_l = 0;  // src element strides (D contiguous)
  std::int64_t p_b = 0, p_g = 0;           // perm strides (p_g = 0 without head groups)
  std::int64_t heads_per_group = 1;
  int elem_bytes = 4;
  bool inverse = false;
};

}  // namespace sparq::permute_detail
