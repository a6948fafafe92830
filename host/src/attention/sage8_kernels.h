// The Precision::int8 attention kernel program (kernels_cl/attention/sage8.cl) and its variants.
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::attention_detail {

// HEAD_DIM 64/128; mma = inline PTX mma.sync int8 (NVIDIA sm_80+ only: the device quirk
// inline_ptx and compute capability >= 8.0). Both variants give identical bits.
struct Sage8KernelConfig {
  static constexpr const char* source = "attention/sage8.cl";
  static constexpr const char* kernel = "sage8_attention";
  static constexpr int rows_per_group = 64;
  static constexpr int work_group = 128;
  int head_dim = 128;
  bool mma = false;
  std::string defines() const {
    return "-DHEAD_DIM=" + std::to_string(head_dim) + " -DSAGE8_MMA=" + (mma ? "1" : "0");
  }
};

std::vector<rt::KernelVariant> sage8_kernel_variants();

}  // namespace sparq::attention_detail
