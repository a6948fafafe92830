// Device quirks: unknown devices get sane defaults (everything portable, the reported limits).
#include "device_quirks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace sparq::rt {
namespace {

// From cl_ext_nv.h (cl_nv_device_attribute_query); defined here so older headers work too.
constexpr cl_device_info kComputeCapabilityMajorNV = 0x4000;
constexpr cl_device_info kComputeCapabilityMinorNV = 0x4001;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string DeviceQuirks::summary() const {
  std::string s = is_nvidia ? fmt::format("NVIDIA sm_{}{}", cc_major, cc_minor) : "generic";
  if (inline_ptx) s += ", inline PTX";
  s += fmt::format(", {} KiB local memory", local_mem_bytes / 1024);
  return s;
}

DeviceQuirks detect_quirks(const cl::Device& device) {
  DeviceQuirks q;
  q.local_mem_bytes = device.getInfo<CL_DEVICE_LOCAL_MEM_SIZE>();
  const std::string vendor = lower(device.getInfo<CL_DEVICE_VENDOR>());
  const std::string extensions = device.getInfo<CL_DEVICE_EXTENSIONS>();
  q.is_nvidia = vendor.find("nvidia") != std::string::npos;
  if (q.is_nvidia) {
    // NVIDIA's OpenCL reports 48 KiB; clamp anyway so a kernel never plans for more.
    q.local_mem_bytes = std::min<std::size_t>(q.local_mem_bytes, 48 * 1024);
    q.inline_ptx = true;
    if (extensions.find("cl_nv_device_attribute_query") != std::string::npos) {
      cl_uint major = 0, minor = 0;
      if (clGetDeviceInfo(device(), kComputeCapabilityMajorNV, sizeof major, &major, nullptr) ==
              CL_SUCCESS &&
          clGetDeviceInfo(device(), kComputeCapabilityMinorNV, sizeof minor, &minor, nullptr) ==
              CL_SUCCESS) {
        q.cc_major = static_cast<int>(major);
        q.cc_minor = static_cast<int>(minor);
      }
    }
  }
  return q;
}

}  // namespace sparq::rt
