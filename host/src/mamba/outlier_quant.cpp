// sparq::mamba::outlier_quantize and dequantize: validate -> allocate the QuantizedRows ->
// launch mamba_outlier_quantize / mamba_dequantize (kernels_cl/mamba/outlier_quant.cl), or run the
// fallback executor (fallback_cpu/mamba/outlier_quant.cpp). Same per-row header on both.
#include <cmath>
#include <mutex>

#include "mamba_common.h"
#include "mamba_kernels.h"

namespace sparq::mamba {

using namespace detail_mamba;

namespace {}  // namespace

QuantizedRows outlier_quantize(Context& ctx, const Tensor& x, const OutlierQuantParams& params,
                               const Tensor& static_scales) {
  constexpr const char* op = "mamba::outlier_quantize";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "x", x, impl);
  if (x.rank() != 3 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) < 1)
    rt::fail(ErrorCode::shape_mismatch, op, "x is {}; expected [B, L, C], all >= 1",
             x.desc().describe());
  check_float(op, "x", x, impl, x.shape(), true);
  const std::int64_t batch = x.dim(0), L = x.dim(1), C = x.dim(2);
  require(op, C <= INT32_MAX, "x has C = {} channels; at most {}", C, INT32_MAX);
  check_params(op, params, C);
  if (params.static_scale) {
    require(op, static_scales.defined(), "static_scales is empty but params.static_scale is set");
    check_float(op, "static_scales", static_scales, impl, {L}, true);
    for (float s : static_scales.download<float>())
      require(op, std::isfinite(s) && s > 0.0f,
              "static_scales holds {}; expected finite values > 0", s);
  } else {
    require(op, !static_scales.defined(), "static_scales is given but params.static_scale is off");
  }
  const bool bits8 = params.bits == InlierBits::Int8;
  const int fmt = fmt_code(params.outlier_format);
  const std::int64_t K = params.max_outliers;
  QuantizedRows q;
  q.params = params;
  q.C = C;
  q.codes = new_tensor(ctx, bits8 ? DType::i8 : DType::u8, {batch, L, bits8 ? C : (C + 1) / 2});
  q.scales = new_tensor(ctx, DType::f32, {batch, L});
  q.outlier_count = new_tensor(ctx, DType::i32, {batch, L});
  q.outlier_idx = new_tensor(ctx, DType::i32, {batch, L, K});
  q.outlier_val = new_tensor(ctx, val_dtype(params.outlier_format), {batch, L, K});
  if (fmt == 2) q.outlier_scale = new_tensor(ctx, DType::f32, {batch, L});
  if (!impl.device) {
    fallback::mamba::OutlierQuantProblem p;
    p.x = reinterpret_cast<const float*>(detail::host_data(x));
    if (params.static_scale)
      p.static_scales = reinterpret_cast<const float*>(detail::host_data(static_scales));
    p.codes = reinterpret_cast<std::uint8_t*>(detail::host_data_mut(q.codes));
    p.scales = reinterpret_cast<float*>(detail::host_data_mut(q.scales));
    p.counts = reinterpret_cast<std::int32_t*>(detail::host_data_mut(q.outlier_count));
    p.idx = reinterpret_cast<std::int32_t*>(detail::host_data_mut(q.outlier_idx));
    std::byte* val = detail::host_data_mut(q.outlier_val);
    if (fmt == 0) p.val_f = reinterpret_cast<float*>(val);
    if (fmt == 1) p.val_h = reinterpret_cast<std::uint16_t*>(val);
    if (fmt == 2) {
      p.val_b = reinterpret_cast<std::uint8_t*>(val);
      p.oscale = reinterpret_cast<float*>(detail::host_data_mut(q.outlier_scale));
    }
    p.batch = batch;
    p.L = L;
    p.C = static_cast<int>(C);
    p.window = params.window;
    p.K = static_cast<int>(K);
    p.fmt = fmt;
    p.bits8 = bits8;
    p.static_scale = params.static_scale;
    p.k_sigma = params.k_sigma;
    fallback::mamba::outlier_quantize(p);
    return q;
  }
  auto& dev = *impl.device;
  cl::Kernel k =
      dev.kernel(OutlierQuantKernelConfig::source, OutlierQuantKernelConfig::quant_kernel,
                 OutlierQuantKernelConfig::defines());
  const Tensor &idx = q.outlier_idx, &val = q.outlier_val;
  cl_uint i = 0;
  set_buffer(k, i++, x);
  k.setArg(i++, static_cast<cl_long>(x.offset()));
  k.setArg(i++, static_cast<cl_long>(batch));
  k.setArg(i++, static_cast<cl_long>(L));
  k.setArg(i++, static_cast<cl_int>(C));
  k.setArg(i++, static_cast<cl_int>(params.window));
  k.setArg(i++, static_cast<cl_int>(bits8));
  k.setArg(i++, static_cast<cl_int>(fmt));
  k.setArg(i++, params.k_sigma);
  k.setArg(i++, static_cast<cl_int>(K));
  k.setArg(i++, static_cast<cl_int>(params.static_scale));
  set_buffer(k, i++, params.static_scale ? static_scales : Tensor());
  k.setArg(i++, static_cast<cl_long>(params.static_scale ? static_scales.offset() : 0));
  set_buffer(k, i++, q.codes);
  set_buffer(k, i++, q.scales);
  set_buffer(k, i++, q.outlier_count);
  set_buffer(k, i++, idx);
  set_buffer(k, i++, fmt == 0 ? val : Tensor());
  set_buffer(k, i++, fmt == 1 ? val : Tensor());
  set_buffer(k, i++, fmt == 2 ? val : Tensor());
  set_buffer(k, i++, q.outlier_scale);
  const std::int64_t n = batch * ((L + params.window - 1) / params.window);
  const std::size_t local = 64;
  dev.launch(op, k, cl::NDRange((static_cast<std::size_t>(n) + local - 1) / local * local),
             cl::NDRange(local));
  return q;
}

Tensor dequantize(Context& ctx, const QuantizedRows& q) {
  constexpr const char* op = "mamba::dequantize";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const OutlierQuantParams& params = q.params;
  const std::int64_t C = q.C;
  require(op, C >= 1 && C <= INT32_MAX, "C is {}; expected >= 1", C);
  check_params(op, params, C);
  detail::check_tensor_owner(op, "scales", q.scales, impl);
  require(op, q.scales.rank() == 2, "scales is {}; expected f32[B, L]", q.scales.desc().describe());
  const std::int64_t batch = q.scales.dim(0), L = q.scales.dim(1), K = params.max_outliers;
  require(op, batch >= 1 && L >= 1, "scales is {}; expected f32[B, L], B, L >= 1",
          q.scales.desc().describe());
  const bool bits8 = params.bits == InlierBits::Int8;
  const int fmt = fmt_code(params.outlier_format);
  check_field(op, "scales", q.scales, impl, DType::f32, {batch, L});
  check_field(op, "codes", q.codes, impl, bits8 ? DType::i8 : DType::u8,
              {batch, L, bits8 ? C : (C + 1) / 2});
  check_field(op, "outlier_count", q.outlier_count, impl, DType::i32, {batch, L});
  check_field(op, "outlier_idx", q.outlier_idx, impl, DType::i32, {batch, L, K});
  check_field(op, "outlier_val", q.outlier_val, impl, val_dtype(params.outlier_format),
              {batch, L, K});
  if (fmt == 2) check_field(op, "outlier_scale", q.outlier_scale, impl, DType::f32, {batch, L});
  // The lists are indices into the output: check them before a kernel writes through them.
  {
    const auto cnt = q.outlier_count.download<std::int32_t>();
    const auto idx = q.outlier_idx.download<std::int32_t>();
    for (std::size_t r = 0; r < cnt.size(); ++r) {
      require(op, cnt[r] >= 0 && cnt[r] <= K, "outlier_count[{}] is {}; expected 0..{}", r, cnt[r],
              K);
      for (std::int32_t s = 0; s < cnt[r]; ++s) {
        const std::int32_t j = idx[r * static_cast<std::size_t>(K) + static_cast<std::size_t>(s)];
        require(op, j >= 0 && j < C, "outlier_idx of row {} holds {}; expected 0..{}", r, j, C - 1);
      }
    }
  }
  Tensor out = new_tensor(ctx, DType::f32, {batch, L, C});
  if (!impl.device) {
    fallback::mamba::DequantProblem p;
    p.out = reinterpret_cast<float*>(detail::host_data_mut(out));
    p.codes = reinterpret_cast<const std::uint8_t*>(detail::host_data(q.codes));
    p.scales = reinterpret_cast<const float*>(detail::host_data(q.scales));
    p.counts = reinterpret_cast<const std::int32_t*>(detail::host_data(q.outlier_count));
    p.idx = reinterpret_cast<const std::int32_t*>(detail::host_data(q.outlier_idx));
    const std::byte* val = detail::host_data(q.outlier_val);
    if (fmt == 0) p.val_f = reinterpret_cast<const float*>(val);
    if (fmt == 1) p.val_h = reinterpret_cast<const std::uint16_t*>(val);
    if (fmt == 2) {
      p.val_b = reinterpret_cast<const std::uint8_t*>(val);
      p.oscale = reinterpret_cast<const float*>(detail::host_data(q.outlier_scale));
    }
    p.rows = batch * L;
    p.C = static_cast<int>(C);
    p.K = static_cast<int>(K);
    p.fmt = fmt;
    p.bits8 = bits8;
    fallback::mamba::dequantize(p);
    return out;
  }
  auto& dev = *impl.device;
  cl::Kernel k =
      dev.kernel(OutlierQuantKernelConfig::source, OutlierQuantKernelConfig::dequant_kernel,
                 OutlierQuantKernelConfig::defines());
  const Tensor &idx = q.outlier_idx, &val = q.outlier_val;
  cl_uint i = 0;
  set_buffer(k, i++, out);
  k.setArg(i++, static_cast<cl_long>(batch * L));
  k.setArg(i++, static_cast<cl_int>(C));
  set_buffer(k, i++, q.codes);
  k.setArg(i++, static_cast<cl_int>(bits8));
  set_buffer(k, i++, q.scales);
  set_buffer(k, i++, q.outlier_count);
  set_buffer(k, i++, idx);
  k.setArg(i++, static_cast<cl_int>(K));
  k.setArg(i++, static_cast<cl_int>(fmt));
  set_buffer(k, i++, fmt == 0 ? val : Tensor());
  set_buffer(k, i++, fmt == 1 ? val : Tensor());
  set_buffer(k, i++, fmt == 2 ? val : Tensor());
  set_buffer(k, i++, fmt == 2 ? q.outlier_scale : Tensor());
  const std::size_t local = 64;
  const auto rows = static_cast<std::size_t>(batch * L);
  dev.launch(op, k, cl::NDRange((rows + local - 1) / local * local), cl::NDRange(local));
  return out;
}

}  // namespace sparq::mamba
