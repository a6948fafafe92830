// Error helpers shared by the runtime and the host ops.
#pragma once
#include <fmt/format.h>

#include <string>

#include "sparq/error.h"

namespace sparq::rt {

const char* cl_error_name(int code);  // "CL_OUT_OF_RESOURCES", ... or "CL_UNKNOWN_ERROR(-9999)"

// Throws sparq::Error(code, "<op>: <formatted message>").
template <class... Args>
[[noreturn]] void fail(ErrorCode code, const char* op, fmt::format_string<Args...> f,
                       Args&&... args) {
  throw Error(code, std::string(op) + ": " + fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace sparq::rt
