// Fallback twin of kernels_cl/mamba/outlier_quant.cl: the same per-row arithmetic
// (mamba/outlier_quant_math.h), rows of a refresh window in increasing l, windows and batch rows
// independent (run in parallel; threading never changes bits).
#include "mamba/outlier_quant_math.h"
#include "mamba_fallback.h"

namespace sparq::fallback::mamba {

using namespace sparq::cl_common;

void outlier_quantize(const OutlierQuantProblem& p) {
  const std::int64_t nwin = (p.L + p.window - 1) / p.window;
  const std::int64_t ncodes = p.bits8 ? p.C : (p.C + 1) / 2;
  const std::int64_t K = p.K;
  parallel_chunks(p.batch * nwin, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t g = lo; g < hi; ++g) {
      const std::int64_t b = g / nwin, w = g - b * nwin;
      const std::int64_t l0 = w * p.window, l1 = std::min(p.L, l0 + p.window);
      for (std::int64_t l = l0; l < l1; ++l) {
        const std::int64_t r = b * p.L + l;
        const bool first = l == l0;
        const std::int32_t* pidx = first ? p.idx : p.idx + (r - 1) * K;
        const int pcnt = first ? 0 : p.counts[r - 1];
        sq_oq_row(p.x + r * p.C, p.C, pidx, pcnt, p.bits8, p.fmt, p.k_sigma, p.K, p.static_scale,
                  p.static_scale ? p.static_scales[l] : 0.0f, p.codes + r * ncodes, p.scales + r,
                  p.counts + r, p.idx + r * K, p.fmt == 0 ? p.val_f + r * K : nullptr,
                  p.fmt == 1 ? p.val_h + r * K : nullptr, p.fmt == 2 ? p.val_b + r * K : nullptr,
                  p.fmt == 2 ? p.oscale + r : nullptr);
      }
    }
  });
}

void dequantize(const DequantProblem& p) {
  const std::int64_t ncodes = p.bits8 ? p.C : (p.C + 1) / 2;
  const std::int64_t K = p.K;
  parallel_chunks(p.rows, 64, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r)
      sq_oq_dequant_row(p.out + r * p.C, p.C, p.codes + r * ncodes, p.bits8, p.scales[r],
                        p.counts[r], p.idx + r * K, p.fmt, p.fmt == 0 ? p.val_f + r * K : nullptr,
                        p.fmt == 1 ? p.val_h + r * K : nullptr,
                        p.fmt == 2 ? p.val_b + r * K : nullptr, p.fmt == 2 ? p.oscale[r] : 0.0f);
  });
}

}  // namespace sparq::fallback::mamba
