// Every kernel program variant the diffusion ops can build (warm-up, build-every-variant test).
#include "diffusion_kernels.h"

namespace sparq::diffusion::detail_diffusion {

std::vector<rt::KernelVariant> diffusion_kernel_variants() {
  std::vector<rt::KernelVariant> v;
  for (int family : {SQ_SAMPLER_DDIM, SQ_SAMPLER_EULER, SQ_SAMPLER_DPM, SQ_SAMPLER_FLOW,
                     SQ_SAMPLER_SCM, SQ_SAMPLER_LCM})
    v.push_back({StepKernelConfig::source, StepKernelConfig{family}.defines()});
  v.push_back({NoiseKernelConfig::source, NoiseKernelConfig{}.defines()});
  v.push_back({GuideKernelConfig::source, GuideKernelConfig{}.defines()});
  v.push_back({SimKernelConfig::source, SimKernelConfig{}.defines()});
  return v;
}

}  // namespace sparq::diffusion::detail_diffusion
