// sparq::Support: the answer of the supports_* queries, so a framework can route an op to sparq
// or elsewhere without try/catch.
#pragma once
#include <string>

#include "sparq/export.h"

namespace sparq {

struct SPARQ_API Support {
  bool ok = true;
  std::string reason;  // empty when ok; otherwise the sparq::Error message the op would throw
  explicit operator bool() const { return ok; }
};

}  // namespace sparq
