// Fallback twin of kernels_cl/diffusion/noise.cl (randn, renoise), same order per element.
#include <bit>
#include <cstring>

#include "common/convert.h"
#include "common/philox.h"
#include "diffusion_fallback.h"

namespace sparq::fallback::diffusion {

using namespace sparq::cl_common;

void randn(std::byte* out, int out_dtype, const std::uint32_t* seeds, std::int64_t s,
           std::int64_t n, std::uint32_t step, std::uint32_t tag, float scale) {
  parallel_chunks(n, 1 << 16, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const std::int64_t b = i / s, j = i - b * s;
      const float v =
          scale * sq_randn(seeds[2 * b], seeds[2 * b + 1], static_cast<ulong>(j), step, tag);
      if (out_dtype == 0) {
        std::memcpy(out + i * 4, &v, 4);
      } else {
        const std::uint16_t h = out_dtype == 1 ? sq_f32_to_f16_rne(v) : sq_f32_to_bf16_rne(v);
        std::memcpy(out + i * 2, &h, 2);
      }
    }
  });
}

void renoise(float* y, const float* x0, const std::uint32_t* seeds, const std::uint32_t* coefs,
             std::int64_t coef_stride, std::int64_t s, std::int64_t n) {
  parallel_chunks(n, 1 << 16, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const std::int64_t b = i / s, j = i - b * s;
      const std::uint32_t* c = coefs + b * coef_stride;
      const float a = std::bit_cast<float>(c[0]), bb = std::bit_cast<float>(c[1]);
      const float z =
          sq_randn(seeds[2 * b], seeds[2 * b + 1], static_cast<ulong>(j), c[2], SQ_TAG_RENOISE);
      y[i] = sq_fma(bb, z, a * x0[i]);
    }
  });
}

}  // namespace sparq::fallback::diffusion
