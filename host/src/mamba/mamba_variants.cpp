// Every kernel program variant the Mamba ops can build (warm-up, build-every-variant test).
#include "mamba_kernels.h"

namespace sparq::mamba::detail_mamba {

std::vector<rt::KernelVariant> mamba_kernel_variants() {
  return {
      {ScanKernelConfig::source, ScanKernelConfig::defines()},
      {ScanKernelConfig::source, ScanKernelConfig::defines(true)},
      {ScanKernelConfig::source, ScanKernelConfig::defines(false, true)},
      {ScanKernelConfig::source, ScanKernelConfig::defines(true, true)},
      // The GPU schedule (ScanTuning::gpu_default), built on every device by the variant test.
      {ScanKernelConfig::source,
       ScanKernelConfig::defines(false, false, ScanTuning::gpu_default(false))},
      {ScanKernelConfig::source,
       ScanKernelConfig::defines(true, false, ScanTuning::gpu_default(false))},
      {ScanKernelConfig::source, ScanKernelConfig::defines(false, true, ScanTuning::gpu_default())},
      {ScanKernelConfig::source, ScanKernelConfig::defines(true, true, ScanTuning::gpu_default())},
      {SsdKernelConfig::source, SsdKernelConfig::defines()},
      {HadamardKernelConfig::source, HadamardKernelConfig::defines()},
      {QuantLinearKernelConfig::source, QuantLinearKernelConfig::defines()},
      {CheckFiniteKernelConfig::source, CheckFiniteKernelConfig::defines()},
      {ConvKernelConfig::source, ConvKernelConfig::defines()},
      {OutlierQuantKernelConfig::source, OutlierQuantKernelConfig::defines()}};
}

}  // namespace sparq::mamba::detail_mamba
