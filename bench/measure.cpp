// Timing one case, the cold/warm start, and the roofline and anchor numbers of a result.
#include <algorithm>
#include <chrono>

#include "context_impl.h"
#include "runner.h"

namespace sparq::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One call, waited for; returns {wall ms, sum of the call's kernel times or -1 when none}.
std::pair<double, double> timed_call(Context& ctx, Instance& instance) {
  ctx.clear_kernel_times();
  const auto t0 = Clock::now();
  instance.run();
  ctx.finish();
  const double wall = ms_since(t0);
  const auto kernels = ctx.kernel_times();
  if (kernels.empty()) return {wall, -1.0};
  double sum = 0;
  for (const auto& k : kernels) sum += k.time_ms;
  return {wall, sum};
}

}  // namespace

Timing time_case(Context& ctx, Instance& instance, int warmup, int repeat, bool wall_time) {
  // Wall-clock cases (a loop of calls as an app issues them) run without per-launch events.
  auto& rt = ctx.impl()->device;
  if (rt && wall_time) rt->pause_profiling(true);
  struct Resume {
    std::unique_ptr<rt::DeviceRuntime>& rt;
    ~Resume() {
      if (rt) rt->pause_profiling(false);
    }
  } resume{rt};
  for (int i = 0; i < warmup; ++i) timed_call(ctx, instance);
  Timing t;
  bool all_events = true;
  std::vector<double> events;
  for (int i = 0; i < repeat; ++i) {
    auto [wall, device] = timed_call(ctx, instance);
    t.wall_ms.push_back(wall);
    events.push_back(device);
    all_events = all_events && device >= 0;
  }
  ctx.clear_kernel_times();
  // Events exclude host overhead and launch gaps; they are used only when every repeat has them.
  all_events = all_events && !wall_time;
  t.source = all_events && repeat > 0 ? "events" : "wall";
  t.ms = all_events ? events : t.wall_ms;
  t.median_ms = median(t.ms);
  t.min_ms = t.ms.empty() ? 0 : *std::min_element(t.ms.begin(), t.ms.end());
  return t;
}

ColdStart measure_cold_start(Context& ctx, double create_ms, const Case& first) {
  ColdStart cold;
  cold.case_name = first.name;
  cold.create_ms = create_ms;
  cold.cache_dir = ctx.cache_dir();
  auto instance = first.prepare(ctx);
  ctx.finish();  // uploads are not part of the first call's time
  auto t0 = Clock::now();
  instance->run();
  ctx.finish();
  cold.first_op_ms = ms_since(t0);
  t0 = Clock::now();
  instance->run();
  ctx.finish();
  cold.second_op_ms = ms_since(t0);
  if (auto& rt = ctx.impl()->device) {
    const auto stats = rt->programs().stats();
    cold.programs_built = stats.builds;
    cold.programs_from_disk = stats.disk_hits;
  }
  ctx.clear_kernel_times();
  return cold;
}

CaseResult run_case(const Case& c, Context& device, Context* fallback, const Peaks& peaks,
                    const std::vector<AnchorRow>& anchors, int warmup, int repeat) {
  CaseResult r;
  r.c = &c;
  try {
    auto instance = c.prepare(device);
    device.finish();
    r.timing = time_case(device, *instance, warmup, repeat, c.wall_time);
    r.host_us_per_call = instance->host_us_per_call();
    if (fallback) {
      r.validation = instance->validate(*fallback);
      r.validated = true;
    }
  } catch (const std::exception& e) {
    r.error = e.what();
    return r;
  }
  const double seconds = r.timing.median_ms * 1e-3;
  if (seconds <= 0) return r;
  r.gbps = c.bytes_moved / seconds / 1e9;
  r.tflops = c.flops / seconds / 1e12;
  if (peaks.measured) {
    // Roofline: the op cannot beat moving its bytes at copy bandwidth nor doing its flops at
    // the fma rate; the larger of the two times is the bound it is measured against.
    const double memory_s = c.bytes_moved / (peaks.copy_gbps * 1e9);
    const double compute_s = c.flops / (peaks.fp32_tflops * 1e12);
    r.bound = memory_s >= compute_s ? "copy" : "fp32";
    r.roofline_pct = 100.0 * std::max(memory_s, compute_s) / seconds;
  }
  if (c.anchor)
    for (const auto& a : anchors)
      if (a.length == c.anchor->length && a.batch == c.anchor->batch &&
          a.heads == c.anchor->heads && a.head_dim == c.anchor->head_dim &&
          a.causal == c.anchor->causal && a.tflops > 0)
        r.anchors.push_back({a, r.tflops / a.tflops});
  if (c.step_anchor) {
    const double per_step = r.timing.median_ms / std::max(1, c.steps_per_call);
    for (const auto& a : anchors)
      if (a.shape == c.step_anchor->shape && a.step == c.step_anchor->step && a.ms > 0)
        r.anchors.push_back({a, a.ms / per_step, per_step});
  }
  return r;
}

}  // namespace sparq::bench
