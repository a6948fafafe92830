// The int8 MMA attention kernel's speed knobs (sage8_kernels.h). None of them changes an
// operation or its order, so every choice gives the same bits.
#include <cstdlib>
#include <string>

#include "errors.h"
#include "sage8_kernels.h"

namespace sparq::attention_detail {

void apply_sage8_tuning(Sage8KernelConfig& cfg, bool is_nvidia) {
  const char* env = std::getenv("SPARQ_TUNE_SAGE8");
  if (env == nullptr || *env == '\0') return;
  const std::string spec = env;
  std::size_t pos = 0;
  while (pos < spec.size()) {
    std::size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(pos, end - pos);
    const std::size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const int value = eq == std::string::npos ? -1 : std::atoi(item.c_str() + eq + 1);
    if (key == "prefetch" && (value == 0 || value == 1))
      cfg.prefetch = value == 1;
    else if (key == "rows" && (value == 64 || value == 128))
      cfg.rows = value;
    else if (key == "regs" && value >= 0 && value <= 255)
      cfg.nv_max_regs = is_nvidia ? value : 0;
    else if (key == "verbose" && (value == 0 || value == 1))
      cfg.nv_verbose = is_nvidia && value == 1;
    else
      rt::fail(
          ErrorCode::invalid_argument, "attention",
          "SPARQ_TUNE_SAGE8 item '{}' is not prefetch=0|1, rows=64|128, regs=0..255 or verbose=0|1",
          item);
    pos = end + 1;
  }
}

}  // namespace sparq::attention_detail
