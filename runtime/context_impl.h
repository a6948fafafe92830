// What sparq::Context and sparq::Tensor hold inside the library.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "device_runtime.h"
#include "sparq/context.h"

namespace sparq::detail {

// The memory behind tensors. A tensor may outlive its Context: the cl::Buffer keeps the OpenCL
// context alive, and the Context's queue is drained on destruction, so reads still work.
struct Storage {
  std::size_t bytes = 0;
  std::vector<std::byte> host;  // fallback contexts
  cl::Buffer buffer;            // OpenCL contexts
  bool on_device = false;
  std::weak_ptr<ContextImpl> owner;
};

struct ContextImpl {
  DeviceInfo info;
  std::unique_ptr<rt::DeviceRuntime> device;  // null: the CPU fallback executes ops
  std::recursive_mutex mutex;                 // serializes calls on one Context
  bool is_fallback() const { return device == nullptr; }
};

// Creates a tensor of `desc` (contiguous) owned by ctx. Host storage is zero-filled on the
// fallback; device storage is uninitialized.
Tensor make_tensor(ContextImpl& ctx, const std::shared_ptr<ContextImpl>& owner, TensorDesc desc);

// Host pointer of a fallback tensor's first viewed element (storage base + offset).
const std::byte* host_data(const Tensor& t);
std::byte* host_data_mut(const Tensor& t);

// Throws sparq::Error(invalid_argument) "<op>: <arg> belongs to another Context" when `t` is not
// defined or its storage was not made by `ctx` (ops must not mix devices).
void check_tensor_owner(const char* op, const char* arg, const Tensor& t, const ContextImpl& ctx);

// Number of elements of `shape` (0 if any dim is 0); sparq::Error(invalid_argument) naming
// `what` for a negative dim and (too_large) on overflow.
std::int64_t checked_numel(const char* what, const std::vector<std::int64_t>& shape);

// Row-major strides of `shape`, in elements.
std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& shape);

}  // namespace sparq::detail
