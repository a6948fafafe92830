// Every kernel program variant the NVFP4 ops can build on any device (see nvfp4_kernels.h).
#include <string>

#include "nvfp4_kernels.h"

namespace sparq::nvfp4_detail {

std::vector<rt::KernelVariant> nvfp4_kernel_variants() {
  std::vector<rt::KernelVariant> out = {
      {Fp4QuantKernelConfig::source, Fp4QuantKernelConfig::defines()}};
  for (bool sparse : {false, true})
    for (int dim : {64, 128})
      for (Fp4DotPath path : {Fp4DotPath::portable, Fp4DotPath::mma, Fp4DotPath::emulated}) {
        rt::KernelVariant kv{Fp4AttentionKernelConfig::source,
                             Fp4AttentionKernelConfig{dim, path, sparse}.defines()};
        kv.needs_inline_ptx = path == Fp4DotPath::mma;
        out.push_back(kv);
      }
  for (int dim : {64, 128})
    out.push_back({"nvfp4/fp4_decode.cl", "-DHEAD_DIM=" + std::to_string(dim)});
  return out;
}

}  // namespace sparq::nvfp4_detail
