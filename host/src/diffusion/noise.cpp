// make_seeds, randn, renoise_coeffs, renoise: validate -> launch noise.cl (or the fallback).
#include <bit>
#include <cmath>
#include <mutex>

#include "diffusion_common.h"
#include "diffusion_kernels.h"
#include "fallback_cpu/diffusion/diffusion_fallback.h"

namespace sparq::diffusion {

using namespace detail_diffusion;

Tensor make_seeds(Context& ctx, std::span<const std::uint64_t> seeds) {
  require("make_seeds", !seeds.empty(), "seeds is empty");
  std::vector<std::int32_t> words(seeds.size() * 2);
  for (std::size_t b = 0; b < seeds.size(); ++b) {
    words[2 * b] = static_cast<std::int32_t>(static_cast<std::uint32_t>(seeds[b]));
    words[2 * b + 1] = static_cast<std::int32_t>(static_cast<std::uint32_t>(seeds[b] >> 32));
  }
  return ctx.upload(words, DType::i32, {static_cast<std::int64_t>(seeds.size()), 2});
}

Tensor randn(Context& ctx, const Tensor& seeds, std::vector<std::int64_t> shape,
             const RandnOptions& o) {
  constexpr const char* op = "diffusion::randn";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  require(op, shape.size() >= 2, "shape must be [B, ...] with rank >= 2");
  require(op, std::isfinite(o.scale), "scale must be finite, got {}", o.scale);
  require(op, is_float_dtype(o.dtype), "dtype must be f32, f16 or bf16, got {}",
          dtype_name(o.dtype));
  check_seeds(op, seeds, impl, shape[0]);
  const std::int64_t n = detail::checked_numel(op, shape);
  const std::int64_t s = shape[0] ? n / shape[0] : 0;
  Tensor out = new_tensor(ctx, o.dtype, std::move(shape));
  if (n == 0) return out;
  if (!impl.device) {
    fallback::diffusion::randn(host_ptr<std::byte>(out), static_cast<int>(o.dtype),
                               host_ptr<std::uint32_t>(seeds), s, n, o.step, o.tag, o.scale);
    return out;
  }
  const QuadLaunch ql = quad_launch(op, impl, n / s, s);
  const NoiseKernelConfig cfg{ql.qpt};
  cl::Kernel k = impl.device->kernel(cfg.source, cfg.randn_kernel, cfg.defines());
  rt::set_kernel_args(op, k, out.storage()->buffer, static_cast<cl_int>(o.dtype),
                      seeds.storage()->buffer, static_cast<cl_long>(seeds.offset()),
                      static_cast<cl_long>(s), static_cast<cl_long>(n),
                      static_cast<cl_uint>(o.step), static_cast<cl_uint>(o.tag), o.scale,
                      static_cast<cl_uint>(ql.gps));
  impl.device->launch(op, k, cl::NDRange(ql.global), cl::NDRange(ql.local));
  return out;
}

RenoiseCoeffs renoise_coeffs(const Schedule& s, int k) {
  constexpr const char* op = "renoise_coeffs";
  check_step(op, s, k);
  RenoiseCoeffs r;
  r.step = static_cast<std::uint32_t>(k);
  const double at = s.sigmas.empty() ? 0.0 : s.sigmas[static_cast<std::size_t>(k)];
  switch (s.sampler) {
    case Sampler::DDIM:
    case Sampler::LCM: {  // VP: sqrt(abar_t), sqrt(1 - abar_t)
      const double a =
          s.alphas_cumprod[static_cast<std::size_t>(s.timesteps[static_cast<std::size_t>(k)])];
      r.a = static_cast<float>(std::sqrt(a));
      r.b = static_cast<float>(std::sqrt(1 - a));
      break;
    }
    case Sampler::Euler:
    case Sampler::EulerAncestral:  // VE view: x = x0 + sigma·z (diffusers add_noise)
      r.a = 1.0f;
      r.b = static_cast<float>(at);
      break;
    case Sampler::DPMpp2M:
    case Sampler::DPMpp2MSDE:
      if (s.config.prediction == Prediction::Flow) {
        r.a = static_cast<float>(1 - at);
        r.b = static_cast<float>(at);
      } else {  // VP coefficients of the VE sigma
        r.a = static_cast<float>(1 / std::sqrt(at * at + 1));
        r.b = static_cast<float>(at / std::sqrt(at * at + 1));
      }
      break;
    case Sampler::FlowEuler:
      r.a = static_cast<float>(1 - at);
      r.b = static_cast<float>(at);
      break;
    case Sampler::SCM:
      r.a = static_cast<float>(std::cos(at));
      r.b = static_cast<float>(s.config.sigma_data * std::sin(at));
      break;
  }
  return r;
}

Tensor renoise(Context& ctx, const Tensor& x0, const Tensor& seeds,
               std::span<const RenoiseCoeffs> coeffs) {
  constexpr const char* op = "diffusion::renoise";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  check_tensor(op, "x0", x0, impl, false);
  require(op, x0.rank() >= 2, "x0 must be [B, ...] with rank >= 2, got {}", x0.desc().describe());
  const std::int64_t batch = x0.dim(0), n = x0.numel(), s = batch ? n / batch : 0;
  check_seeds(op, seeds, impl, batch);
  require(op, coeffs.size() == 1 || static_cast<std::int64_t>(coeffs.size()) == batch,
          "coeffs has {} entries; expected 1 (broadcast) or B = {}", coeffs.size(), batch);
  std::vector<std::uint32_t> words;
  for (const auto& c : coeffs) {
    require(op, std::isfinite(c.a) && std::isfinite(c.b), "renoise coefficients must be finite");
    words.insert(words.end(), {std::bit_cast<std::uint32_t>(c.a), std::bit_cast<std::uint32_t>(c.b),
                               c.step, 0u});
  }
  const std::int64_t stride = coeffs.size() == 1 ? 0 : 4;
  Tensor y = new_tensor(ctx, DType::f32, x0.shape());
  if (n == 0) return y;
  if (!impl.device) {
    fallback::diffusion::renoise(host_ptr<float>(y), host_ptr<float>(x0),
                                 host_ptr<std::uint32_t>(seeds), words.data(), stride, s, n);
    return y;
  }
  auto& dev = *impl.device;
  cl::Buffer cbuf = dev.allocate(words.size() * 4, "renoise coefficients");
  dev.write(cbuf, 0, words.size() * 4, words.data(), op);
  const QuadLaunch ql = quad_launch(op, impl, batch, s);
  const NoiseKernelConfig cfg{ql.qpt};
  cl::Kernel k = dev.kernel(cfg.source, cfg.renoise_kernel, cfg.defines());
  rt::set_kernel_args(op, k, y.storage()->buffer, x0.storage()->buffer,
                      static_cast<cl_long>(x0.offset()), seeds.storage()->buffer,
                      static_cast<cl_long>(seeds.offset()), cbuf, static_cast<cl_long>(stride),
                      static_cast<cl_long>(s), static_cast<cl_long>(n),
                      static_cast<cl_uint>(ql.gps));
  dev.launch(op, k, cl::NDRange(ql.global), cl::NDRange(ql.local));
  return y;
}

}  // namespace sparq::diffusion
