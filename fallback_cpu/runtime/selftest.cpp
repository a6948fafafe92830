// Fallback of kernels_cl/runtime/selftest.cl: the same operations from the same header, in the
// same per-element order, under the exact FP environment (no FTZ/DAZ).
#include "selftest.h"

#include "fp_env.h"
#include "runtime/selftest_ops.h"

namespace sparq::fallback {

void selftest(const float* a, const float* b, float* out, std::size_t n) {
  rt::ScopedExactFpEnv exact_fp;
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 0; k < SQ_SELFTEST_OUTPUTS; ++k)
      out[i * SQ_SELFTEST_OUTPUTS + static_cast<std::size_t>(k)] =
          cl_common::sq_selftest_op(k, a[i], b[i]);
}

}  // namespace sparq::fallback
