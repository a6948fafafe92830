// The sparse-attention kernel programs and their -D variants, in one place. Each config's
// defines() is the exact macro string the op passes (program-cache key, build-every-variant list).
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::sparse_detail {

// kernels_cl/sparse/sparse_prefill.cl: 64 query rows x 64-key steps per work-group (128 items).
struct PrefillKernelConfig {
  static constexpr const char* source = "sparse/sparse_prefill.cl";
  static constexpr const char* kernel = "sparse_prefill";
  static constexpr int work_group = 128;
  int head_dim = 128;
  bool unroll = true;  // GPUs; PoCL builds the ATT_UNROLL=0 variant (as dense.cl)
  std::string defines() const {
    return "-DHEAD_DIM=" + std::to_string(head_dim) + " -DATT_UNROLL=" + (unroll ? "1" : "0");
  }
};

// kernels_cl/sparse/sparse_build.cl: the index builders of this family (no macros).
struct BuildKernelConfig {
  static constexpr const char* source = "sparse/sparse_build.cl";
  static constexpr const char* ashape = "sparse_build_ashape";
  static constexpr const char* pool = "sparse_pool";
  static constexpr const char* block_sparse = "sparse_build_block_sparse";
  static std::string defines() { return ""; }
};

std::vector<rt::KernelVariant> sparse_kernel_variants();

}  // namespace sparq::sparse_detail
