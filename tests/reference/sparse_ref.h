// Float64 reference of sparse attention: the test oracle (not the definition). For each query
// row, the computed key set of a SparseIndex (tiles and columns of its index row, then the
// visibility rule: j < Lk, causal kpos(j) <= qpos(i), token A-shape mask) and a plain softmax in
// double with std::exp over exactly those keys. A row with no key gives 0 and lse -inf.
#pragma once
#include <cstdint>
#include <vector>

#include "sparq/sparse.h"

namespace sparq::ref {

struct SparseRef {
  std::vector<double> out;   // [B, Hq, Lq, D]
  std::vector<double> lse2;  // [B, Hq, Lq]
};

// q [B, Hq, Lq, D], k and v [B, Hkv, Lk, D], contiguous fp32 values as the op sees them.
SparseRef sparse_attention(const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, int B, int Hq, int Hkv, int D,
                           const HostIndex& index, double scale = 0.0);

// The computed key list of query row i (ascending key index) of (b, query head h).
std::vector<std::int32_t> computed_keys(const HostIndex& index, int b, int hi, std::int64_t i);

}  // namespace sparq::ref
