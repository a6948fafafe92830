// What sparq::Context and sparq::Tensor hold inside the library.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "device_runtime.h"
#include "sparq/context.h"

namespace sparq::detail {

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

// Creates a tensor of `desc` (contiguous) owned by ctx.
Tensor make_tensor(ContextImpl& ctx, const std::shared_ptr<ContextImpl>& owner, TensorDesc desc);

// Host pointer of a fallback tensor's first viewed element (storage base + offset).
const std::byte* host_data(const Tensor& t);
std::byte* host_data_mut(const Tensor& t);

}  // namespace sparq::detail
