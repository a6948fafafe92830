// Internal quantizer ops (quant_ops.h): kernels_cl/quant/*.cl on a device, or the fallback twins
// of fallback_cpu/quant/ on the CPU. Same bits on both.
#include "quant_ops.h"

#include <atomic>

#include "device_runtime.h"
#include "errors.h"
#include "fallback_cpu/quant/quant_fallback.h"
#include "quant_kernels.h"

namespace sparq::quant_detail {

namespace {

std::int64_t cdiv(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

Tensor new_f32(Context& ctx, std::vector<std::int64_t> shape, Scratch* scratch,
               DType t = DType::f32) {
  return new_temp(ctx, t, std::move(shape), scratch);
}

fallback::quant::RowsIn rows_in(const Tensor& t) {
  fallback::quant::RowsIn r;
  r.p = detail::host_data(t);
  r.dtype = static_cast<int>(t.dtype());
  r.sb = t.strides()[0];
  r.sh = t.strides()[1];
  r.sr = t.strides()[2];
  return r;
}

const cl::Buffer& buffer(const Tensor& t) {
  return t.storage()->buffer;
}

cl_long L(std::int64_t x) {
  return static_cast<cl_long>(x);
}
cl_int I(std::int64_t x) {
  return static_cast<cl_int>(x);
}

std::size_t round_up(std::int64_t x, std::int64_t m) {
  return static_cast<std::size_t>(cdiv(x, m) * m);
}

}  // namespace

namespace {

std::atomic<std::uint64_t> g_unplanned{0};

std::uint64_t region_bytes(DType t, const std::vector<std::int64_t>& shape) {
  return static_cast<std::uint64_t>(detail::checked_numel("workspace", shape)) * dtype_size(t);
}

}  // namespace

std::uint64_t unplanned_scratch_requests() {
  return g_unplanned.load();
}

std::size_t ScratchLayout::add(DType t, std::vector<std::int64_t> shape) {
  const std::uint64_t size = region_bytes(t, shape);
  regions.push_back({t, std::move(shape), bytes});
  bytes += (size + align - 1) / align * align;
  return regions.size() - 1;
}

std::size_t ScratchLayout::add_at(std::size_t first, DType t, std::vector<std::int64_t> shape) {
  if (first == npos) return add(t, std::move(shape));
  const ScratchRegion& f = regions.at(first);
  if (region_bytes(t, shape) > region_bytes(f.dtype, f.shape))
    rt::fail(ErrorCode::internal, "workspace layout", "a region outgrows the one it reuses");
  regions.push_back({t, std::move(shape), f.at});
  return first;
}

void Scratch::set_layout(ScratchLayout layout) {
  layout_ = std::move(layout);
  carved_.assign(layout_.regions.size(), Tensor());
  bound_.reset();
  bound_offset_ = -1;
}

void Scratch::bind(const Tensor& ws) {
  if (ws.storage() == bound_ && ws.offset() == bound_offset_) return;
  carved_.assign(layout_.regions.size(), Tensor());
  bound_ = ws.storage();
  bound_offset_ = ws.offset();
}

Tensor Scratch::get(Context& ctx, DType t, std::vector<std::int64_t> shape) {
  if (bound_) {
    for (std::size_t i = next_region_; i < layout_.regions.size(); ++i) {
      const ScratchRegion& r = layout_.regions[i];
      if (r.dtype != t || r.shape != shape) continue;
      next_region_ = i + 1;
      if (!carved_[i].defined()) {
        const std::uint64_t size = region_bytes(t, shape);
        cl_buffer_region reg{
            static_cast<std::size_t>(static_cast<std::uint64_t>(bound_offset_) + r.at),
            static_cast<std::size_t>(size)};
        cl_int err = CL_SUCCESS;
        cl::Buffer sub = bound_->buffer.createSubBuffer(CL_MEM_READ_WRITE,
                                                        CL_BUFFER_CREATE_TYPE_REGION, &reg, &err);
        if (err != CL_SUCCESS)
          rt::fail(ErrorCode::opencl_error, "plan workspace", "a region of {} bytes at {}: {}",
                   size, reg.origin, rt::cl_error_name(err));
        auto storage = std::make_shared<detail::Storage>();
        storage->bytes = static_cast<std::size_t>(size);
        storage->buffer = std::move(sub);
        storage->on_device = true;
        storage->owner = ctx.impl();
        carved_[i] = Tensor(std::move(storage), TensorDesc{t, std::move(shape), {}, 0});
      }
      return carved_[i];
    }
    ++unplanned_;
    ++g_unplanned;
  }
  if (next_ < tensors_.size()) {
    const Tensor& have = tensors_[next_];
    if (have.dtype() == t && have.shape() == shape) return tensors_[next_++];
    tensors_.resize(next_);  // the order changed: the rest is stale
  }
  tensors_.push_back(
      detail::make_tensor(*ctx.impl(), ctx.impl(), TensorDesc{t, std::move(shape), {}, 0}));
  ++next_;
  return tensors_.back();
}

Tensor new_temp(Context& ctx, DType t, std::vector<std::int64_t> shape, Scratch* scratch) {
  if (scratch) return scratch->get(ctx, t, std::move(shape));
  return detail::make_tensor(*ctx.impl(), ctx.impl(), TensorDesc{t, std::move(shape), {}, 0});
}

float reciprocal(std::int64_t n) {
  return static_cast<float>(1.0 / static_cast<double>(n));
}

Tensor block_mean(Context& ctx, const Tensor& x, std::int64_t block_rows, Scratch* scratch) {
  constexpr const char* op = "quantize (block mean)";
  const std::int64_t B = x.dim(0), H = x.dim(1), len = x.dim(2), D = x.dim(3);
  block_rows = std::min(block_rows, len);
  const std::int64_t nblk = cdiv(len, block_rows);
  const float r_full = reciprocal(block_rows), r_last = reciprocal(len - (nblk - 1) * block_rows);
  Tensor out = new_f32(ctx, {B, H, nblk, D}, scratch);
  auto& impl = *ctx.impl();
  if (!impl.device) {
    fallback::quant::block_mean(rows_in(x), B, H, len, D, block_rows, r_full, r_last,
                                reinterpret_cast<float*>(detail::host_data_mut(out)));
    return out;
  }
  auto& dev = *impl.device;
  cl::Kernel k = dev.kernel(SmoothKernelConfig::source, SmoothKernelConfig::mean_kernel,
                            SmoothKernelConfig::defines());
  const auto& s = x.strides();
  rt::set_kernel_args(op, k, buffer(x), L(x.offset()), L(s[0]), L(s[2]), L(s[1]),
                      I(static_cast<int>(x.dtype())), I(H), I(len), I(D), I(block_rows), I(nblk),
                      r_full, r_last, buffer(out));
  const int wg = SmoothKernelConfig::work_group;
  dev.launch(
      op, k,
      cl::NDRange(round_up(D, wg), static_cast<std::size_t>(nblk), static_cast<std::size_t>(B * H)),
      cl::NDRange(wg, 1, 1));
  return out;
}

Tensor smooth_delta(Context& ctx, const Tensor& qm, std::int64_t blk0, std::int64_t nblk,
                    const Tensor& k, const Tensor& km, Scratch* scratch) {
  constexpr const char* op = "quantize (smoothing delta)";
  const std::int64_t B = qm.dim(0), hq = qm.dim(1), qm_nblk = qm.dim(2), D = qm.dim(3);
  const std::int64_t hkv = k.dim(1), lk = k.dim(2), group = hq / hkv;
  if (D > 128)
    rt::fail(ErrorCode::internal, op, "head dim {} > 128 (callers accept D = 64 or 128 only)", D);
  Tensor delta = new_f32(ctx, {B, hq, nblk, lk}, scratch);
  auto& impl = *ctx.impl();
  if (!impl.device) {
    fallback::quant::smooth_delta(
        reinterpret_cast<const float*>(detail::host_data(qm)), qm_nblk, blk0, nblk, rows_in(k),
        km.defined() ? reinterpret_cast<const float*>(detail::host_data(km)) : nullptr, B, hq,
        group, lk, D, reinterpret_cast<float*>(detail::host_data_mut(delta)));
    return delta;
  }
  auto& dev = *impl.device;
  cl::Kernel kern = dev.kernel(SmoothKernelConfig::source, SmoothKernelConfig::delta_kernel,
                               SmoothKernelConfig::defines());
  const auto& s = k.strides();
  rt::set_kernel_args(op, kern, buffer(qm), I(qm_nblk), I(blk0), I(nblk), buffer(k), L(k.offset()),
                      L(s[0]), L(s[2]), L(s[1]), I(static_cast<int>(k.dtype())),
                      km.defined() ? buffer(km) : buffer(qm), I(km.defined()), I(hq), I(group),
                      I(lk), I(D), buffer(delta));
  const int wg = SmoothKernelConfig::work_group;
  dev.launch(op, kern, cl::NDRange(round_up(lk, wg), 1, static_cast<std::size_t>(B * hq)),
             cl::NDRange(wg, 1, 1));
  return delta;
}

Int8Quantized int8_blocks(Context& ctx, const Tensor& x, const Tensor& mean, std::int64_t mean_rows,
                          float mult, std::int64_t block_rows, Scratch* scratch) {
  constexpr const char* op = "quantize (int8 blocks)";
  const std::int64_t B = x.dim(0), H = x.dim(1), len = x.dim(2), D = x.dim(3);
  const std::int64_t nblk = cdiv(len, block_rows);
  const std::int64_t mean_nblk = mean.defined() ? mean.dim(2) : 1;
  if (mean_rows < 1) mean_rows = 1;
  Int8Quantized q{new_f32(ctx, {B, H, len, D}, scratch, DType::i8),
                  new_f32(ctx, {B, H, nblk}, scratch)};
  auto& impl = *ctx.impl();
  if (!impl.device) {
    fallback::quant::int8_blocks(
        rows_in(x),
        mean.defined() ? reinterpret_cast<const float*>(detail::host_data(mean)) : nullptr,
        mean_rows, mean_nblk, mult, B, H, len, D, block_rows,
        reinterpret_cast<std::int8_t*>(detail::host_data_mut(q.codes)),
        reinterpret_cast<float*>(detail::host_data_mut(q.scales)));
    return q;
  }
  auto& dev = *impl.device;
  cl::Kernel k = dev.kernel(Int8QuantKernelConfig::source, Int8QuantKernelConfig::blocks_kernel,
                            Int8QuantKernelConfig::defines());
  const auto& s = x.strides();
  rt::set_kernel_args(op, k, buffer(x), L(x.offset()), L(s[0]), L(s[2]), L(s[1]),
                      I(static_cast<int>(x.dtype())), mean.defined() ? buffer(mean) : buffer(x),
                      I(mean.defined()), I(mean_rows), I(mean_nblk), mult, I(H), I(len), I(D),
                      I(block_rows), buffer(q.codes), buffer(q.scales));
  const int wg = Int8QuantKernelConfig::blocks_work_group;
  dev.launch(op, k,
             cl::NDRange(wg, static_cast<std::size_t>(nblk), static_cast<std::size_t>(B * H)),
             cl::NDRange(wg, 1, 1));
  return q;
}

Int8Quantized int8_v(Context& ctx, const Tensor& v, Scratch* scratch) {
  constexpr const char* op = "quantize (int8 V)";
  const std::int64_t B = v.dim(0), H = v.dim(1), len = v.dim(2), D = v.dim(3);
  const std::int64_t len64 = cdiv(len, 64) * 64;
  Int8Quantized q{new_f32(ctx, {B, H, D, len64}, scratch, DType::i8),
                  new_f32(ctx, {B, H, D, len64 / 16}, scratch)};
  auto& impl = *ctx.impl();
  if (!impl.device) {
    fallback::quant::int8_v(rows_in(v), B, H, len, D, len64,
                            reinterpret_cast<std::int8_t*>(detail::host_data_mut(q.codes)),
                            reinterpret_cast<float*>(detail::host_data_mut(q.scales)));
    return q;
  }
  auto& dev = *impl.device;
  cl::Kernel k = dev.kernel(Int8QuantKernelConfig::source, Int8QuantKernelConfig::v_kernel,
                            Int8QuantKernelConfig::defines());
  const auto& s = v.strides();
  rt::set_kernel_args(op, k, buffer(v), L(v.offset()), L(s[0]), L(s[2]), L(s[1]),
                      I(static_cast<int>(v.dtype())), I(H), I(len), I(D), I(len64), buffer(q.codes),
                      buffer(q.scales));
  const int wg = Int8QuantKernelConfig::v_work_group;
  dev.launch(op, k,
             cl::NDRange(round_up(D, wg), static_cast<std::size_t>(len64 / 16),
                         static_cast<std::size_t>(B * H)),
             cl::NDRange(wg, 1, 1));
  return q;
}

}  // namespace sparq::quant_detail
