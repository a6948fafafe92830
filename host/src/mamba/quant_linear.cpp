// sparq::mamba::quant_linear (W8A8 / W4A8 projection): validate -> widen the codes to
// integer-valued fp32 (mamba_ql_unpack) -> CLBlast SGEMM per K-chunk (one strided-batched call)
// -> int32 chunk combine + dequantizing epilogue (mamba_ql_combine); or the fallback's direct
// integer dot products. Both give the same integers, hence the same bits.
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120  // clblast.h includes CL/cl.h itself
#endif
#include <clblast.h>

#include <mutex>

#include "mamba_common.h"
#include "mamba_kernels.h"

namespace sparq::mamba {

using namespace detail_mamba;

namespace {

constexpr const char* kOp = "mamba::quant_linear";

void check_no_outliers(const char* arg, const QuantizedRows& q) {
  require(kOp, q.params.max_outliers == 0,
          "{} has max_outliers = {}; quant_linear takes rows without outliers (max_outliers 0)",
          arg, q.params.max_outliers);
}

}  // namespace

Tensor quant_linear(Context& ctx, const QuantLinearArgs& a) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(kOp, "x.scales", a.x.scales, impl);
  detail::check_tensor_owner(kOp, "w.scales", a.w.scales, impl);
  require(kOp, a.x.scales.rank() == 2, "x.scales is {}; expected f32[B, L]",
          a.x.scales.desc().describe());
  require(kOp, a.w.scales.rank() == 2 && a.w.scales.dim(0) == 1,
          "w.scales is {}; expected f32[1, O] (one row per output channel)",
          a.w.scales.desc().describe());
  const std::int64_t batch = a.x.scales.dim(0), L = a.x.scales.dim(1), O = a.w.scales.dim(1);
  const std::int64_t K = a.x.C;
  require(kOp, batch >= 1 && L >= 1 && O >= 1, "x rows [{}, {}] and O = {} must be >= 1", batch, L,
          O);
  check_no_outliers("x", a.x);
  check_no_outliers("w", a.w);
  require(kOp, a.w.C == K, "w has rows of {} values; expected K = {} (x's)", a.w.C, K);
  require(kOp, K <= QuantLinearKernelConfig::k_max,
          "K = {} exceeds {} (the int32 accumulator bound)", K, QuantLinearKernelConfig::k_max);
  check_qrows(kOp, "x", a.x, impl, batch, L, true);
  check_qrows(kOp, "w", a.w, impl, 1, O, true);
  if (a.bias.defined()) check_float(kOp, "bias", a.bias, impl, {O}, true);
  const bool x8 = a.x.params.bits == InlierBits::Int8, w8 = a.w.params.bits == InlierBits::Int8;
  const std::int64_t R = batch * L;
  Tensor out = new_tensor(ctx, DType::f32, {batch, L, O});

  if (!impl.device) {
    fallback::mamba::QuantLinearProblem p;
    p.xc = reinterpret_cast<const std::uint8_t*>(detail::host_data(a.x.codes));
    p.wc = reinterpret_cast<const std::uint8_t*>(detail::host_data(a.w.codes));
    p.sx = reinterpret_cast<const float*>(detail::host_data(a.x.scales));
    p.sw = reinterpret_cast<const float*>(detail::host_data(a.w.scales));
    if (a.bias.defined()) p.bias = reinterpret_cast<const float*>(detail::host_data(a.bias));
    p.out = reinterpret_cast<float*>(detail::host_data_mut(out));
    p.x8 = x8;
    p.w8 = w8;
    p.R = R;
    p.O = O;
    p.K = K;
    fallback::mamba::quant_linear(p);
    return out;
  }

  auto& dev = *impl.device;
  const std::int64_t nchunks =
      (K + QuantLinearKernelConfig::chunk_max - 1) / QuantLinearKernelConfig::chunk_max;
  const std::int64_t Kc = (K + nchunks - 1) / nchunks, Kp = nchunks * Kc;
  Tensor xf = new_tensor(ctx, DType::f32, {R, Kp});
  Tensor wf = new_tensor(ctx, DType::f32, {O, Kp});
  Tensor part = new_tensor(ctx, DType::f32, {nchunks, R, O});
  const std::size_t local = 64;
  auto groups = [&](std::int64_t n) {
    return cl::NDRange((static_cast<std::size_t>(n) + local - 1) / local * local);
  };
  for (auto [codes, bits8, rows, dst] :
       {std::tuple{&a.x.codes, x8, R, &xf}, std::tuple{&a.w.codes, w8, O, &wf}}) {
    cl::Kernel k =
        dev.kernel(QuantLinearKernelConfig::source, QuantLinearKernelConfig::unpack_kernel,
                   QuantLinearKernelConfig::defines());
    cl_uint i = 0;
    set_buffer(k, i++, *codes);
    k.setArg(i++, static_cast<cl_int>(bits8));
    k.setArg(i++, static_cast<cl_long>(rows));
    k.setArg(i++, static_cast<cl_long>(K));
    k.setArg(i++, static_cast<cl_long>(Kp));
    set_buffer(k, i++, *dst);
    dev.launch(kOp, k, groups(rows * Kp), cl::NDRange(local));
  }
  // CLBlast: P[c] = X[:, c*Kc : (c+1)*Kc] * W[:, c*Kc : (c+1)*Kc]^T for every chunk c. P is
  // cleared first (beta = 0 must not meet uninitialized memory's NaNs).
  cl::Event first, done;
  try {
    dev.queue().enqueueFillBuffer(part.storage()->buffer, 0.0f, 0,
                                  static_cast<std::size_t>(nchunks * R * O) * sizeof(float));
    if (dev.profiling()) dev.queue().enqueueMarkerWithWaitList(nullptr, &first);
  } catch (const cl::Error& e) {
    rt::fail(ErrorCode::opencl_error, kOp, "clearing the chunk buffer failed: {}", e.err());
  }
  cl_command_queue q = dev.queue()();
  cl_event ev = nullptr;
  const auto st = clblast::GemmStridedBatched<float>(
      clblast::Layout::kRowMajor, clblast::Transpose::kNo, clblast::Transpose::kYes,
      static_cast<std::size_t>(R), static_cast<std::size_t>(O), static_cast<std::size_t>(Kc), 1.0f,
      xf.storage()->buffer(), 0, static_cast<std::size_t>(Kp), static_cast<std::size_t>(Kc),
      wf.storage()->buffer(), 0, static_cast<std::size_t>(Kp), static_cast<std::size_t>(Kc), 0.0f,
      part.storage()->buffer(), 0, static_cast<std::size_t>(O), static_cast<std::size_t>(R * O),
      static_cast<std::size_t>(nchunks), &q, &ev);
  if (st != clblast::StatusCode::kSuccess)
    rt::fail(ErrorCode::opencl_error, kOp, "CLBlast GemmStridedBatched failed with status {}",
             static_cast<int>(st));
  if (ev) {
    done = cl::Event(ev);  // takes ownership
    if (dev.profiling()) dev.record_span(kOp, "clblast::GemmStridedBatched", first, done);
  }
  cl::Kernel k =
      dev.kernel(QuantLinearKernelConfig::source, QuantLinearKernelConfig::combine_kernel,
                 QuantLinearKernelConfig::defines());
  cl_uint i = 0;
  set_buffer(k, i++, part);
  k.setArg(i++, static_cast<cl_int>(nchunks));
  k.setArg(i++, static_cast<cl_long>(R));
  k.setArg(i++, static_cast<cl_long>(O));
  set_buffer(k, i++, a.x.scales);
  set_buffer(k, i++, a.w.scales);
  set_buffer(k, i++, a.bias);
  k.setArg(i++, static_cast<cl_int>(a.bias.defined()));
  set_buffer(k, i++, out);
  dev.launch(kOp, k, groups(R * O), cl::NDRange(local));
  return out;
}

}  // namespace sparq::mamba
