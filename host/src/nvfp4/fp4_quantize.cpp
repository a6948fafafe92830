// sparq::fp4_quantize_rows / fp4_quantize_tokens: validate -> allocate the packed tensors ->
// launch kernels_cl/nvfp4/fp4_quant.cl, or run fallback_cpu/nvfp4/fp4_quant.cpp. Same bytes.
#include <mutex>

#include "fallback_cpu/nvfp4/nvfp4_fallback.h"
#include "host/src/quant/quant_ops.h"
#include "nvfp4_common.h"

namespace sparq {

namespace nvfp4_detail {

namespace {

void check_input(const char* op, const Tensor& x, const detail::ContextImpl& impl) {
  detail::check_tensor_owner(op, "x", x, impl);
  if (x.dtype() != DType::f32 || x.rank() != 4 || !x.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "x is {}; expected a contiguous f32[B, H, L, D]",
             x.desc().describe());
  for (int i = 0; i < 4; ++i)
    require(op, x.dim(i) >= 1, "x is {}; every dimension must be >= 1", x.desc().describe());
  require(op, x.dim(3) % 16 == 0 && x.dim(3) <= 4096,
          "x has D = {}; expected a multiple of 16 (the group size), at most 4096", x.dim(3));
  require(op, x.dim(2) <= (std::int64_t{1} << 30), "x has L = {}; at most 2^30", x.dim(2));
}

}  // namespace

Tensor scratch_or_new(Context& ctx, quant_detail::Scratch* scratch, DType t,
                      std::vector<std::int64_t> shape) {
  if (scratch) return scratch->get(ctx, t, std::move(shape));
  return new_tensor(ctx, t, std::move(shape));
}

Fp4Packed quantize_rows(Context& ctx, const Tensor& x, const Tensor& mean, int mean_rows,
                        quant_detail::Scratch* scratch) {
  auto& impl = *ctx.impl();
  const std::int64_t B = x.dim(0), H = x.dim(1), L = x.dim(2), D = x.dim(3);
  const int nblk = mean_rows > 0 ? static_cast<int>((L + mean_rows - 1) / mean_rows) : 0;
  Fp4Packed out;
  out.codes = scratch_or_new(ctx, scratch, DType::u8, {B, H, L, D / 2});
  out.scales = scratch_or_new(ctx, scratch, DType::u8, {B, H, L, D / 16});
  if (!impl.device) {
    fallback::nvfp4::quantize_rows(
        host_ptr<float>(x), mean_rows > 0 ? host_ptr<float>(mean) : nullptr, mean_rows, nblk, B * H,
        static_cast<int>(L), static_cast<int>(D), host_mut<std::uint8_t>(out.codes),
        host_mut<std::uint8_t>(out.scales));
    return out;
  }
  auto& dev = *impl.device;
  cl::Kernel k = dev.kernel(Fp4QuantKernelConfig::source, Fp4QuantKernelConfig::rows_kernel,
                            Fp4QuantKernelConfig::defines());
  rt::set_kernel_args("fp4_quantize_rows", k, buffer(x), static_cast<cl_long>(x.offset()),
                      mean_rows > 0 ? buffer(mean) : buffer(x), static_cast<cl_int>(mean_rows),
                      static_cast<cl_int>(nblk), static_cast<cl_long>(B * H),
                      static_cast<cl_int>(L), static_cast<cl_int>(D), buffer(out.codes),
                      buffer(out.scales));
  const std::int64_t groups = B * H * L * (D / 16);
  const std::int64_t wg = Fp4QuantKernelConfig::work_group;
  dev.launch("fp4_quantize_rows", k, cl::NDRange(static_cast<std::size_t>(round_up(groups, wg))),
             cl::NDRange(static_cast<std::size_t>(wg)));
  return out;
}

Fp4PackedT quantize_tokens(Context& ctx, const Tensor& x, quant_detail::Scratch* scratch) {
  auto& impl = *ctx.impl();
  const std::int64_t B = x.dim(0), H = x.dim(1), L = x.dim(2), D = x.dim(3);
  const std::int64_t L64 = round_up(L, 64);
  Fp4PackedT out;
  out.tokens = L;
  out.codes = scratch_or_new(ctx, scratch, DType::u8, {B, H, D, L64 / 2});
  out.scales = scratch_or_new(ctx, scratch, DType::u8, {B, H, D, L64 / 16});
  if (!impl.device) {
    fallback::nvfp4::quantize_tokens(
        host_ptr<float>(x), B * H, static_cast<int>(L), static_cast<int>(L64), static_cast<int>(D),
        host_mut<std::uint8_t>(out.codes), host_mut<std::uint8_t>(out.scales));
    return out;
  }
  auto& dev = *impl.device;
  cl::Kernel k = dev.kernel(Fp4QuantKernelConfig::source, Fp4QuantKernelConfig::tokens_kernel,
                            Fp4QuantKernelConfig::defines());
  rt::set_kernel_args("fp4_quantize_tokens", k, buffer(x), static_cast<cl_long>(x.offset()),
                      static_cast<cl_long>(B * H), static_cast<cl_int>(L), static_cast<cl_int>(L64),
                      static_cast<cl_int>(D), buffer(out.codes), buffer(out.scales));
  const std::int64_t groups = B * H * (L64 / 16) * D;
  const std::int64_t wg = Fp4QuantKernelConfig::work_group;
  dev.launch("fp4_quantize_tokens", k, cl::NDRange(static_cast<std::size_t>(round_up(groups, wg))),
             cl::NDRange(static_cast<std::size_t>(wg)));
  return out;
}

}  // namespace nvfp4_detail

Fp4Packed fp4_quantize_rows(Context& ctx, const Tensor& x) {
  constexpr const char* op = "fp4_quantize_rows";
  std::lock_guard lock(ctx.impl()->mutex);
  nvfp4_detail::check_input(op, x, *ctx.impl());
  return nvfp4_detail::quantize_rows(ctx, x, Tensor(), 0);
}

Fp4PackedT fp4_quantize_tokens(Context& ctx, const Tensor& x) {
  constexpr const char* op = "fp4_quantize_tokens";
  std::lock_guard lock(ctx.impl()->mutex);
  nvfp4_detail::check_input(op, x, *ctx.impl());
  return nvfp4_detail::quantize_tokens(ctx, x);
}

}  // namespace sparq
