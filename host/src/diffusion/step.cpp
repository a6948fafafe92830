// sparq::diffusion::step: validate the tensors and coefficients -> pick the sampler-family
// program -> set arguments -> launch (or run the fallback executor).
#include <cstring>
#include <mutex>

#include "diffusion_common.h"
#include "diffusion_kernels.h"
#include "fallback_cpu/diffusion/diffusion_fallback.h"

namespace sparq::diffusion {

using namespace detail_diffusion;

namespace {

constexpr const char* kOp = "diffusion::step";

cl_common::SqStepCoef pack(const StepCoeffs& k) {
  cl_common::SqStepCoef w;
  for (int t = 0; t < 8; ++t) w.c[t] = k.c[t];
  w.guidance = k.guidance;
  w.c_in_next = k.c_in_next;
  w.flags = k.flags;
  w.step = static_cast<std::uint32_t>(k.step);
  return w;
}

// 16 words per sample, as step.cl reads them.
std::vector<std::uint32_t> words(std::span<const StepCoeffs> coeffs) {
  std::vector<std::uint32_t> w(coeffs.size() * 16, 0u);
  for (std::size_t b = 0; b < coeffs.size(); ++b) {
    const auto p = pack(coeffs[b]);
    std::memcpy(&w[b * 16], &p, sizeof p);
  }
  return w;
}

void check_like(const char* arg, const Tensor& t, const Tensor& latent,
                const detail::ContextImpl& impl, bool any_float) {
  check_tensor(kOp, arg, t, impl, any_float);
  if (t.shape() != latent.shape())
    rt::fail(ErrorCode::shape_mismatch, kOp, "{} has shape [{}]; expected the latent's [{}]", arg,
             fmt::join(t.shape(), ", "), fmt::join(latent.shape(), ", "));
}

}  // namespace

void step(Context& ctx, std::span<const StepCoeffs> coeffs, const StepTensors& t) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  check_tensor(kOp, "latent", t.latent, impl, false);
  require(kOp, t.latent.rank() >= 2, "latent must be [B, ...] with rank >= 2, got {}",
          t.latent.desc().describe());
  const std::int64_t batch = t.latent.dim(0), n = t.latent.numel(), s = batch ? n / batch : 0;
  require(
      kOp,
      !coeffs.empty() && (coeffs.size() == 1 || static_cast<std::int64_t>(coeffs.size()) == batch),
      "coeffs has {} entries; expected 1 (broadcast) or B = {}", coeffs.size(), batch);
  const StepCoeffs& k0 = coeffs[0];
  for (const auto& k : coeffs) {
    require(kOp, k.step >= 0, "step index {} is negative", k.step);
    require(kOp, k.sampler == k0.sampler && k.cfg == k0.cfg,
            "all per-sample coeffs must have the same sampler and cfg");
    require(kOp, std::isfinite(k.guidance), "guidance is not finite ({})", k.guidance);
    for (float c : k.c) require(kOp, !std::isnan(c), "a step coefficient is NaN");
  }
  check_tensor(kOp, "model_out", t.model_out, impl, true);
  std::vector<std::int64_t> mshape = t.latent.shape();
  if (k0.cfg) mshape[0] *= 2;
  if (t.model_out.shape() != mshape)
    rt::fail(ErrorCode::shape_mismatch, kOp, "model_out has shape [{}]; expected [{}]{}",
             fmt::join(t.model_out.shape(), ", "), fmt::join(mshape, ", "),
             k0.cfg ? " ([uncond; cond] for CFG)" : "");
  const bool dpm = k0.sampler == Sampler::DPMpp2M || k0.sampler == Sampler::DPMpp2MSDE;
  if (dpm)
    check_like("history", t.history, t.latent, impl, false);
  else
    require(kOp, !t.history.defined(), "history is used by DPM-Solver++ only");
  if (t.x0_out.defined()) check_like("x0_out", t.x0_out, t.latent, impl, false);
  if (t.model_in_next.defined()) check_like("model_in_next", t.model_in_next, t.latent, impl, true);
  bool noise = false;
  for (const auto& k : coeffs) noise = noise || k.draws_noise();
  if (t.noise.defined()) check_like("noise", t.noise, t.latent, impl, false);
  if (noise && !t.noise.defined()) check_seeds(kOp, t.seeds, impl, batch);
  if (n == 0) return;
  const int family = StepKernelConfig::family_of(k0.sampler);
  const bool per_sample = coeffs.size() > 1;

  if (!impl.device) {
    std::vector<cl_common::SqStepCoef> packed;
    for (const auto& k : coeffs) packed.push_back(pack(k));
    fallback::diffusion::StepProblem p;
    p.sampler = family;
    p.y = host_ptr<float>(t.latent);
    p.x = p.y;
    p.model = host_ptr<std::byte>(t.model_out);
    p.model_dtype = static_cast<int>(t.model_out.dtype());
    p.cfg = k0.cfg;
    if (dpm) p.history = host_ptr<float>(t.history);
    if (t.x0_out.defined()) p.x0_out = host_ptr<float>(t.x0_out);
    if (t.model_in_next.defined()) {
      p.next = host_ptr<std::byte>(t.model_in_next);
      p.next_dtype = static_cast<int>(t.model_in_next.dtype());
    }
    if (t.noise.defined()) p.noise = host_ptr<float>(t.noise);
    if (noise && !t.noise.defined()) p.seeds = host_ptr<std::uint32_t>(t.seeds);
    p.coefs = packed.data();
    p.per_sample = per_sample;
    p.s = s;
    p.n = n;
    fallback::diffusion::step(p);
    return;
  }

  auto& dev = *impl.device;
  cl::Buffer coef_buf;
  const auto w = words(coeffs);
  if (per_sample) {
    coef_buf = dev.allocate(w.size() * 4, "diffusion::step coefficients");
    dev.write(coef_buf, 0, w.size() * 4, w.data(), kOp);
  }
  cl_uint16 bc{};
  std::memcpy(&bc, w.data(), sizeof bc);
  const StepKernelConfig cfg{family};
  cl::Kernel kern = dev.kernel(cfg.source, cfg.kernel, cfg.defines());
  cl_uint a = 0;
  auto buf = [&](const Tensor& x) {
    if (x.defined())
      kern.setArg(a++, x.storage()->buffer);
    else
      kern.setArg(a++, sizeof(cl_mem), nullptr);
    kern.setArg(a++, static_cast<cl_long>(x.defined() ? x.offset() : 0));
  };
  buf(t.latent);
  buf(t.latent);
  buf(t.model_out);
  kern.setArg(a++, static_cast<cl_int>(t.model_out.dtype()));
  kern.setArg(a++, static_cast<cl_int>(k0.cfg));
  buf(dpm ? t.history : Tensor());
  kern.setArg(a++, static_cast<cl_int>(dpm));
  buf(t.x0_out);
  kern.setArg(a++, static_cast<cl_int>(t.x0_out.defined()));
  buf(t.model_in_next);
  kern.setArg(
      a++, static_cast<cl_int>(t.model_in_next.defined() ? t.model_in_next.dtype() : DType::f32));
  kern.setArg(a++, static_cast<cl_int>(t.model_in_next.defined()));
  buf(t.noise);
  kern.setArg(a++, static_cast<cl_int>(t.noise.defined()));
  buf(noise && !t.noise.defined() ? t.seeds : Tensor());
  kern.setArg(a++, bc);
  if (per_sample)
    kern.setArg(a++, coef_buf);
  else
    kern.setArg(a++, sizeof(cl_mem), nullptr);
  kern.setArg(a++, static_cast<cl_int>(per_sample));
  kern.setArg(a++, static_cast<cl_long>(s));
  kern.setArg(a++, static_cast<cl_long>(n));
  const std::size_t local = elementwise_local(impl);
  dev.launch(kOp, kern, cl::NDRange(round_up(n, local)), cl::NDRange(local));
}

}  // namespace sparq::diffusion
