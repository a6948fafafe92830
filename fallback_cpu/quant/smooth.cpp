// Fallback twin of kernels_cl/quant/smooth.cl: block means and the smoothing bias delta, in the
// defined order stated there (left folds in fp32, no fma).
#include <algorithm>
#include <cstring>

#include "attention/attention_common.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "quant_fallback.h"

namespace sparq::fallback::quant {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

float RowsIn::at(std::int64_t b, std::int64_t h, std::int64_t r, std::int64_t d) const {
  const std::int64_t i = b * sb + h * sh + r * sr + d;
  if (dtype == 0) {
    float x;
    std::memcpy(&x, p + i * 4, 4);
    return x;
  }
  std::uint16_t u;
  std::memcpy(&u, p + i * 2, 2);
  return sq_att_widen16(u, dtype);
}

void block_mean(const RowsIn& x, std::int64_t batch, std::int64_t heads, std::int64_t len,
                std::int64_t dim, std::int64_t block_rows, float r_full, float r_last, float* out) {
  const std::int64_t nblk = (len + block_rows - 1) / block_rows;
  parallel_chunks(batch * heads * nblk, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t bh = item / nblk, blk = item % nblk, b = bh / heads, h = bh % heads;
      const std::int64_t r0 = blk * block_rows, r1 = std::min(len, r0 + block_rows);
      const float rn = r1 - r0 == block_rows ? r_full : r_last;
      for (std::int64_t d = 0; d < dim; ++d) {
        float s = 0.0f;
        for (std::int64_t r = r0; r < r1; ++r) s = s + x.at(b, h, r, d);
        out[item * dim + d] = s * rn;
      }
    }
  });
}

void smooth_delta(const float* qm, std::int64_t qm_nblk, std::int64_t blk0, std::int64_t nblk,
                  const RowsIn& k, const float* km, std::int64_t batch, std::int64_t hq,
                  std::int64_t group, std::int64_t lk, std::int64_t dim, float* delta) {
  parallel_chunks(batch * hq * nblk, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t bh = item / nblk, bl = item % nblk, b = bh / hq, h = bh % hq;
      const std::int64_t hk = h / group;
      const float* q = qm + (bh * qm_nblk + blk0 + bl) * dim;
      const float* m = km ? km + (b * (hq / group) + hk) * dim : nullptr;
      for (std::int64_t j = 0; j < lk; ++j) {
        float acc = 0.0f;
        for (std::int64_t d = 0; d < dim; ++d) {
          float ks = k.at(b, hk, j, d);
          if (m) ks = ks - m[d];
          acc = acc + q[d] * ks;
        }
        delta[item * lk + j] = acc;
      }
    }
  });
}

}  // namespace sparq::fallback::quant
