// sparq::Context: the device (or the CPU fallback) that ops run on.
//
// Thread safety: a Context may be shared by threads; calls on one Context are serialized by an
// internal lock (ops on one Context run one after another, in call order per thread). Separate
// Contexts are fully independent and may be used concurrently.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparq/export.h"
#include "sparq/tensor.h"

namespace sparq {

enum class Backend { opencl, fallback };

struct SPARQ_API ContextOptions {
  // "" = $SPARQ_DEVICE, else the default order (first capable GPU, else PoCL, else fallback).
  // Accepted: "fallback", "pocl", "gpu", "P:D" (platform:device index), or a case-insensitive
  // substring of the device name.
  std::string device;
  std::string cache_dir;  // "" = $SPARQ_CACHE_DIR, else $XDG_CACHE_HOME/sparq or ~/.cache/sparq
  bool disk_cache = true;
  bool profile = false;  // keep per-kernel times (see Context::kernel_times)
};

struct SPARQ_API DeviceInfo {
  Backend backend = Backend::fallback;
  std::string name, vendor, platform, driver_version, opencl_c_version;
  bool is_gpu = false;
  std::uint64_t global_mem_bytes = 0, max_alloc_bytes = 0, local_mem_bytes = 0;
  unsigned compute_units = 0;
  std::size_t max_work_group_size = 0;
};

// One kernel execution, from OpenCL profiling events (when ContextOptions::profile is set).
struct SPARQ_API KernelTime {
  std::string op, kernel;
  double time_ms = 0;
};

// Why a device was accepted or refused; sparq-info prints these.
struct SPARQ_API DeviceReport {
  std::string selector;  // "P:D" to pass as SPARQ_DEVICE
  std::string platform, name;
  bool is_gpu = false;
  bool usable = false;
  std::string reason;  // empty when usable
};

SPARQ_API std::vector<DeviceReport> list_devices();
SPARQ_API std::string default_cache_dir();
SPARQ_API const char* version();

class SPARQ_API Context {
 public:
  static Context create(const ContextOptions& options = {});

  Backend backend() const;
  const DeviceInfo& device() const;
  std::string cache_dir() const;  // "" when the disk cache is off or unwritable

  // Copies host data into a new contiguous tensor of this Context.
  Tensor upload(const void* data, DType dtype, std::vector<std::int64_t> shape);
  template <class T>
  Tensor upload(const std::vector<T>& data, DType dtype, std::vector<std::int64_t> shape) {
    check_upload_size(data.size() * sizeof(T), dtype, shape);
    return upload(data.data(), dtype, std::move(shape));
  }
  Tensor empty(DType dtype, std::vector<std::int64_t> shape);

  void finish();  // waits until all enqueued work is done
  std::vector<KernelTime> kernel_times() const;
  void clear_kernel_times();

  // Builds every kernel variant that the given op family list uses (sparq-info --warm).
  // Returns the number of programs built or found in the cache.
  int warm_up();

  const std::shared_ptr<detail::ContextImpl>& impl() const { return impl_; }

 private:
  explicit Context(std::shared_ptr<detail::ContextImpl> impl) : impl_(std::move(impl)) {}
  void check_upload_size(std::size_t bytes, DType dtype, const std::vector<std::int64_t>& shape);
  std::shared_ptr<detail::ContextImpl> impl_;
};

}  // namespace sparq
