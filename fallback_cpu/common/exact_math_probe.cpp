// Mirror of kernels_cl/common/exact_math_probe.cl (see exact_math_probe.h).
#include "fallback_cpu/common/exact_math_probe.h"

#include "common/exact_math_probe.h"
#include "fp_env.h"

namespace sparq::fallback {

void exact_math_probe(int fn, const std::uint32_t* in, std::uint32_t* out, std::uint32_t* out2,
                      std::size_t n, int lo, int hi) {
  rt::ScopedExactFpEnv exact_env;  // denormals kept, as on the device
  for (std::size_t i = 0; i < n; ++i) {
    cl_common::uint second;
    out[i] = cl_common::sq_probe_eval(fn, in[i], lo, hi, &second);
    out2[i] = second;
  }
}

}  // namespace sparq::fallback
