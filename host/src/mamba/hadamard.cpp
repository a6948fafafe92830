// sparq::mamba::hadamard_transform and hadamard_quantize: validate -> allocate -> launch
// mamba_hadamard (kernels_cl/mamba/hadamard.cl, one work-group per token row) or run the fallback
// (fallback_cpu/mamba/hadamard.cpp). Same stage order and per-element header on both.
#include <cmath>
#include <mutex>

#include "mamba_common.h"
#include "mamba_kernels.h"

namespace sparq::mamba {

using namespace detail_mamba;

namespace {

struct Rows {
  std::int64_t batch, L, C;
  int m;
  float c;
};

Rows check_x(const char* op, const Tensor& x, const detail::ContextImpl& impl) {
  detail::check_tensor_owner(op, "x", x, impl);
  if (x.rank() != 3 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) < 1)
    rt::fail(ErrorCode::shape_mismatch, op, "x is {}; expected [B, L, C], all >= 1",
             x.desc().describe());
  check_float(op, "x", x, impl, x.shape(), true);
  Rows r{x.dim(0), x.dim(1), x.dim(2), 0, 1.0f};
  if (r.C > HadamardKernelConfig::cmax || (r.C & (r.C - 1)) != 0)
    rt::fail(ErrorCode::unsupported, op,
             "x has C = {} channels; the Walsh-Hadamard transform needs a power of two <= {}", r.C,
             HadamardKernelConfig::cmax);
  while ((std::int64_t{1} << r.m) < r.C) ++r.m;
  // c = rn(2^(-m/2)): exact for even m; for odd m, 2^(-(m-1)/2) * sqrt(1/2) rounded once (the
  // power-of-two factor is exact in double, so this is the correctly rounded float).
  r.c = static_cast<float>(std::ldexp(0.70710678118654752440, -(r.m - 1) / 2));
  if (r.m % 2 == 0) r.c = static_cast<float>(std::ldexp(1.0, -r.m / 2));
  return r;
}

void run(Context& ctx, const char* op, const Tensor& x, const Rows& r, int mode, bool bits8,
         const Tensor& out, const QuantizedRows* q) {
  auto& impl = *ctx.impl();
  if (!impl.device) {
    fallback::mamba::HadamardProblem p;
    p.x = reinterpret_cast<const float*>(detail::host_data(x));
    if (mode == 0) p.out = reinterpret_cast<float*>(detail::host_data_mut(out));
    if (mode == 1) {
      p.codes = reinterpret_cast<std::uint8_t*>(detail::host_data_mut(q->codes));
      p.scales = reinterpret_cast<float*>(detail::host_data_mut(q->scales));
      p.counts = reinterpret_cast<std::int32_t*>(detail::host_data_mut(q->outlier_count));
    }
    p.rows = r.batch * r.L;
    p.C = static_cast<int>(r.C);
    p.m = r.m;
    p.mode = mode;
    p.bits8 = bits8;
    p.c = r.c;
    fallback::mamba::hadamard(p);
    return;
  }
  auto& dev = *impl.device;
  if (dev.info().max_work_group_size < static_cast<std::size_t>(HadamardKernelConfig::wg))
    rt::fail(ErrorCode::unsupported, op, "the device allows work-groups of {} items; needs {}",
             dev.info().max_work_group_size, HadamardKernelConfig::wg);
  cl::Kernel k = dev.kernel(HadamardKernelConfig::source, HadamardKernelConfig::kernel,
                            HadamardKernelConfig::defines());
  cl_uint i = 0;
  set_buffer(k, i++, x);
  k.setArg(i++, static_cast<cl_long>(x.offset()));
  k.setArg(i++, static_cast<cl_int>(r.C));
  k.setArg(i++, static_cast<cl_int>(r.m));
  k.setArg(i++, r.c);
  k.setArg(i++, static_cast<cl_int>(mode));
  k.setArg(i++, static_cast<cl_int>(bits8));
  set_buffer(k, i++, mode == 0 ? out : Tensor());
  set_buffer(k, i++, mode == 1 ? q->codes : Tensor());
  set_buffer(k, i++, mode == 1 ? q->scales : Tensor());
  set_buffer(k, i++, mode == 1 ? q->outlier_count : Tensor());
  const auto rows = static_cast<std::size_t>(r.batch * r.L);
  dev.launch(op, k, cl::NDRange(rows * HadamardKernelConfig::wg),
             cl::NDRange(HadamardKernelConfig::wg));
}

}  // namespace

Tensor hadamard_transform(Context& ctx, const Tensor& x) {
  constexpr const char* op = "mamba::hadamard_transform";
  std::lock_guard lock(ctx.impl()->mutex);
  const Rows r = check_x(op, x, *ctx.impl());
  Tensor out = new_tensor(ctx, DType::f32, {r.batch, r.L, r.C});
  run(ctx, op, x, r, 0, true, out, nullptr);
  return out;
}

QuantizedRows hadamard_quantize(Context& ctx, const Tensor& x, InlierBits bits) {
  constexpr const char* op = "mamba::hadamard_quantize";
  std::lock_guard lock(ctx.impl()->mutex);
  const Rows r = check_x(op, x, *ctx.impl());
  require(op, bits == InlierBits::Int4 || bits == InlierBits::Int8,
          "bits is not a known InlierBits");
  const bool bits8 = bits == InlierBits::Int8;
  QuantizedRows q;
  q.params.bits = bits;
  q.params.outlier_format = OutlierFormat::F32;
  q.params.max_outliers = 0;
  q.C = r.C;
  q.codes =
      new_tensor(ctx, bits8 ? DType::i8 : DType::u8, {r.batch, r.L, bits8 ? r.C : (r.C + 1) / 2});
  q.scales = new_tensor(ctx, DType::f32, {r.batch, r.L});
  q.outlier_count = new_tensor(ctx, DType::i32, {r.batch, r.L});
  q.outlier_idx = new_tensor(ctx, DType::i32, {r.batch, r.L, 0});
  q.outlier_val = new_tensor(ctx, DType::f32, {r.batch, r.L, 0});
  run(ctx, op, x, r, 1, bits8, Tensor(), &q);
  return q;
}

}  // namespace sparq::mamba
