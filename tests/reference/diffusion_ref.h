// Float64 references of the diffusers sampler step formulas (specs/diffusion_sampling.md §2),
// written from diffusers' own expressions (derivative form, D0/D1 form, TrigFlow conversion),
// not from sparq's expanded fma chains, so they check the algebra as well as the rounding.
#pragma once
#include <vector>

#include "sparq/diffusion.h"

namespace sparq::test::ref {

// One step on doubles. x: latent, m: model output (after CFG, and guidance rescale), m1: previous
// x0 (DPM), z: noise, thr: the sample's dynamic threshold (used when the config thresholds).
// Returns the next latent; *x0 receives the predicted clean sample (LCM: the denoised d).
double diffusion_step(const diffusion::Schedule& s, int step, float eta, double x, double m,
                      double m1, double z, double* x0, double thr = 1.0);

// The toy denoiser of the trajectory tests: m = tanh(x)·c + 0.1·sin(j), deterministic.
double toy_model(double x, long j, int step);

}  // namespace sparq::test::ref
