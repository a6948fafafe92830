// Fallback twin of kernels_cl/quant/int8_quant.cl: int8 per-block Q/K and per-channel V
// quantizers with quant/int8_codec.h, in the defined order stated there.
#include <algorithm>

#include "fallback_cpu/common/parallel_chunks.h"
#include "quant/int8_codec.h"
#include "quant_fallback.h"

namespace sparq::fallback::quant {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

void int8_blocks(const RowsIn& x, const float* mean, std::int64_t mean_rows, std::int64_t mean_nblk,
                 float mult, std::int64_t batch, std::int64_t heads, std::int64_t len,
                 std::int64_t dim, std::int64_t block_rows, std::int8_t* codes, float* scales) {
  const std::int64_t nblk = (len + block_rows - 1) / block_rows;
  parallel_chunks(batch * heads * nblk, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t bh = item / nblk, blk = item % nblk, b = bh / heads, h = bh % heads;
      const std::int64_t r0 = blk * block_rows, r1 = std::min(len, r0 + block_rows);
      auto value = [&](std::int64_t r, std::int64_t d) {
        float v = x.at(b, h, r, d);
        if (mean) v = v - mean[(bh * mean_nblk + r / mean_rows) * dim + d];
        return v * mult;
      };
      uint amax = 0;
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t d = 0; d < dim; ++d) amax = std::max(amax, sq_i8_absbits(value(r, d)));
      const float s = sq_i8_scale(amax);
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t d = 0; d < dim; ++d)
          codes[(bh * len + r) * dim + d] =
              static_cast<std::int8_t>(sq_i8_code(value(r, d), s, -127.0f));
      scales[item] = s;
    }
  });
}

void int8_v(const RowsIn& v, std::int64_t batch, std::int64_t heads, std::int64_t len,
            std::int64_t dim, std::int64_t len64, std::int8_t* codes, float* scales) {
  const std::int64_t groups = len64 / 16;
  parallel_chunks(batch * heads * dim, 16, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t bh = item / dim, d = item % dim, b = bh / heads, h = bh % heads;
      for (std::int64_t g = 0; g < groups; ++g) {
        float x[16];
        uint amax = 0;
        for (int u = 0; u < 16; ++u) {
          const std::int64_t j = 16 * g + u;
          x[u] = j < len ? v.at(b, h, j, d) : 0.0f;
          if (j < len) amax = std::max(amax, sq_i8_absbits(x[u]));
        }
        const float s = sq_i8_scale(amax);
        for (int u = 0; u < 16; ++u)
          codes[item * len64 + 16 * g + u] = static_cast<std::int8_t>(sq_i8_code(x[u], s, -127.0f));
        scales[item * groups + g] = s;
      }
    }
  });
}

}  // namespace sparq::fallback::quant
