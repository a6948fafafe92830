// DeviceRuntime: one OpenCL context + in-order queue + program cache + profiling for a Context.
// Not thread-safe by itself: the owning Context serializes calls (ContextImpl::mutex).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "device_quirks.h"
#include "opencl.hpp.h"
#include "program_cache.h"
#include "sparq/context.h"

namespace sparq::rt {

// Sets kernel arguments 0, 1, ... in order; an OpenCL error (wrong size, invalid buffer) becomes
// sparq::Error(opencl_error) naming the op, the kernel and the argument index.
void set_kernel_args_impl(const char* op, cl::Kernel& kernel, unsigned index, int err);
template <class... Args>
void set_kernel_args(const char* op, cl::Kernel& kernel, const Args&... args) {
  unsigned index = 0;
  auto one = [&](const auto& arg) {
    int err = CL_SUCCESS;
    try {
      kernel.setArg(index, arg);
    } catch (const cl::Error& e) {
      err = e.err();
    }
    if (err != CL_SUCCESS) set_kernel_args_impl(op, kernel, index, err);
    ++index;
  };
  (one(args), ...);
}

class DeviceRuntime {
 public:
  DeviceRuntime(const cl::Platform& platform, const cl::Device& device,
                const ContextOptions& options);
  ~DeviceRuntime();  // waits for the queue to drain
  DeviceRuntime(const DeviceRuntime&) = delete;
  DeviceRuntime& operator=(const DeviceRuntime&) = delete;

  const DeviceInfo& info() const { return info_; }
  const DeviceQuirks& quirks() const { return quirks_; }
  cl::Context& context() { return context_; }
  cl::CommandQueue& queue() { return queue_; }
  const cl::Device& device() const { return device_; }
  ProgramCache& programs() { return *programs_; }
  bool profiling() const { return profile_ && !paused_; }
  // Stops (true) or resumes recording KernelTimes on a profiling Context: sparq-bench's wall-clock
  // cases time what an app without profiling sees (no event per launch).
  void pause_profiling(bool paused) { paused_ = paused; }

  // Kernel `name` from kernels_cl/`source_path` built with `defines` (cached).
  cl::Kernel kernel(const std::string& source_path, const std::string& name,
                    const std::string& defines);
  // The same kernel as a new object of its own (not shared with the cache): for callers that keep
  // arguments set between launches (sparq::Plan), since kernel() hands every op one object.
  cl::Kernel own_kernel(const std::string& source_path, const std::string& name,
                        const std::string& defines);

  // Enqueues; records a KernelTime when profiling. OpenCL errors become sparq::Error naming op.
  void launch(const char* op, const cl::Kernel& kernel, const cl::NDRange& global,
              const cl::NDRange& local);

  // Records commands enqueued outside launch() (e.g. by CLBlast) as one KernelTime from `first`'s
  // start to `last`'s end (the queue is in order), when profiling.
  void record_span(const char* op, const std::string& name, const cl::Event& first,
                   const cl::Event& last) {
    if (profiling()) pending_.push_back({op, name, last, first});
  }

  // Allocates after checking CL_DEVICE_MAX_MEM_ALLOC_SIZE and global memory (sparq::Error
  // too_large naming `what` otherwise). Zero bytes allocate one byte (OpenCL forbids 0).
  cl::Buffer allocate(std::size_t bytes, const char* what);

  // Blocking host <-> device copies (in queue order); OpenCL errors become sparq::Error.
  void write(const cl::Buffer& buffer, std::size_t offset, std::size_t bytes, const void* src,
             const char* what);
  void read(const cl::Buffer& buffer, std::size_t offset, std::size_t bytes, void* dst,
            const char* what);
  void finish();

  std::vector<KernelTime> kernel_times();  // resolves pending events
  void clear_kernel_times();

 private:
  cl::Context context_;
  cl::Device device_;
  cl::CommandQueue queue_;
  DeviceInfo info_;
  DeviceQuirks quirks_;
  bool profile_ = false;
  bool paused_ = false;
  std::unique_ptr<ProgramCache> programs_;
  std::map<std::string, cl::Kernel> kernels_;
  struct Pending {
    std::string op, kernel;
    cl::Event event;
    cl::Event first;  // record_span: the span's first command (else `event` alone)
  };
  std::vector<Pending> pending_;
  std::vector<KernelTime> done_;
};

}  // namespace sparq::rt
