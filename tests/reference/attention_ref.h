// Float64 reference attention: the test oracle (not the definition). Plain softmax in double
// with std::exp, written from the formula softmax(scale * q k^T) v; causal is bottom-right
// aligned (row i sees key j iff j <= i + Lk - Lq). A row that sees no key gives 0 and lse -inf.
#pragma once
#include <cstdint>
#include <vector>

namespace sparq::ref {

struct AttentionShape {
  int batch = 1, hq = 1, hkv = 1, d = 64;
  std::int64_t lq = 1, lk = 1;
};

struct AttentionRef {
  std::vector<double> out;   // [B, Hq, Lq, D]
  std::vector<double> lse2;  // [B, Hq, Lq], log2 of sum_j 2^(scale * log2(e) * s_j)
};

// q [B, Hq, Lq, D], k and v [B, Hkv, Lk, D], contiguous; scale 0 = 1/sqrt(D).
AttentionRef attention(const std::vector<float>& q, const std::vector<float>& k,
                       const std::vector<float>& v, const AttentionShape& shape, bool causal,
                       double scale = 0.0);

}  // namespace sparq::ref
