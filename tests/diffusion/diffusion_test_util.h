// Helpers of the diffusion tests: typed uploads, widened downloads, one step run on a Context.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/convert.h"
#include "sparq/sparq.h"
#include "test_support.h"

namespace sparq::test::diff {

using namespace sparq::diffusion;

using sparq::test::download_f32;
using sparq::test::upload_as;

inline const char* sampler_name(Sampler s) {
  switch (s) {
    case Sampler::DDIM:
      return "DDIM";
    case Sampler::Euler:
      return "Euler";
    case Sampler::EulerAncestral:
      return "EulerAncestral";
    case Sampler::DPMpp2M:
      return "DPMpp2M";
    case Sampler::DPMpp2MSDE:
      return "DPMpp2MSDE";
    case Sampler::FlowEuler:
      return "FlowEuler";
    case Sampler::SCM:
      return "SCM";
    case Sampler::LCM:
      return "LCM";
  }
  return "?";
}

inline const char* prediction_name(Prediction p) {
  switch (p) {
    case Prediction::Epsilon:
      return "eps";
    case Prediction::VPrediction:
      return "v";
    case Prediction::Sample:
      return "sample";
    case Prediction::Flow:
      return "flow";
  }
  return "?";
}

// Inputs of one step, as host vectors.
struct StepInputs {
  std::vector<float> x, model, history, noise;
};

// Outputs of one step, widened to fp32.
struct StepOutputs {
  std::vector<float> y, x0, history, next;
};

// Runs step() on ctx with fresh tensors made from `in` (model in dtype mdt; next in dtype ndt).
// off > 0: every tensor is a view starting `off` elements into a larger buffer (unaligned data).
inline StepOutputs run_step(Context& ctx, std::span<const StepCoeffs> k,
                            const std::vector<std::int64_t>& shape, const StepInputs& in, DType mdt,
                            DType ndt, const std::vector<std::uint64_t>& seeds,
                            bool want_next = true, std::int64_t off = 0) {
  auto place = [&](Tensor full, const std::vector<std::int64_t>& sh) {
    return full.view(sh, {}, off);
  };
  auto numel = [](const std::vector<std::int64_t>& sh) {
    std::int64_t n = 1;
    for (auto d : sh) n *= d;
    return n;
  };
  auto padded = [&](const std::vector<float>& v) {
    std::vector<float> p(static_cast<std::size_t>(off), 0.0f);
    p.insert(p.end(), v.begin(), v.end());
    return p;
  };
  auto up = [&](const std::vector<float>& v, DType dt, const std::vector<std::int64_t>& sh) {
    return place(upload_as(ctx, padded(v), dt, {numel(sh) + off}), sh);
  };
  auto empty = [&](DType dt, const std::vector<std::int64_t>& sh) {
    return place(ctx.empty(dt, {numel(sh) + off}), sh);
  };
  StepTensors t;
  t.latent = up(in.x, DType::f32, shape);
  auto mshape = shape;
  if (k[0].cfg) mshape[0] *= 2;
  t.model_out = up(in.model, mdt, mshape);
  const bool dpm = k[0].sampler == Sampler::DPMpp2M || k[0].sampler == Sampler::DPMpp2MSDE;
  if (dpm) t.history = up(in.history, DType::f32, shape);
  t.x0_out = empty(DType::f32, shape);
  if (want_next) t.model_in_next = empty(ndt, shape);
  if (!in.noise.empty()) t.noise = up(in.noise, DType::f32, shape);
  t.seeds = make_seeds(ctx, seeds);
  step(ctx, k, t);
  StepOutputs o;
  o.y = t.latent.download<float>();
  o.x0 = t.x0_out.download<float>();
  if (dpm) o.history = t.history.download<float>();
  if (want_next) o.next = download_f32(t.model_in_next);
  return o;
}

inline std::vector<std::uint64_t> seeds_for(int batch, std::uint64_t base) {
  std::vector<std::uint64_t> s(static_cast<std::size_t>(batch));
  for (int b = 0; b < batch; ++b) s[static_cast<std::size_t>(b)] = base * 1000003u + 17u * b;
  return s;
}

}  // namespace sparq::test::diff
