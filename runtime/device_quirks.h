// Device quirks, in one place (STYLE: CLBlast's compile.cpp). A quirk never changes math: the
// build options of every program are the same exactness flags on every device; quirks only tell
// ops which faster-but-identical paths they may take and which limits to respect.
#pragma once
#include <cstddef>
#include <string>

#include "opencl.hpp.h"

namespace sparq::rt {

struct DeviceQuirks {
  bool is_nvidia = false;
  bool inline_ptx = false;  // NVIDIA's OpenCL compiler accepts asm("...") PTX (mma.sync, ...)
  int cc_major = 0, cc_minor = 0;  // cl_nv_device_attribute_query; 0 when unknown
  // Local memory a kernel may use per work-group: the device's value (48 KiB on NVIDIA).
  std::size_t local_mem_bytes = 0;
  std::string summary() const;  // one line for sparq-info
};

DeviceQuirks detect_quirks(const cl::Device& device);

}  // namespace sparq::rt
