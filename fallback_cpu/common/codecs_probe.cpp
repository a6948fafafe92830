// Mirror of kernels_cl/common/codecs_probe.cl (see codecs_probe.h).
#include "fallback_cpu/common/codecs_probe.h"

#include "common/codecs_probe.h"
#include "fp_env.h"

namespace sparq::fallback {

void codecs_probe(int fn, const std::uint32_t* a, const std::uint32_t* b, std::uint32_t* out,
                  std::size_t n) {
  rt::ScopedExactFpEnv exact_env;  // denormals kept, as on the device
  for (std::size_t i = 0; i < n; ++i) out[i] = cl_common::sq_codec_probe_eval(fn, a[i], b[i]);
}

}  // namespace sparq::fallback
