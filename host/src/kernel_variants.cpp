// All kernel program variants, one line per family (see runtime/kernel_variants.h).
#include "kernel_variants.h"

#include "attention/attention_variants.h"
#include "diffusion/diffusion_kernels.h"
#include "mamba/mamba_kernels.h"
#include "nvfp4/nvfp4_kernels.h"
#include "quant/quant_kernels.h"
#include "selftest.h"
#include "sparse/quest_kernels.h"
#include "sparse/sparse_kernels.h"
#include "sparse/builder_kernels.h"

namespace sparq {

// Weak default so the library links while a family's list is not written yet; the family's own
// definition replaces it. Linking sparq_objects (not the sparq_testing archive) into a binary
// guarantees the strong definition is linked when it exists.
namespace attention_detail {
__attribute__((weak)) std::vector<rt::KernelVariant> attention_kernel_variants() {
  return {};
}
}  // namespace attention_detail
namespace quant_detail {
__attribute__((weak)) std::vector<rt::KernelVariant> quant_kernel_variants() {
  return {};
}
}  // namespace quant_detail

namespace rt {

std::vector<KernelVariant> all_kernel_variants() {
  std::vector<KernelVariant> all;
  auto append = [&all](std::vector<KernelVariant> family) {
    all.insert(all.end(), std::make_move_iterator(family.begin()),
               std::make_move_iterator(family.end()));
  };
  append(runtime_kernel_variants());
  append(attention_detail::attention_kernel_variants());
  append(diffusion::detail_diffusion::diffusion_kernel_variants());
  append(mamba::detail_mamba::mamba_kernel_variants());
  append(quant_detail::quant_kernel_variants());
  append(quest_detail::quest_kernel_variants());
  append(sparse_detail::sparse_kernel_variants());
  append(sparse_detail::builder_kernel_variants());
  append(nvfp4_detail::nvfp4_kernel_variants());
  return all;
}

}  // namespace rt
}  // namespace sparq
