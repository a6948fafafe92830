// Every kernel program variant the diffusion ops can build (warm-up, build-every-variant test).
#include "diffusion_common.h"
#include "diffusion_kernels.h"

namespace sparq::diffusion::detail_diffusion {

std::vector<rt::KernelVariant> diffusion_kernel_variants() {
  std::vector<rt::KernelVariant> v;
  for (int family : {SQ_SAMPLER_DDIM, SQ_SAMPLER_EULER, SQ_SAMPLER_DPM, SQ_SAMPLER_FLOW,
                     SQ_SAMPLER_SCM, SQ_SAMPLER_LCM})
    for (bool vec4 : {false, true})
      v.push_back({StepKernelConfig::source, StepKernelConfig{family, vec4, quad_qpt()}.defines()});
  v.push_back({NoiseKernelConfig::source, NoiseKernelConfig{quad_qpt()}.defines()});
  v.push_back({GuideKernelConfig::source, GuideKernelConfig{}.defines()});
  v.push_back({SimKernelConfig::source, SimKernelConfig{}.defines()});
  return v;
}

}  // namespace sparq::diffusion::detail_diffusion
