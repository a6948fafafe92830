// SPARQ_TUNE_SCAN: the selective scan's schedule knobs (mamba_kernels.h). None of them changes an
// operation or its order, so every setting gives the same bits.
#include <string>

#include "mamba_common.h"
#include "mamba_kernels.h"
#include "tuning_env.h"

namespace sparq::mamba::detail_mamba {

ScanTuning ScanTuning::from_env(const char* op, bool is_nvidia, bool is_gpu, bool small_n) {
  ScanTuning t = is_gpu ? gpu_default(small_n) : ScanTuning{};
  rt::for_each_tuning_item(
      "SPARQ_TUNE_SCAN", [&](const std::string& key, long v, const std::string& item) {
        const bool bit = v == 0 || v == 1;
        if (key == "stage" && bit)
          t.stage = v == 1;
        else if (key == "small" && bit)
          t.small = v == 1;
        else if (key == "exp" && bit)
          t.fexp = v == 1;
        else if (key == "per" && bit)
          t.per = v == 1;
        else if (key == "vec" && bit)
          t.vec = v == 1;
        else if (key == "unroll" && (v == 0 || v == 1 || v == 2 || v == 4 || v == 8 || v == 16))
          t.unroll = static_cast<int>(v);
        else if (key == "wg" && (v == 64 || v == 128 || v == 256))
          t.wg = static_cast<int>(v);
        else if (key == "tile" && (v == 8 || v == 16 || v == 32 || v == 64))
          t.tile = static_cast<int>(v);
        else if (key == "dbmax" && (v == 4 || v == 8 || v == 16 || v == 32))
          t.db_max = static_cast<int>(v);
        else if (key == "regs" && v >= 0 && v <= 255)
          t.nv_regs = is_nvidia ? static_cast<int>(v) : 0;
        else if (key == "verbose" && bit)
          t.nv_verbose = is_nvidia && v == 1;
        else
          rt::fail(ErrorCode::invalid_argument, op,
                   "SPARQ_TUNE_SCAN item '{}' is not stage=0|1, small=0|1, exp=0|1, per=0|1, "
                   "vec=0|1, unroll=0|1|2|4|8|16, wg=64|128|256, tile=8|16|32|64, dbmax=4|8|16|32, "
                   "regs=0..255 or verbose=0|1",
                   item);
      });
  return t;
}

}  // namespace sparq::mamba::detail_mamba
