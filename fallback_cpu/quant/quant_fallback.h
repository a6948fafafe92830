// The CPU executors of the quantizer kernels (bit-exact twins of kernels_cl/quant/*.cl; the
// arithmetic order is stated at the top of each .cl file).
#pragma once
#include <cstddef>
#include <cstdint>

namespace sparq::fallback::quant {

// A [B, H, L, D] float-storage input (dtype code 0 f32, 1 f16, 2 bf16): element (b, h, r, d) at
// p + (b*sb + h*sh + r*sr + d) elements.
struct RowsIn {
  const std::byte* p = nullptr;
  int dtype = 0;
  std::int64_t sb = 0, sh = 0, sr = 0;
  float at(std::int64_t b, std::int64_t h, std::int64_t r, std::int64_t d) const;
};

// smooth.cpp (kernels_cl/quant/smooth.cl)
void block_mean(const RowsIn& x, std::int64_t batch, std::int64_t heads, std::int64_t len,
                std::int64_t dim, std::int64_t block_rows, float r_full, float r_last, float* out);
// delta [B, Hq, nblk, Lk] of query blocks [blk0, blk0 + nblk) of qm [B, Hq, qm_nblk, D]; km
// [B, Hkv, D] or null (K smoothing off).
void smooth_delta(const float* qm, std::int64_t qm_nblk, std::int64_t blk0, std::int64_t nblk,
                  const RowsIn& k, const float* km, std::int64_t batch, std::int64_t hq,
                  std::int64_t group, std::int64_t lk, std::int64_t dim, float* delta);

// int8_quant.cpp (kernels_cl/quant/int8_quant.cl)
void int8_blocks(const RowsIn& x, const float* mean, std::int64_t mean_rows, std::int64_t mean_nblk,
                 float mult, std::int64_t batch, std::int64_t heads, std::int64_t len,
                 std::int64_t dim, std::int64_t block_rows, std::int8_t* codes, float* scales);
void int8_v(const RowsIn& v, std::int64_t batch, std::int64_t heads, std::int64_t len,
            std::int64_t dim, std::int64_t len64, std::int8_t* codes, float* scales);

}  // namespace sparq::fallback::quant
