// The int8 MMA attention kernel's speed knobs (sage8_kernels.h). None of them changes an
// operation or its order, so every choice gives the same bits.
#include <string>

#include "errors.h"
#include "sage8_kernels.h"
#include "tuning_env.h"

namespace sparq::attention_detail {

void apply_sage8_tuning(Sage8KernelConfig& cfg, bool is_nvidia) {
  rt::for_each_tuning_item(
      "SPARQ_TUNE_SAGE8", [&](const std::string& key, long value, const std::string& item) {
        if (key == "prefetch" && (value == 0 || value == 1))
          cfg.prefetch = value == 1;
        else if (key == "div" && (value == 0 || value == 1))
          cfg.fast_div = value == 1;
        else if (key == "exp" && (value == 0 || value == 1))
          cfg.fast_exp = value == 1;
        else if (key == "svflag" && (value == 0 || value == 1))
          cfg.sv_flag = value == 1;
        else if (key == "bias" && (value == 0 || value == 1))
          cfg.mma_bias = value == 1;
        else if (key == "dstage" && (value == 0 || value == 1))
          cfg.delta_stage = value == 1;
        else if (key == "mx" && (value == 0 || value == 1))
          cfg.fast_max = value == 1;
        else if (key == "decode" && (value == 0 || value == 1))
          cfg.decode = value == 1;
        else if (key == "rows" && (value == 64 || value == 128))
          cfg.rows = static_cast<int>(value);
        else if (key == "regs" && value >= 0 && value <= 255)
          cfg.nv_max_regs = is_nvidia ? static_cast<int>(value) : 0;
        else if (key == "verbose" && (value == 0 || value == 1))
          cfg.nv_verbose = is_nvidia && value == 1;
        else
          rt::fail(ErrorCode::invalid_argument, "attention",
                   "SPARQ_TUNE_SAGE8 item '{}' is not prefetch=0|1, rows=64|128, div=0|1, "
                   "exp=0|1, svflag=0|1, bias=0|1, dstage=0|1, mx=0|1, regs=0..255, verbose=0|1 or "
                   "decode=0|1",
                   item);
      });
}

bool sage8_route_decode() {
  Sage8KernelConfig cfg;
  apply_sage8_tuning(cfg, false);
  return cfg.decode;
}

}  // namespace sparq::attention_detail
