// Every kernel program variant the dynamic index builders can build (warm-up, build-every-variant
// test): vertical-slash per head dim, XAttention per head dim and stride,
// the grid selection.
#include "builder_kernels.h"

namespace sparq::sparse_detail {

std::vector<rt::KernelVariant> builder_kernel_variants() {
  std::vector<rt::KernelVariant> v;
  for (int d : {64, 128}) {
    v.push_back({VerticalSlashKernelConfig::source, VerticalSlashKernelConfig::defines(d)});
    for (int s : {4, 8, 16})
      v.push_back({XAttentionKernelConfig::source, XAttentionKernelConfig::defines(d, s)});
  }
  v.push_back({GridKernelConfig::source, GridKernelConfig::defines()});
  return v;
}

}  // namespace sparq::sparse_detail
