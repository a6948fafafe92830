// Zero-padding of the head dim (head_dim_pad.h): rectangle copies on the device, row copies on
// the fallback; no kernel program.
#include "head_dim_pad.h"

#include <cstring>
#include <mutex>
#include <utility>

#include "attention_access.h"
#include "context_impl.h"

namespace sparq::attention_detail {

std::int64_t kernel_head_dim(std::int64_t d) {
  if (d <= 0 || d > 128) return 0;
  return d <= 64 ? 64 : 128;
}

namespace {

std::vector<std::int64_t> strides(const Tensor& t) {
  return t.strides().empty() ? detail::contiguous_strides(t.shape()) : t.strides();
}

// The buffer to copy through and the byte origin of `b` in it: a sub-buffer (a region of a plan's
// workspace) resolves to its parent, as PoCL's rectangle copies crash on sub-buffers.
std::pair<cl::Buffer, std::size_t> root(const cl::Buffer& b) {
  cl_mem parent = nullptr;
  std::size_t origin = 0;
  if (clGetMemObjectInfo(b(), CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, nullptr) !=
          CL_SUCCESS ||
      parent == nullptr ||
      clGetMemObjectInfo(b(), CL_MEM_OFFSET, sizeof origin, &origin, nullptr) != CL_SUCCESS)
    return {b, 0};
  return {cl::Buffer(parent, true), origin};
}

// dst [B, H, L, dd] contiguous <- the first `w` columns of each row of src (4-d view).
void copy_rows(Context& ctx, const Tensor& src, const Tensor& dst, std::int64_t w) {
  auto& impl = *ctx.impl();
  const auto s = strides(src);
  const std::int64_t B = src.dim(0), H = src.dim(1), L = src.dim(2), dd = dst.dim(3);
  const std::size_t es = dtype_size(src.dtype());
  if (!impl.device) {
    const std::byte* sp = detail::host_data(src);
    std::byte* dp = detail::host_data_mut(dst);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t r = 0; r < L; ++r)
          std::memcpy(dp + static_cast<std::size_t>(((b * H + h) * L + r) * dd) * es,
                      sp + static_cast<std::size_t>(b * s[0] + h * s[1] + r * s[2]) * es,
                      static_cast<std::size_t>(w) * es);
    return;
  }
  auto& q = impl.device->queue();
  const auto sz = [](std::int64_t x) { return static_cast<std::size_t>(x); };
  const auto [src_buf, src_at] = root(src.storage()->buffer);
  const auto [dst_buf, dst_at] = root(dst.storage()->buffer);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      const std::size_t src0 = src_at + sz(src.offset() + b * s[0] + h * s[1]) * es;
      const std::size_t dst0 = dst_at + sz((b * H + h) * L * dd) * es;
      if (s[2] >= w) {  // one rectangle: L rows of w elements
        const std::size_t sp = sz(s[2]) * es, dp = sz(dd) * es;
        q.enqueueCopyBufferRect(src_buf, dst_buf, {src0, 0, 0}, {dst0, 0, 0},
                                {sz(w) * es, sz(L), 1}, sp, sp * sz(L), dp, dp * sz(L));
      } else {  // rows overlap (a broadcast view): one copy per row
        for (std::int64_t r = 0; r < L; ++r)
          q.enqueueCopyBuffer(src_buf, dst_buf, src0 + sz(r * s[2]) * es, dst0 + sz(r * dd) * es,
                              sz(w) * es);
      }
    }
}

}  // namespace

Tensor pad_head_dim(Context& ctx, const Tensor& t, std::int64_t dp, Tensor into) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const bool reused = into.defined();
  Tensor out = reused ? std::move(into)
                      : new_tensor(impl, ctx.impl(), t.dtype(), {t.dim(0), t.dim(1), t.dim(2), dp});
  if (!impl.device && reused &&
      out.numel() > 0)  // new host storage is zero; a reused one may not be
    std::memset(detail::host_data_mut(out), 0,
                static_cast<std::size_t>(out.numel()) * dtype_size(out.dtype()));
  if (impl.device && out.numel() > 0) {  // device storage starts uninitialized
    const cl_uchar zero = 0;
    impl.device->queue().enqueueFillBuffer(out.storage()->buffer, zero, 0, out.storage_bytes());
  }
  if (out.numel() > 0) copy_rows(ctx, t, out, t.dim(3));
  return out;
}

Tensor unpad_head_dim(Context& ctx, const Tensor& t, std::int64_t d, Tensor into) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  Tensor out = into.defined()
                   ? std::move(into)
                   : new_tensor(impl, ctx.impl(), t.dtype(), {t.dim(0), t.dim(1), t.dim(2), d});
  if (out.numel() > 0) copy_rows(ctx, t, out, d);
  return out;
}

}  // namespace sparq::attention_detail
