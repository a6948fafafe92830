// Every kernel program variant of the quantizer family (warm-up, build-every-variant test).
#include "host/src/attention/sage8_kernels.h"
#include "quant_kernels.h"

namespace sparq::quant_detail {

std::vector<rt::KernelVariant> quant_kernel_variants() {
  std::vector<rt::KernelVariant> out = {
      {SmoothKernelConfig::source, SmoothKernelConfig::defines()},
      {Int8QuantKernelConfig::source, Int8QuantKernelConfig::defines()},
  };
  for (auto& v : attention_detail::sage8_kernel_variants()) out.push_back(v);
  return out;
}

}  // namespace sparq::quant_detail
