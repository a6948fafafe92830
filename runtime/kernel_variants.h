// The list of every kernel program variant sparq can build (source + defines). Used by
// Context::warm_up (sparq-info --warm) and by the test that builds every variant on PoCL, so a
// kernel that does not compile fails CI even before a test calls it.
#pragma once
#include <string>
#include <vector>

namespace sparq::rt {

struct KernelVariant {
  std::string source_path;  // relative to kernels_cl/
  std::string defines;      // "-DHEAD_DIM=128 ..." exactly as the op passes them
  bool needs_inline_ptx = false;  // builds only where DeviceQuirks::inline_ptx (NVIDIA PTX asm)
};

// Concatenation of every family's list (host/src/kernel_variants.cpp; one line per family).
std::vector<KernelVariant> all_kernel_variants();

}  // namespace sparq::rt
