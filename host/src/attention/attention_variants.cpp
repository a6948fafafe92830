// Every kernel program variant the attention ops can build (warm-up, build-every-variant test).
#include "attention_variants.h"

#include "attention_kernels.h"

namespace sparq::attention_detail {

std::vector<rt::KernelVariant> attention_kernel_variants() {
  return {
      {DenseKernelConfig::source, DenseKernelConfig{64, true}.defines()},
      {DenseKernelConfig::source, DenseKernelConfig{128, true}.defines()},
      {DenseKernelConfig::source, DenseKernelConfig{64, false}.defines()},
      {DenseKernelConfig::source, DenseKernelConfig{128, false}.defines()},
      {DecodeKernelConfig::source, DecodeKernelConfig{}.defines()},
      {MergeKernelConfig::source, MergeKernelConfig{}.defines()},
  };
}

}  // namespace sparq::attention_detail
