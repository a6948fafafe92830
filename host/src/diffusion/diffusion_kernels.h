// The diffusion kernel programs and their -D variants, in one place. Each config's defines() is
// the exact macro string the op passes (program-cache key, build-every-variant list).
#pragma once
#include <string>
#include <vector>

#include "diffusion/step_math.h"
#include "kernel_variants.h"
#include "sparq/diffusion.h"

namespace sparq::diffusion::detail_diffusion {

// kernels_cl/diffusion/step.cl: one program per sampler family (the per-element formula).
struct StepKernelConfig {
  static constexpr const char* source = "diffusion/step.cl";
  static constexpr const char* kernel = "diffusion_step";
  int family = SQ_SAMPLER_DDIM;
  bool vec4 = false;  // whole-quad vector loads/stores (s and every offset a multiple of 4)
  int qpt = 1;        // quads per work-item (kernels_cl/diffusion/quad_launch.h)
  std::string defines() const {
    return "-DSQ_SAMPLER=" + std::to_string(family) + (vec4 ? " -DSQ_VEC4=1" : "") +
           (qpt == 1 ? "" : " -DSQ_QPT=" + std::to_string(qpt));
  }
  static int family_of(Sampler s) {
    switch (s) {
      case Sampler::DDIM:
        return SQ_SAMPLER_DDIM;
      case Sampler::Euler:
      case Sampler::EulerAncestral:
        return SQ_SAMPLER_EULER;
      case Sampler::DPMpp2M:
      case Sampler::DPMpp2MSDE:
        return SQ_SAMPLER_DPM;
      case Sampler::FlowEuler:
        return SQ_SAMPLER_FLOW;
      case Sampler::SCM:
        return SQ_SAMPLER_SCM;
      case Sampler::LCM:
        return SQ_SAMPLER_LCM;
    }
    return SQ_SAMPLER_DDIM;
  }
};

// kernels_cl/diffusion/noise.cl: randn and renoise.
struct NoiseKernelConfig {
  static constexpr const char* source = "diffusion/noise.cl";
  static constexpr const char* randn_kernel = "diffusion_randn";
  static constexpr const char* renoise_kernel = "diffusion_renoise";
  int qpt = 1;  // quads per work-item (kernels_cl/diffusion/quad_launch.h)
  std::string defines() const { return qpt == 1 ? "" : "-DSQ_QPT=" + std::to_string(qpt); }
};

// kernels_cl/diffusion/guide.cl: guidance-rescale statistics and dynamic-threshold quantile.
struct GuideKernelConfig {
  static constexpr const char* source = "diffusion/guide.cl";
  static constexpr const char* stats_kernel = "diffusion_rescale_stats";
  static constexpr const char* finalize_kernel = "diffusion_rescale_finalize";
  static constexpr const char* hist_kernel = "diffusion_thresh_hist";
  static constexpr const char* select_kernel = "diffusion_thresh_select";
  static constexpr const char* scale_kernel = "diffusion_thresh_scale";
  std::string defines() const { return ""; }
};

// kernels_cl/diffusion/sim.cl: l2_normalize and sim_top1 (+ its cross-group merge).
struct SimKernelConfig {
  static constexpr const char* source = "diffusion/sim.cl";
  static constexpr const char* normalize_kernel = "diffusion_l2_normalize";
  static constexpr const char* top1_kernel = "diffusion_sim_top1";
  static constexpr const char* topk_kernel = "diffusion_sim_topk";
  std::string defines() const { return ""; }
};

std::vector<rt::KernelVariant> diffusion_kernel_variants();

}  // namespace sparq::diffusion::detail_diffusion
