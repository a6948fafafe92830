// The quantizer kernel programs (kernels_cl/quant/*.cl) and their -D variants, in one place.
// Shared by the quantized attention paths (Precision::int8 and Precision::nvfp4).
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::quant_detail {

// kernels_cl/quant/smooth.cl: block means (Q/K smoothing) and the smoothing bias delta.
struct SmoothKernelConfig {
  static constexpr const char* source = "quant/smooth.cl";
  static constexpr const char* mean_kernel = "quant_block_mean";
  static constexpr const char* delta_kernel = "quant_smooth_delta";
  static constexpr int work_group = 64;
  static std::string defines() { return ""; }
};

// kernels_cl/quant/int8_quant.cl: int8 per-block Q/K and per-channel-group V quantizers.
struct Int8QuantKernelConfig {
  static constexpr const char* source = "quant/int8_quant.cl";
  static constexpr const char* blocks_kernel = "quant_int8_blocks";
  static constexpr const char* v_kernel = "quant_int8_v";
  static constexpr int blocks_work_group = 256;
  static constexpr int v_work_group = 64;
  static std::string defines() { return ""; }
};

// Every program variant of the quantizer family (kernel_variants.cpp concatenates it).
std::vector<rt::KernelVariant> quant_kernel_variants();

}  // namespace sparq::quant_detail
