// Device choice (ARCHITECTURE §4) and the capability check.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "opencl.hpp.h"
#include "sparq/context.h"

namespace sparq::rt {

// Why `device` cannot run sparq's exact kernels, or "" when it can: needs OpenCL C >= 1.2,
// CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT and CL_FP_DENORM in CL_DEVICE_SINGLE_FP_CONFIG, and
// >= 32 KiB local memory.
std::string capability_problem(const cl::Device& device);

// The device properties the check looks at, separated so the rule can be tested on any machine.
struct DeviceCaps {
  bool available = true, compiler_available = true;
  std::string opencl_c_version;  // CL_DEVICE_OPENCL_C_VERSION, e.g. "OpenCL C 1.2 PoCL"
  cl_device_fp_config single_fp_config = 0;
  std::uint64_t local_mem_bytes = 0;
};
inline constexpr std::uint64_t kMinLocalMemBytes = 32 * 1024;
std::string capability_problem(const DeviceCaps& caps);

struct Selection {
  bool fallback = false;  // true: no OpenCL, run the CPU fallback
  cl::Platform platform;
  cl::Device device;
};

// One OpenCL device as selection sees it.
struct DeviceCandidate {
  unsigned platform_index = 0, device_index = 0;
  cl::Platform platform;
  cl::Device device;
  std::string platform_name, name;
  bool is_gpu = false, is_pocl = false;
  std::string problem;           // capability_problem(); "" = usable
  std::string selector() const;  // "P:D"
};

// Every device of every platform; empty (not an error) when no OpenCL platform is installed.
std::vector<DeviceCandidate> enumerate_devices();

// The selection rule over a given device list (tests pass synthetic lists). `shown` names the
// setting in messages, e.g. "SPARQ_DEVICE=gpu".
Selection select_among(const std::vector<DeviceCandidate>& all, const std::string& spec,
                       const std::string& shown);

// `spec` as ContextOptions::device ("" = $SPARQ_DEVICE, then the default order). Throws
// sparq::Error(no_device) for a selector that matches nothing and (device_refused) with the
// reason for an explicitly selected device that fails the capability check.
Selection select_device(const std::string& spec);

// Every OpenCL device with its verdict (public sparq::list_devices()).
std::vector<DeviceReport> list_device_reports();

DeviceInfo describe(const cl::Platform& platform, const cl::Device& device);

}  // namespace sparq::rt
