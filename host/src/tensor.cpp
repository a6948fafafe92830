// sparq::Tensor: dtype helpers, views with bounds checks, download (also of strided views).
#include "sparq/tensor.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "context_impl.h"
#include "errors.h"
#include "sparq/error.h"

namespace sparq {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f16:
      return 2;
    case DType::bf16:
      return 2;
    case DType::i8:
      return 1;
    case DType::u8:
      return 1;
    case DType::i32:
      return 4;
  }
  throw Error(ErrorCode::invalid_argument,
              fmt::format("dtype_size: unknown dtype {}", static_cast<int>(t)));
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::bf16:
      return "bf16";
    case DType::i8:
      return "i8";
    case DType::u8:
      return "u8";
    case DType::i32:
      return "i32";
  }
  return "unknown";
}

std::string TensorDesc::describe() const {
  std::string s = fmt::format("{}[{}]", dtype_name(dtype), fmt::join(shape, ", "));
  if (!strides.empty()) s += fmt::format(" strides [{}]", fmt::join(strides, ", "));
  if (offset != 0) s += fmt::format(" offset {}", offset);
  return s;
}

namespace detail {

std::int64_t checked_numel(const char* what, const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0)
      rt::fail(ErrorCode::invalid_argument, what, "negative dimension in shape [{}]",
               fmt::join(shape, ", "));
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d)
      rt::fail(ErrorCode::too_large, what, "shape [{}] has more than 2^63 elements",
               fmt::join(shape, ", "));
    n *= d;
  }
  return n;
}

std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> strides(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
  return strides;
}

namespace {

// Index one past the last element the view touches (offset if empty), with overflow checks.
// Strides are non-negative, so the lowest touched element is `offset`.
std::int64_t view_end(const char* what, const TensorDesc& d) {
  if (checked_numel(what, d.shape) == 0) return d.offset;
  __int128 last = d.offset;
  for (std::size_t i = 0; i < d.shape.size(); ++i)
    last += static_cast<__int128>(d.shape[i] - 1) * d.strides[i];
  if (last >= std::numeric_limits<std::int64_t>::max())
    rt::fail(ErrorCode::too_large, what, "{} spans more than 2^63 elements", d.describe());
  return static_cast<std::int64_t>(last) + 1;
}

void check_view(const char* what, const TensorDesc& d, std::size_t storage_bytes) {
  if (d.strides.size() != d.shape.size())
    rt::fail(ErrorCode::shape_mismatch, what, "{} strides for {} dims", d.strides.size(),
             d.shape.size());
  for (auto s : d.strides)
    if (s < 0) rt::fail(ErrorCode::invalid_argument, what, "negative stride in {}", d.describe());
  if (d.offset < 0)
    rt::fail(ErrorCode::invalid_argument, what, "negative offset in {}", d.describe());
  const std::int64_t end = view_end(what, d);
  const auto available = static_cast<std::int64_t>(storage_bytes / dtype_size(d.dtype));
  if (end > available)
    rt::fail(ErrorCode::shape_mismatch, what,
             "{} reaches element {} but the storage holds {} {} elements ({} bytes)", d.describe(),
             end - 1, available, dtype_name(d.dtype), storage_bytes);
}

}  // namespace

Tensor make_tensor(ContextImpl& ctx, const std::shared_ptr<ContextImpl>& owner, TensorDesc desc) {
  const std::int64_t n = checked_numel("tensor", desc.shape);
  const std::size_t elem = dtype_size(desc.dtype);
  if (static_cast<std::uint64_t>(n) > std::numeric_limits<std::size_t>::max() / elem)
    rt::fail(ErrorCode::too_large, "tensor", "{} is too large", desc.describe());
  auto storage = std::make_shared<Storage>();
  storage->bytes = static_cast<std::size_t>(n) * elem;
  storage->owner = owner;
  if (ctx.device) {
    storage->buffer = ctx.device->allocate(storage->bytes, "tensor allocation");
    storage->on_device = true;
  } else {
    try {
      storage->host.resize(storage->bytes);
    } catch (const std::exception&) {  // bad_alloc / length_error: same contract as the device
      rt::fail(ErrorCode::too_large, "tensor allocation",
               "{} ({} bytes) does not fit in host memory", desc.describe(), storage->bytes);
    }
  }
  desc.strides = contiguous_strides(desc.shape);
  desc.offset = 0;
  return Tensor(std::move(storage), std::move(desc));
}

const std::byte* host_data(const Tensor& t) {
  return host_data_mut(t);
}

std::byte* host_data_mut(const Tensor& t) {
  if (!t.defined() || t.storage()->on_device)
    rt::fail(ErrorCode::internal, "host_data", "tensor has no host storage");
  return t.storage()->host.data() + static_cast<std::size_t>(t.offset()) * dtype_size(t.dtype());
}

void check_tensor_owner(const char* op, const char* arg, const Tensor& t, const ContextImpl& ctx) {
  if (!t.defined()) rt::fail(ErrorCode::invalid_argument, op, "{} is an empty Tensor", arg);
  if (t.storage()->owner.lock().get() != &ctx)
    rt::fail(ErrorCode::invalid_argument, op,
             "{} belongs to another Context (or to one that was destroyed); upload it to this one",
             arg);
}

}  // namespace detail

Tensor::Tensor(std::shared_ptr<detail::Storage> storage, TensorDesc desc)
    : storage_(std::move(storage)), desc_(std::move(desc)) {
  // Explicit strides everywhere inside the library: ops never special-case "empty = contiguous".
  if (desc_.strides.empty()) desc_.strides = detail::contiguous_strides(desc_.shape);
  if (storage_) detail::check_view("Tensor", desc_, storage_->bytes);
}

std::int64_t Tensor::numel() const {
  return detail::checked_numel("Tensor::numel", desc_.shape);
}

bool Tensor::is_contiguous() const {
  const auto want = detail::contiguous_strides(desc_.shape);
  for (std::size_t i = 0; i < desc_.shape.size(); ++i)
    if (desc_.shape[i] != 1 && desc_.strides[i] != want[i]) return false;
  return true;
}

std::size_t Tensor::storage_bytes() const {
  return storage_ ? storage_->bytes : 0;
}

Tensor Tensor::view(std::vector<std::int64_t> shape, std::vector<std::int64_t> strides,
                    std::int64_t offset) const {
  if (!storage_) rt::fail(ErrorCode::invalid_argument, "Tensor::view", "tensor is empty");
  TensorDesc d{desc_.dtype, std::move(shape), std::move(strides), offset};
  if (d.strides.empty()) d.strides = detail::contiguous_strides(d.shape);
  detail::check_view("Tensor::view", d, storage_->bytes);
  return Tensor(storage_, std::move(d));
}

void Tensor::download_raw(void* dst, std::size_t dst_bytes) const {
  if (!storage_) rt::fail(ErrorCode::invalid_argument, "Tensor::download", "tensor is empty");
  const std::size_t elem = dtype_size(desc_.dtype);
  const auto n = static_cast<std::size_t>(numel());
  if (dst_bytes != n * elem)
    rt::fail(ErrorCode::invalid_argument, "Tensor::download",
             "destination has {} bytes, {} needs {} ({} elements of {} bytes)", dst_bytes,
             desc_.describe(), n * elem, n, elem);
  if (n == 0) return;
  // The bytes spanned by the view: [offset, end) in elements.
  const auto begin = static_cast<std::size_t>(desc_.offset) * elem;
  const auto span =
      static_cast<std::size_t>(detail::view_end("Tensor::download", desc_)) * elem - begin;
  // Holding the owner's lock orders this read after any op running on another thread.
  auto owner = storage_->owner.lock();
  std::unique_lock<std::recursive_mutex> lock;
  if (owner) lock = std::unique_lock(owner->mutex);
  std::vector<std::byte> staging;
  const std::byte* src = nullptr;
  const bool contiguous = is_contiguous();
  if (storage_->on_device) {
    std::byte* target = static_cast<std::byte*>(dst);
    if (!contiguous) {
      staging.resize(span);
      target = staging.data();
    }
    if (owner) {
      owner->device->read(storage_->buffer, begin, span, target, "Tensor::download");
    } else {
      // The Context is gone (its queue was drained); read through a short-lived queue.
      try {
        cl::Context context = storage_->buffer.getInfo<CL_MEM_CONTEXT>();
        cl::CommandQueue queue(context, context.getInfo<CL_CONTEXT_DEVICES>().at(0));
        queue.enqueueReadBuffer(storage_->buffer, CL_TRUE, begin, span, target);
      } catch (const cl::Error& e) {
        rt::fail(ErrorCode::opencl_error, "Tensor::download", "read failed: {}",
                 rt::cl_error_name(e.err()));
      }
    }
    if (contiguous) return;
    src = staging.data();
  } else {
    src = storage_->host.data() + begin;
    if (contiguous) {
      std::memcpy(dst, src, n * elem);
      return;
    }
  }
  // Gather in row-major order of the view; src points at element `offset`.
  auto* out = static_cast<std::byte*>(dst);
  const std::size_t rank = desc_.shape.size();
  std::vector<std::int64_t> idx(rank, 0);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t off = 0;
    for (std::size_t k = 0; k < rank; ++k) off += idx[k] * desc_.strides[k];
    std::memcpy(out + i * elem, src + static_cast<std::size_t>(off) * elem, elem);
    for (std::size_t k = rank; k-- > 0;) {
      if (++idx[k] < desc_.shape[k]) break;
      idx[k] = 0;
    }
  }
}

}  // namespace sparq
