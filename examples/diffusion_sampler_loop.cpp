// A sampler loop as an app drives it: schedule -> initial noise -> per step (model on the CFG
// batch, one fused sparq step) -> final latent. The "denoiser" is a toy (no network): it returns
// tanh(x)-shaped predictions for the cond half and a damped copy for the uncond half. Everything
// stays in sparq tensors on the Context's device except the toy model, which the app would run
// on its own framework (here on the host).
//
// Usage: diffusion_sampler_loop [ddim|euler|euler-a|dpm|dpm-sde|flow|scm|lcm] [steps] [rescale]
// (rescale: the guidance-rescale phi, e.g. 0.7, fused into each step)
// Runs on $SPARQ_DEVICE (default: first capable GPU, else PoCL, else the fallback), then repeats
// the run on the fallback and prints whether the two final latents are bit-identical.
#include <sparq/sparq.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace sd = sparq::diffusion;

namespace {

sd::Sampler parse(const std::string& s) {
  if (s == "euler") return sd::Sampler::Euler;
  if (s == "euler-a") return sd::Sampler::EulerAncestral;
  if (s == "dpm") return sd::Sampler::DPMpp2M;
  if (s == "dpm-sde") return sd::Sampler::DPMpp2MSDE;
  if (s == "flow") return sd::Sampler::FlowEuler;
  if (s == "scm") return sd::Sampler::SCM;
  if (s == "lcm") return sd::Sampler::LCM;
  return sd::Sampler::DDIM;
}

// The app's network: [uncond; cond] predictions for the current (scaled) model input.
std::vector<float> toy_denoiser(const std::vector<float>& x_in, double timestep) {
  const std::size_t n = x_in.size();
  std::vector<float> out(2 * n);
  const double c = 0.5 + 0.0002 * timestep;
  for (std::size_t i = 0; i < n; ++i) {
    out[n + i] = static_cast<float>(std::tanh(x_in[i]) * c);  // cond
    out[i] = static_cast<float>(0.9 * out[n + i]);            // uncond
  }
  return out;
}

std::vector<float> sample(sparq::Context& ctx, sd::Sampler sampler, int steps, float rescale) {
  sd::ScheduleConfig cfg{
      .beta_schedule = sd::BetaSchedule::ScaledLinear, .beta_start = 0.00085, .beta_end = 0.012};
  if (sampler == sd::Sampler::FlowEuler || sampler == sd::Sampler::SCM)
    cfg = {.prediction = sd::Prediction::Flow, .shift = 3.0};
  const sd::Schedule sched = sd::make_schedule(sampler, cfg, steps);
  const std::vector<std::int64_t> shape{2, 4, 64, 64};  // two images, SD1.5 512x512 latents
  const std::vector<std::uint64_t> seeds{1234, 5678};   // one seed per image
  sd::StepTensors t;
  t.seeds = sd::make_seeds(ctx, seeds);
  t.latent = sd::randn(ctx, t.seeds, shape, {.scale = static_cast<float>(sched.init_noise_sigma)});
  t.model_in_next = ctx.empty(sparq::DType::f32, shape);  // fused scale_model_input
  if (sampler == sd::Sampler::DPMpp2M || sampler == sd::Sampler::DPMpp2MSDE)
    t.history = ctx.empty(sparq::DType::f32, shape);
  std::vector<std::int64_t> cfg_shape = shape;
  cfg_shape[0] *= 2;
  for (int i = 0; i < steps; ++i) {
    // Step 0's model input is scaled on the host; later ones come fused from the previous step.
    std::vector<float> x_in = (i == 0 ? t.latent : t.model_in_next).download<float>();
    if (i == 0)
      for (auto& v : x_in) v = static_cast<float>(v * sd::model_input_scale(sched, 0));
    const auto pred = toy_denoiser(x_in, sd::model_timestep(sched, i));
    t.model_out = ctx.upload(pred, sparq::DType::f32, cfg_shape);
    sd::step(ctx,
             sd::step_coeffs(sched, i,
                             {.cfg = true, .guidance_scale = 4.5f, .guidance_rescale = rescale}),
             t);
  }
  return t.latent.download<float>();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const sd::Sampler sampler = parse(argc > 1 ? argv[1] : "ddim");
    const int steps = argc > 2 ? std::atoi(argv[2]) : (sampler == sd::Sampler::LCM ? 4 : 20);
    const float rescale = argc > 3 ? std::strtof(argv[3], nullptr) : 0.0f;
    sparq::Context dev = sparq::Context::create();
    sparq::Context cpu = sparq::Context::create({.device = "fallback"});
    const auto a = sample(dev, sampler, steps, rescale);
    const auto b = sample(cpu, sampler, steps, rescale);
    double mean = 0;
    for (float v : a) mean += v;
    const bool same = std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    std::printf("device: %s\nfinal latent mean %.6f over %zu values; device == fallback: %s\n",
                dev.device().name.c_str(), mean / static_cast<double>(a.size()), a.size(),
                same ? "bit-identical" : "DIFFERENT");
    return same ? 0 : 1;
  } catch (const sparq::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
