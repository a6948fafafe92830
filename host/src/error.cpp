// sparq::Error and the names of its codes.
#include "sparq/error.h"

namespace sparq {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument:
      return "invalid_argument";
    case ErrorCode::shape_mismatch:
      return "shape_mismatch";
    case ErrorCode::unsupported:
      return "unsupported";
    case ErrorCode::too_large:
      return "too_large";
    case ErrorCode::device_refused:
      return "device_refused";
    case ErrorCode::no_device:
      return "no_device";
    case ErrorCode::build_failed:
      return "build_failed";
    case ErrorCode::opencl_error:
      return "opencl_error";
    case ErrorCode::io_error:
      return "io_error";
    case ErrorCode::internal:
      return "internal";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

}  // namespace sparq
