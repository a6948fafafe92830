// sparq::Error: the one exception type every op and the runtime throw.
#pragma once
#include <stdexcept>
#include <string>

#include "sparq/export.h"

namespace sparq {

enum class ErrorCode {
  invalid_argument,  // an option or a value is wrong (NaN scale, bad index, ...)
  shape_mismatch,    // tensor shapes/strides/dtypes do not fit together
  unsupported,       // valid request this build/device does not support (e.g. D > 256)
  too_large,         // a size over the device's allocation or memory limits
  device_refused,    // the selected device fails sparq's capability check
  no_device,         // SPARQ_DEVICE named a device that does not exist
  build_failed,      // an OpenCL program failed to build (message has the build log)
  opencl_error,      // an OpenCL call failed (message has the error name)
  io_error,          // a file could not be read or written
  internal,          // a broken invariant inside sparq (a bug: please report)
};

SPARQ_API const char* error_code_name(ErrorCode code);

class SPARQ_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace sparq
