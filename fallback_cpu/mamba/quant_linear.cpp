// Fallback twin of sparq::mamba::quant_linear: the integer dot products computed directly in
// int32 (exact, so they equal the device's chunked SGEMM + int32 combine), then the shared
// epilogue (mamba/qlinear_math.h). Rows run in parallel.
#include <vector>

#include "mamba/qlinear_math.h"
#include "mamba_fallback.h"

namespace sparq::fallback::mamba {

using namespace sparq::cl_common;

void quant_linear(const QuantLinearProblem& p) {
  const std::int64_t xb = p.x8 ? p.K : (p.K + 1) / 2, wb = p.w8 ? p.K : (p.K + 1) / 2;
  // Weights decoded once.
  std::vector<std::int8_t> w(static_cast<std::size_t>(p.O * p.K));
  for (std::int64_t o = 0; o < p.O; ++o)
    for (std::int64_t k = 0; k < p.K; ++k)
      w[static_cast<std::size_t>(o * p.K + k)] =
          static_cast<std::int8_t>(sq_ql_code(p.wc + o * wb, p.w8 ? 1 : 0, static_cast<int>(k)));
  parallel_chunks(p.R, 4, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::int32_t> x(static_cast<std::size_t>(p.K));
    for (std::int64_t r = lo; r < hi; ++r) {
      for (std::int64_t k = 0; k < p.K; ++k)
        x[static_cast<std::size_t>(k)] =
            sq_ql_code(p.xc + r * xb, p.x8 ? 1 : 0, static_cast<int>(k));
      for (std::int64_t o = 0; o < p.O; ++o) {
        const std::int8_t* wr = w.data() + o * p.K;
        std::int32_t acc = 0;
        for (std::int64_t k = 0; k < p.K; ++k) acc += x[static_cast<std::size_t>(k)] * wr[k];
        p.out[r * p.O + o] =
            sq_ql_epilogue(acc, p.sx[r], p.sw[o], p.bias ? 1 : 0, p.bias ? p.bias[o] : 0.0f);
      }
    }
  });
}

}  // namespace sparq::fallback::mamba
