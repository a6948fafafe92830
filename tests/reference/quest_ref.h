// Float64 references of Quest decode (specs/sparse_attention.md §8), the test oracles: attention
// of one query row over an explicit key set, and the exact upper bound of q.k over a page.
#pragma once
#include <cstdint>
#include <vector>

namespace sparq::ref {

struct RowAttention {
  std::vector<double> out;  // [D]; 0 when the key set is empty
  double lse2 = 0.0;        // log2 sum_j 2^(c s_j) with c = scale * log2(e); -inf when empty
};

// softmax(scale * q.k_j) over the keys given (rows of D floats), times V, in double.
RowAttention attention_row(const float* q, const std::vector<const float*>& keys,
                           const std::vector<const float*>& values, int d, double scale);

// max over keys of the exact (double) q.k.
double max_dot(const float* q, const std::vector<const float*>& keys, int d);

}  // namespace sparq::ref
