// The Precision::int8 attention kernel program (kernels_cl/attention/sage8.cl) and its variants.
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::attention_detail {

// Two programs with the same arguments, launch shape and bits:
//  - kernels_cl/attention/sage8.cl: the portable integer path (any device);
//  - kernels_cl/attention/sage8_mma.cl: inline PTX mma.sync int8 with the softmax in registers
//    (NVIDIA sm_80+ only: device quirk inline_ptx and compute capability >= 8.0); with emulate,
//    mma.sync / shfl.sync are emulated in local memory so it builds and runs anywhere (tests of
//    the fragment indexing on PoCL).
struct Sage8KernelConfig {
  static constexpr const char* kernel = "sage8_attention";
  static constexpr int rows_per_group = 64;
  static constexpr int work_group = 128;
  int head_dim = 128;
  bool mma = false;
  bool emulate = false;
  bool sparse = false;  // SAGE8_SPARSE: walk a SparseIndex (kernels_cl/attention/sage8_sparse.h)
  const char* source() const { return mma ? "attention/sage8_mma.cl" : "attention/sage8.cl"; }
  // The emulated sparse variant (a test of the PTX kernel's indexing, never a fast path) builds
  // with -cl-opt-disable: PoCL's optimizer takes ~50 s on it (1 s without), and the arithmetic
  // is the same (explicit operation order, FP_CONTRACT OFF), so are the bits.
  std::string defines() const {
    return "-DHEAD_DIM=" + std::to_string(head_dim) +
           (mma ? std::string(" -DSAGE8_EMULATE=") + (emulate ? "1" : "0") : std::string()) +
           (sparse ? " -DSAGE8_SPARSE=1" : "") + (emulate && sparse ? " -cl-opt-disable" : "");
  }
  // The index arguments of sparse mode follow this many dense ones.
  static constexpr unsigned dense_args = 20;
};

std::vector<rt::KernelVariant> sage8_kernel_variants();

}  // namespace sparq::attention_detail
