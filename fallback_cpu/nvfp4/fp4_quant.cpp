// Mirror of kernels_cl/nvfp4/fp4_quant.cl: the same quant16 per group (nvfp4/fp4_math.h).
#include <cstdint>

#include "fallback_cpu/common/parallel_chunks.h"
#include "fallback_cpu/nvfp4/nvfp4_fallback.h"
#include "nvfp4/fp4_math.h"

namespace sparq::fallback::nvfp4 {

using namespace cl_common;

void quantize_rows(const float* x, const float* mean, int mean_rows, int nblk,
                   std::int64_t bh_count, int L, int D, std::uint8_t* codes, std::uint8_t* scales) {
  const int G = D / SQ_FP4_GROUP;
  const std::int64_t groups = bh_count * L * G;
  parallel_chunks(groups, 4096, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t gid = lo; gid < hi; ++gid) {
      const std::int64_t row = gid / G;
      const int g = static_cast<int>(gid - row * G);
      const std::int64_t bh = row / L;
      const int i = static_cast<int>(row - bh * L);
      const float* src = x + row * D + g * SQ_FP4_GROUP;
      float v[SQ_FP4_GROUP];
      if (mean_rows > 0) {
        const float* mu = mean + (bh * nblk + i / mean_rows) * D + g * SQ_FP4_GROUP;
        for (int t = 0; t < SQ_FP4_GROUP; ++t) v[t] = src[t] - mu[t];
      } else {
        for (int t = 0; t < SQ_FP4_GROUP; ++t) v[t] = src[t];
      }
      scales[gid] = static_cast<std::uint8_t>(sq_fp4_quant16(v, codes + gid * (SQ_FP4_GROUP / 2)));
    }
  });
}

void quantize_tokens(const float* x, std::int64_t bh_count, int L, int L64, int D,
                     std::uint8_t* codes, std::uint8_t* scales) {
  const int ntg = L64 / SQ_FP4_GROUP;
  const std::int64_t groups = bh_count * ntg * D;
  parallel_chunks(groups, 4096, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t gid = lo; gid < hi; ++gid) {
      const int d = static_cast<int>(gid % D);
      const std::int64_t rest = gid / D;
      const int tg = static_cast<int>(rest % ntg);
      const std::int64_t bh = rest / ntg;
      float v[SQ_FP4_GROUP];
      for (int t = 0; t < SQ_FP4_GROUP; ++t) {
        const int tok = tg * SQ_FP4_GROUP + t;
        v[t] = tok < L ? x[(bh * L + tok) * D + d] : 0.0f;
      }
      const std::int64_t grp = (bh * D + d) * ntg + tg;
      scales[grp] = static_cast<std::uint8_t>(sq_fp4_quant16(v, codes + grp * (SQ_FP4_GROUP / 2)));
    }
  });
}

}  // namespace sparq::fallback::nvfp4
