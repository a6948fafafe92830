// The dense prefill kernel's speed knobs per device (attention_kernels.h). None of them changes
// an operation or its order, so every choice gives the same bits; the tests build both the GPU
// and the CPU configurations on PoCL.
#include <string>

#include "attention_kernels.h"
#include "errors.h"
#include "tuning_env.h"

namespace sparq::attention_detail {

namespace {

// SPARQ_TUNE_DENSE="map=1,prefetch=1,regs=168,unroll=1,threads=256": for tuning sweeps (sparq-bench
// on a GPU).
void apply_tuning(DenseKernelConfig& cfg, bool is_nvidia) {
  rt::for_each_tuning_item(
      "SPARQ_TUNE_DENSE", [&](const std::string& key, long value, const std::string& item) {
        if (key == "prefetch" && (value == 0 || value == 1))
          cfg.prefetch = value == 1;
        else if (key == "unroll" && (value == 0 || value == 1))
          cfg.unroll = value == 1;
        else if (key == "threads" && (value == 128 || value == 256))
          cfg.work_group = static_cast<int>(value);
        else if (key == "map" && (value == 0 || value == 1))
          cfg.map = static_cast<int>(value);
        else if (key == "ds" && (value == 16 || value == 32))
          cfg.rb_slice = static_cast<int>(value);
        else if (key == "exp" && (value == 0 || value == 1))
          cfg.rb_exp = value == 1;
        else if (key == "verbose" && (value == 0 || value == 1))
          cfg.nv_verbose = is_nvidia && value == 1;
        else if (key == "regs" && value >= 0 && value <= 255)
          cfg.nv_max_regs = is_nvidia ? static_cast<int>(value) : 0;
        else
          rt::fail(ErrorCode::invalid_argument, "attention",
                   "SPARQ_TUNE_DENSE item '{}' is not map=0|1, prefetch=0|1, unroll=0|1, "
                   "threads=128|256, regs=0..255, verbose=0|1, ds=16|32 or exp=0|1",
                   item);
      });
  if (cfg.map == 1) cfg.work_group = 128;  // prefill_body_rb.h's layout
}

}  // namespace

DenseKernelConfig DenseKernelConfig::for_device(int head_dim, bool is_gpu, bool is_nvidia) {
  DenseKernelConfig cfg;
  cfg.head_dim = head_dim;
  // GPUs: 256 work-items (4 rows x 4 keys each: 216 registers and no spills on the H100, where
  // 128 work-items need more than 255) with the next slice prefetched: 15.5-15.8 TFLOP/s against
  // 14.5 for 128 work-items without prefetch (bench/RESULTS.md, session 2). CPUs: 128, plain.
  cfg.work_group = is_gpu ? 256 : 128;
  cfg.unroll = is_gpu;
  cfg.prefetch = is_gpu;
  cfg.nv_max_regs = 0;
  // exp2's rounding by one conversion: 7% faster on the H100 at L4096 / L16384 (9.37 -> 8.71 ms,
  // 145.1 -> 135.3 ms; bench/RESULTS.md, session 7). Same bits either way.
  cfg.rb_exp = is_gpu;
  apply_tuning(cfg, is_nvidia);
  return cfg;
}

}  // namespace sparq::attention_detail
