// sparq::Context: device choice, uploads, synchronization, profiling, warm-up.
#include "sparq/context.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "context_impl.h"
#include "device_select.h"
#include "errors.h"
#include "kernel_variants.h"

namespace sparq {

namespace {

DeviceInfo fallback_info() {
  DeviceInfo info;
  info.backend = Backend::fallback;
  info.name = "sparq CPU fallback";
  info.vendor = "sparq";
  info.platform = "none (no OpenCL)";
  info.driver_version = version();
  info.compute_units = std::max(1u, std::thread::hardware_concurrency());
  return info;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : "";
}

}  // namespace

const char* version() {
  return SPARQ_VERSION_STRING;
}

std::string default_cache_dir() {
  if (auto dir = env_or_empty("SPARQ_CACHE_DIR"); !dir.empty()) return dir;
  if (auto xdg = env_or_empty("XDG_CACHE_HOME"); !xdg.empty()) return xdg + "/sparq";
  if (auto home = env_or_empty("HOME"); !home.empty()) return home + "/.cache/sparq";
  return "";  // nowhere sensible: no disk cache
}

std::vector<DeviceReport> list_devices() {
  return rt::list_device_reports();
}

Context Context::create(const ContextOptions& options) {
  const rt::Selection sel = rt::select_device(options.device);
  auto impl = std::make_shared<detail::ContextImpl>();
  if (sel.fallback) {
    impl->info = fallback_info();
  } else {
    impl->device = std::make_unique<rt::DeviceRuntime>(sel.platform, sel.device, options);
    impl->info = impl->device->info();
  }
  return Context(std::move(impl));
}

Backend Context::backend() const {
  return impl_->info.backend;
}

const DeviceInfo& Context::device() const {
  return impl_->info;
}

std::string Context::cache_dir() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->device ? impl_->device->programs().cache_dir() : "";
}

void Context::check_upload_size(std::size_t bytes, DType dtype,
                                const std::vector<std::int64_t>& shape) {
  const auto n = detail::checked_numel("Context::upload", shape);
  const std::size_t want = static_cast<std::size_t>(n) * dtype_size(dtype);
  if (bytes != want)
    rt::fail(ErrorCode::shape_mismatch, "Context::upload",
             "host data has {} bytes, {}[{}] needs {} ({} elements of {} bytes)", bytes,
             dtype_name(dtype), fmt::join(shape, ", "), want, n, dtype_size(dtype));
}

Tensor Context::upload(const void* data, DType dtype, std::vector<std::int64_t> shape) {
  std::lock_guard lock(impl_->mutex);
  Tensor t = detail::make_tensor(*impl_, impl_, TensorDesc{dtype, std::move(shape), {}, 0});
  const std::size_t bytes = t.storage_bytes();
  if (bytes != 0 && data == nullptr)
    rt::fail(ErrorCode::invalid_argument, "Context::upload", "data is null for {} bytes", bytes);
  if (impl_->device)
    impl_->device->write(t.storage()->buffer, 0, bytes, data, "Context::upload");
  else if (bytes != 0)
    std::memcpy(t.storage()->host.data(), data, bytes);
  return t;
}

Tensor Context::empty(DType dtype, std::vector<std::int64_t> shape) {
  std::lock_guard lock(impl_->mutex);
  return detail::make_tensor(*impl_, impl_, TensorDesc{dtype, std::move(shape), {}, 0});
}

void Context::finish() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->device) impl_->device->finish();
}

std::vector<KernelTime> Context::kernel_times() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->device ? impl_->device->kernel_times() : std::vector<KernelTime>{};
}

void Context::clear_kernel_times() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->device) impl_->device->clear_kernel_times();
}

int Context::warm_up() {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->device) return 0;  // the fallback has nothing to compile
  int n = 0;
  for (const auto& v : rt::all_kernel_variants()) {
    if (v.needs_inline_ptx && !impl_->device->quirks().inline_ptx) continue;
    impl_->device->programs().get(v.source_path, v.defines);
    ++n;
  }
  return n;
}

}  // namespace sparq
