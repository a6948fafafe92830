// DeviceRuntime: the OpenCL half of a Context (see device_runtime.h).
#include "device_runtime.h"

#include "device_select.h"
#include "errors.h"

namespace sparq::rt {

namespace {

std::string resolve_cache_dir(const ContextOptions& options) {
  if (!options.disk_cache) return "";
  return options.cache_dir.empty() ? sparq::default_cache_dir() : options.cache_dir;
}

std::string kernel_name(const cl::Kernel& kernel) {
  try {
    return kernel.getInfo<CL_KERNEL_FUNCTION_NAME>();
  } catch (const cl::Error&) {
    return "?";
  }
}

}  // namespace

void set_kernel_args_impl(const char* op, cl::Kernel& kernel, unsigned index, int err) {
  fail(ErrorCode::opencl_error, op, "setting argument {} of kernel '{}' failed: {}", index,
       kernel_name(kernel), cl_error_name(err));
}

// Every OpenCL call of the constructor (device queries included) is inside the function-try-block,
// so a driver failure surfaces as sparq::Error, never as cl::Error.
DeviceRuntime::DeviceRuntime(const cl::Platform& platform, const cl::Device& device,
                             const ContextOptions& options) try
    : device_(device), info_(describe(platform, device)), profile_(options.profile) {
  context_ = cl::Context(device_);
  queue_ = cl::CommandQueue(context_, device_,
                            profile_ ? CL_QUEUE_PROFILING_ENABLE : cl_command_queue_properties{0});
  quirks_ = detect_quirks(device_);
  programs_ = std::make_unique<ProgramCache>(context_, device_, resolve_cache_dir(options));
} catch (const cl::Error& e) {
  fail(ErrorCode::opencl_error, "Context::create", "opening the OpenCL device failed: {} ({})",
       e.what(), cl_error_name(e.err()));
}

DeviceRuntime::~DeviceRuntime() {
  // Tensors may outlive their Context (they hold the cl::Buffer); finishing here makes any
  // later read of such a tensor see every write this queue was asked to do.
  try {
    queue_.finish();
  } catch (const cl::Error&) {
    // Nothing useful to do in a destructor; the queue is released either way.
  }
}

cl::Kernel DeviceRuntime::kernel(const std::string& source_path, const std::string& name,
                                 const std::string& defines) {
  const std::string key = source_path + "\n" + name + "\n" + defines;
  if (auto it = kernels_.find(key); it != kernels_.end()) return it->second;
  cl::Program program = programs_->get(source_path, defines);
  try {
    cl::Kernel k(program, name.c_str());
    kernels_.emplace(key, k);
    return k;
  } catch (const cl::Error& e) {
    fail(ErrorCode::internal, "kernel lookup", "kernel '{}' not found in kernels_cl/{} ({})", name,
         source_path, cl_error_name(e.err()));
  }
}

cl::Kernel DeviceRuntime::own_kernel(const std::string& source_path, const std::string& name,
                                     const std::string& defines) {
  kernel(source_path, name, defines);  // builds (or loads) the program and checks the name
  try {
    return cl::Kernel(programs_->get(source_path, defines), name.c_str());
  } catch (const cl::Error& e) {
    fail(ErrorCode::internal, "kernel lookup", "kernel '{}' of kernels_cl/{}: {}", name,
         source_path, cl_error_name(e.err()));
  }
}

void DeviceRuntime::launch(const char* op, const cl::Kernel& kernel, const cl::NDRange& global,
                           const cl::NDRange& local) {
  cl::Event event;
  try {
    queue_.enqueueNDRangeKernel(kernel, cl::NullRange, global, local, nullptr,
                                profiling() ? &event : nullptr);
  } catch (const cl::Error& e) {
    fail(ErrorCode::opencl_error, op, "launching kernel '{}' failed: {}", kernel_name(kernel),
         cl_error_name(e.err()));
  }
  if (profiling()) pending_.push_back({op, kernel_name(kernel), event, cl::Event()});
}

cl::Buffer DeviceRuntime::allocate(std::size_t bytes, const char* what) {
  if (bytes > info_.max_alloc_bytes)
    fail(ErrorCode::too_large, what,
         "{} bytes exceed the device's largest allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE = {} "
         "bytes on '{}')",
         bytes, info_.max_alloc_bytes, info_.name);
  if (bytes > info_.global_mem_bytes)
    fail(ErrorCode::too_large, what,
         "{} bytes exceed the device's global memory ({} bytes on '{}')", bytes,
         info_.global_mem_bytes, info_.name);
  try {
    return cl::Buffer(context_, CL_MEM_READ_WRITE, bytes == 0 ? 1 : bytes);
  } catch (const cl::Error& e) {
    fail(ErrorCode::opencl_error, what, "allocating {} bytes on '{}' failed: {}", bytes, info_.name,
         cl_error_name(e.err()));
  }
}

void DeviceRuntime::write(const cl::Buffer& buffer, std::size_t offset, std::size_t bytes,
                          const void* src, const char* what) {
  if (bytes == 0) return;
  try {
    queue_.enqueueWriteBuffer(buffer, CL_TRUE, offset, bytes, src);
  } catch (const cl::Error& e) {
    fail(ErrorCode::opencl_error, what, "writing {} bytes to the device failed: {}", bytes,
         cl_error_name(e.err()));
  }
}

void DeviceRuntime::read(const cl::Buffer& buffer, std::size_t offset, std::size_t bytes, void* dst,
                         const char* what) {
  if (bytes == 0) return;
  try {
    queue_.enqueueReadBuffer(buffer, CL_TRUE, offset, bytes, dst);
  } catch (const cl::Error& e) {
    fail(ErrorCode::opencl_error, what, "reading {} bytes from the device failed: {}", bytes,
         cl_error_name(e.err()));
  }
}

void DeviceRuntime::finish() {
  try {
    queue_.finish();
  } catch (const cl::Error& e) {
    fail(ErrorCode::opencl_error, "Context::finish", "clFinish failed: {}", cl_error_name(e.err()));
  }
}

std::vector<KernelTime> DeviceRuntime::kernel_times() {
  for (auto& p : pending_) {
    try {
      p.event.wait();
      const auto start =
          (p.first() ? p.first : p.event).getProfilingInfo<CL_PROFILING_COMMAND_START>();
      const auto end = p.event.getProfilingInfo<CL_PROFILING_COMMAND_END>();
      done_.push_back({p.op, p.kernel, static_cast<double>(end - start) * 1e-6});
    } catch (const cl::Error& e) {
      fail(ErrorCode::opencl_error, p.op.c_str(), "profiling kernel '{}' failed: {}", p.kernel,
           cl_error_name(e.err()));
    }
  }
  pending_.clear();
  return done_;
}

void DeviceRuntime::clear_kernel_times() {
  pending_.clear();
  done_.clear();
}

}  // namespace sparq::rt
