// Every kernel program variant the attention ops can build (warm-up, build-every-variant test).
#include "attention_variants.h"

#include "attention_kernels.h"

namespace sparq::attention_detail {

std::vector<rt::KernelVariant> attention_kernel_variants() {
  return {
      // GPU (portable: the NVIDIA register cap is a build option PoCL would refuse) and CPU.
      {DenseKernelConfig::source, DenseKernelConfig::for_device(64, true, false).defines()},
      {DenseKernelConfig::source, DenseKernelConfig::for_device(128, true, false).defines()},
      {DenseKernelConfig::source, DenseKernelConfig::for_device(64, false, false).defines()},
      {DenseKernelConfig::source, DenseKernelConfig::for_device(128, false, false).defines()},
      {DecodeKernelConfig::source, DecodeKernelConfig{}.defines()},
      {DecodeStreamConfig::source, DecodeStreamConfig{64, 4}.defines()},
      {DecodeStreamConfig::source, DecodeStreamConfig{128, 4}.defines()},
      {DecodeStreamConfig::source, DecodeStreamConfig{64, 2}.defines()},
      {DecodeStreamConfig::source, DecodeStreamConfig{128, 2}.defines()},
      {DecodeStreamConfig::source, DecodeStreamConfig{64, 1}.defines()},
      {DecodeStreamConfig::source, DecodeStreamConfig{128, 1}.defines()},
      // decode_bw.cl: CPU builds only (its unrolled GPU builds take PoCL several times longer).
      {DecodeBwConfig::source, DecodeTuning{}.bw(128, 1, 4, false).defines()},
      {DecodeBwConfig::source, DecodeTuning{}.bw(64, 2, 12, false).defines()},
      {DecodeFlatConfig::source, DecodeTuning{}.flat(128, 1, 4, false, false, 48 * 1024).defines()},
      {MergeKernelConfig::source, MergeKernelConfig{}.defines()},
      {KvAppendKernelConfig::source, KvAppendKernelConfig{}.defines()},
      {"attention/sage8_decode.cl", "-DHEAD_DIM=64"},
      {"attention/sage8_decode.cl", "-DHEAD_DIM=128"},
  };
}

}  // namespace sparq::attention_detail
