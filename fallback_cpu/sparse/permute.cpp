// Fallback twin of kernels_cl/sparse/permute.cl: row gather (permute) / scatter (unpermute) by
// a validated bijection; byte copies only.
#include <cstring>

#include "context_impl.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "permute_fallback.h"

namespace sparq::fallback {

void permute_rows(const permute_detail::PermutePlan& p) {
  const std::byte* src = p.src.storage()->host.data();
  std::byte* dst = p.dst.storage()->host.data();
  const auto* perm = reinterpret_cast<const std::int32_t*>(p.perm.storage()->host.data());
  const std::int64_t eb = p.elem_bytes, row_bytes = p.d * eb;
  parallel_chunks(p.batch * p.heads, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t bh = lo; bh < hi; ++bh) {
      const std::int64_t b = bh / p.heads, h = bh % p.heads, g = h / p.heads_per_group;
      for (std::int64_t n = 0; n < p.len; ++n) {
        const std::int64_t pi = perm[p.perm.offset() + b * p.p_b + g * p.p_g + n];
        const std::int64_t src_row = p.inverse ? n : pi, dst_row = p.inverse ? pi : n;
        const std::int64_t from = p.src.offset() + b * p.s_b + h * p.s_h + src_row * p.s_l;
        const std::int64_t to = (bh * p.len + dst_row) * p.d;
        std::memcpy(dst + to * eb, src + from * eb, static_cast<std::size_t>(row_bytes));
      }
    }
  });
}

}  // namespace sparq::fallback
