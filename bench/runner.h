// sparq-bench's pieces: device peaks, timing a case, cold/warm start, anchors, and the report.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "cases/case.h"
#include "sparq/sparq.h"

namespace sparq::bench {

// Peaks of the device measured once per run with kernels_cl/bench/peaks.cl (clpeak's method).
struct Peaks {
  bool measured = false;
  double copy_gbps = 0;    // read + write bytes per second of a float4 copy
  double fp32_tflops = 0;  // fma chains, 2 flops per fma
  double int32_tops = 0;   // uint multiply-add chains, 2 ops per multiply-add
  std::string note;        // why not measured, or how
};
Peaks measure_peaks(Context& ctx);

// Times of the timed repeats of one case. From OpenCL profiling events (sum of the op's kernel
// times) when the Context records them, else host wall time around run() + finish().
struct Timing {
  std::vector<double> ms;       // per repeat, in the source below
  std::vector<double> wall_ms;  // per repeat, host wall time (always)
  std::string source;           // "events" or "wall"
  double median_ms = 0, min_ms = 0;
};
// wall_time: always host wall time (a loop of launches, synchronized at the end).
Timing time_case(Context& ctx, Instance& instance, int warmup, int repeat, bool wall_time = false);

// Context creation + the first op (program build or disk-cache load) versus the next call.
struct ColdStart {
  std::string case_name;
  double create_ms = 0, first_op_ms = 0, second_op_ms = 0;
  int programs_built = 0, programs_from_disk = 0;
  std::string cache_dir;
};
// Times the first and second call of `first` on `ctx`, a Context created create_ms ago by the
// caller with nothing run on it yet (preparing the inputs is not timed).
ColdStart measure_cold_start(Context& ctx, double create_ms, const Case& first);

// One row of attention_anchor.py's JSON, or one timing (eager / compiled) of a
// diffusion_anchor.py row (shape and step set, tflops 0).
struct AnchorRow {
  std::int64_t length = 0, batch = 0, heads = 0, head_dim = 0;
  bool causal = false;
  std::string backend, dtype;
  double ms = 0, tflops = 0;
  std::string shape, step;
};
// Throws std::runtime_error naming the file and what is wrong with it.
std::vector<AnchorRow> load_anchor(const std::string& path);

struct AnchorRatio {
  AnchorRow anchor;
  double ratio = 0;              // sparq TFLOP/s / anchor TFLOP/s (= anchor time / sparq time)
  double sparq_ms_per_step = 0;  // step anchors: the case's median ms / steps_per_call
};

struct CaseResult {
  const Case* c = nullptr;
  std::string error;  // non-empty: the case threw (counts as a failure)
  Timing timing;
  std::optional<double> host_us_per_call;  // Instance::host_us_per_call, when measured
  bool validated = false;                  // false when the device is the fallback itself
  Validation validation;
  double gbps = 0, tflops = 0;
  double roofline_pct = 0;  // measured time vs max(bytes / copy peak, flops / fp32 peak)
  std::string bound;        // "copy" or "fp32": the peak that sets the roofline time
  std::vector<AnchorRatio> anchors;
  bool failed() const { return !error.empty() || (validated && !validation.exact); }
};

// Prepares, times and validates one case; errors are caught into CaseResult::error.
CaseResult run_case(const Case& c, Context& device, Context* fallback, const Peaks& peaks,
                    const std::vector<AnchorRow>& anchors, int warmup, int repeat);

struct RunReport {
  std::string command_line, size_class;
  int warmup = 0, repeat = 0;
  DeviceInfo device;
  Peaks peaks;
  std::optional<ColdStart> cold;
  std::vector<CaseResult> results;
};
void print_report(const RunReport& report);  // aligned table on stdout
void write_json(const RunReport& report, const std::string& path);

}  // namespace sparq::bench
