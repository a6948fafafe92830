// The dynamic index builders' kernel programs and their -D variants, in one place (vertical-slash
// and XAttention), plus the internal entry points build_index dispatches to.
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"
#include "sparq/sparse.h"

namespace sparq::sparse_detail {

// kernels_cl/sparse/vertical_slash.cl: probe, softmax, sums, top-k, convert. HEAD_DIM only
// sizes the d loop of the probe (the host passes D == HEAD_DIM exactly).
struct VerticalSlashKernelConfig {
  static constexpr const char* source = "sparse/vertical_slash.cl";
  static std::string defines(int head_dim) { return "-DHEAD_DIM=" + std::to_string(head_dim); }
};

// kernels_cl/sparse/xattention.cl: antidiagonal scores, softmax + row-block sums, block sums,
// selection + conversion. STRIDE (4, 8 or 16) and HEAD_DIM size the score chain.
struct XAttentionKernelConfig {
  static constexpr const char* source = "sparse/xattention.cl";
  static std::string defines(int head_dim, int stride) {
    return "-DHEAD_DIM=" + std::to_string(head_dim) + " -DSTRIDE=" + std::to_string(stride);
  }
};

// kernels_cl/sparse/grid.cl: MMInference grid pooling over permuted blocks and row selection (no
// macros).
struct GridKernelConfig {
  static constexpr const char* source = "sparse/grid.cl";
  static constexpr const char* pool = "sparse_grid_pool";
  static constexpr const char* select = "sparse_grid_select";
  static std::string defines() { return ""; }
};

std::vector<rt::KernelVariant> builder_kernel_variants();

}  // namespace sparq::sparse_detail
