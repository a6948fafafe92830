// Device choice (ARCHITECTURE §4) and the capability check.
#pragma once
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

struct Selection {
  bool fallback = false;  // true: no OpenCL, run the CPU fallback
  cl::Platform platform;
  cl::Device device;
};

// `spec` as ContextOptions::device ("" = $SPARQ_DEVICE, then the default order). Throws
// sparq::Error(no_device) for a selector that matches nothing and (device_refused) with the
// reason for an explicitly selected device that fails the capability check.
Selection select_device(const std::string& spec);

DeviceInfo describe(const cl::Platform& platform, const cl::Device& device);

}  // namespace sparq::rt
