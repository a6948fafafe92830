// Fallback twin of kernels_cl/attention/merge.cl's attention_merge_states: the public
// merge_states op, element by element with the one merge formula of attention_common.h.
#include <cstring>

#include "attention/attention_common.h"
#include "attention_fallback.h"

namespace sparq::fallback {

namespace {

using namespace sparq::cl_common;

float load(const MergeOperand& t, std::int64_t i) {
  if (t.dtype == DType::f32) {
    float x;
    std::memcpy(&x, t.data + i * 4, 4);
    return x;
  }
  std::uint16_t u;
  std::memcpy(&u, t.data + i * 2, 2);
  return sq_att_widen16(u, static_cast<int>(t.dtype));
}

std::int64_t offset(const MergeOperand& t, const std::int64_t (&idx)[4]) {
  return t.base + idx[0] * t.strides[0] + idx[1] * t.strides[1] + idx[2] * t.strides[2] +
         idx[3] * t.strides[3];
}

}  // namespace

void merge_states(const MergeProblem& p) {
  const std::int64_t rows = p.dims[0] * p.dims[1] * p.dims[2] * p.dims[3];
  constexpr std::int64_t kRowsPerItem = 256;
  const auto items = static_cast<std::size_t>((rows + kRowsPerItem - 1) / kRowsPerItem);
  parallel_for(items, [&](std::size_t item) {
    const std::int64_t r0 = static_cast<std::int64_t>(item) * kRowsPerItem;
    const std::int64_t r1 = std::min(rows, r0 + kRowsPerItem);
    for (std::int64_t row = r0; row < r1; ++row) {
      std::int64_t idx[4], rest = row;
      for (int k = 3; k >= 0; --k) {
        idx[k] = rest % p.dims[k];
        rest /= p.dims[k];
      }
      const SqAttMerge w = sq_att_merge_weights(load(p.lse_a, offset(p.lse_a, idx)),
                                                load(p.lse_b, offset(p.lse_b, idx)));
      const std::int64_t a = offset(p.out_a, idx), b = offset(p.out_b, idx);
      for (std::int64_t e = 0; e < p.d; ++e)
        p.out[row * p.d + e] = sq_att_merge_out(w, load(p.out_a, a + e), load(p.out_b, b + e));
      p.lse[row] = w.lse;
    }
  });
}

}  // namespace sparq::fallback
