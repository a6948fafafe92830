// Every kernel program variant the NVFP4 ops can build on any device (see nvfp4_kernels.h).
#include "nvfp4_kernels.h"

namespace sparq::nvfp4_detail {

std::vector<rt::KernelVariant> nvfp4_kernel_variants() {
  return {
      {Fp4QuantKernelConfig::source, Fp4QuantKernelConfig::defines()},
      {Fp4AttentionKernelConfig::source, Fp4AttentionKernelConfig{64}.defines()},
      {Fp4AttentionKernelConfig::source, Fp4AttentionKernelConfig{128}.defines()},
  };
}

}  // namespace sparq::nvfp4_detail
