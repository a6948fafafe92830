// Fallback twin of kernels_cl/mamba/hadamard.cl: the same butterfly stages (s = 0..m-1, pairs
// (j, j + 2^s)), the same scaling, scale and code rules (mamba/hadamard_math.h). The row maximum of
// |y| is exact in any order (the kernel's 256-lane tree gives the same value). Rows run in
// parallel.
#include <vector>

#include "mamba/hadamard_math.h"
#include "mamba_fallback.h"

namespace sparq::fallback::mamba {

using namespace sparq::cl_common;

void hadamard(const HadamardProblem& p) {
  parallel_chunks(p.rows, 16, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> y(static_cast<std::size_t>(p.C));
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* xr = p.x + r * p.C;
      for (int j = 0; j < p.C; ++j) y[j] = xr[j];
      for (int s = 0; s < p.m; ++s) {
        const int h = 1 << s;
        for (int k = 0; k < p.C / 2; ++k) {
          const int j = sq_hq_pair(k, h);
          const float a = y[j], b = y[j + h];
          y[j] = a + b;
          y[j + h] = a - b;
        }
      }
      float mx = 0.0f;
      bool bad = false;
      for (int j = 0; j < p.C; ++j) {
        y[j] = y[j] * p.c;
        if (sq_isnan(y[j]) || sq_isinf(y[j])) bad = true;
        const float a = sq_fabs(y[j]);
        mx = a > mx ? a : mx;
      }
      if (p.mode == 0) {
        for (int j = 0; j < p.C; ++j) p.out[r * p.C + j] = y[j];
        continue;
      }
      const int qmax = p.bits8 ? 127 : 7;
      const float sc = bad ? sq_as_float(0x7fc00000u) : sq_hq_scale(mx, qmax);
      p.scales[r] = sc;
      p.counts[r] = 0;
      if (p.bits8) {
        for (int j = 0; j < p.C; ++j)
          p.codes[r * p.C + j] =
              bad ? std::uint8_t{0} : static_cast<std::uint8_t>(sq_hq_code(y[j], sc, qmax) & 0xff);
      } else {
        const int nb = (p.C + 1) / 2;
        for (int i = 0; i < nb; ++i) {
          const int q0 = bad ? 0 : sq_hq_code(y[2 * i], sc, qmax);
          const int q1 = (bad || 2 * i + 1 >= p.C) ? 0 : sq_hq_code(y[2 * i + 1], sc, qmax);
          p.codes[r * nb + i] = static_cast<std::uint8_t>((q0 & 0xf) | ((q1 & 0xf) << 4));
        }
      }
    }
  });
}

}  // namespace sparq::fallback::mamba
