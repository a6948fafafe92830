// The sparse-attention kernel programs and their -D variants, in one place. Each config's
// defines() is the exact macro string the op passes (program-cache key, build-every-variant list).
#pragma once
#include <string>
#include <vector>

#include "host/src/attention/attention_kernels.h"
#include "kernel_variants.h"

namespace sparq::sparse_detail {

// kernels_cl/sparse/sparse_prefill.cl: 64 query rows x 64-key steps per work-group. Its body is
// the dense prefill kernel's (kernels_cl/attention/prefill_body.h), so it takes the dense kernel's
// layout and speed knobs as they are: DenseKernelConfig::for_device, SPARQ_TUNE_DENSE included.
struct PrefillKernelConfig {
  static constexpr const char* source = "sparse/sparse_prefill.cl";
  static constexpr const char* kernel = "sparse_prefill";
  attention_detail::DenseKernelConfig knobs;
  int work_group() const { return knobs.work_group; }
  std::string defines() const { return knobs.defines(); }
  static PrefillKernelConfig for_device(int head_dim, bool is_gpu, bool is_nvidia) {
    return {attention_detail::DenseKernelConfig::for_device(head_dim, is_gpu, is_nvidia)};
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
