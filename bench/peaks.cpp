// Device peaks, measured once per run the way clpeak does: a float4 copy for bandwidth, fma chains
// for the fp32 rate, unsigned multiply-add chains for the integer rate (kernels_cl/bench/peaks.cl).
// Each kernel is calibrated to run ~20 ms and timed 5 times; the best time gives the peak.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "context_impl.h"
#include "runner.h"

namespace sparq::bench {
namespace {

constexpr const char* kSource = "bench/peaks.cl";
constexpr double kTargetMs = 20.0;
constexpr int kTimedRuns = 5;

// Device time of one launch: the profiling event when the runtime records one, else wall time.
double launch_ms(Context& ctx, rt::DeviceRuntime& rt, const cl::Kernel& kernel,
                 const cl::NDRange& global, const cl::NDRange& local) {
  ctx.clear_kernel_times();
  const auto t0 = std::chrono::steady_clock::now();
  rt.launch("peaks", kernel, global, local);
  ctx.finish();
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto times = ctx.kernel_times();
  return times.empty() ? wall : times.back().time_ms;
}

double best_ms(Context& ctx, rt::DeviceRuntime& rt, const cl::Kernel& kernel,
               const cl::NDRange& global, const cl::NDRange& local) {
  double best = launch_ms(ctx, rt, kernel, global, local);  // also the warm-up
  for (int i = 0; i < kTimedRuns; ++i)
    best = std::min(best, launch_ms(ctx, rt, kernel, global, local));
  return best;
}

// Runs `kernel(out, iterations, a, b)` with the loop count scaled so one launch takes ~kTargetMs;
// returns operations per second (per work-item: iterations * 8 steps * 8 chains * 4 lanes * 2).
template <class Scalar>
double chain_rate(Context& ctx, rt::DeviceRuntime& rt, const char* name, Scalar a, Scalar b,
                  std::size_t items, std::size_t local) {
  cl::Kernel kernel = rt.kernel(kSource, name, "");
  cl::Buffer out = rt.allocate(items * sizeof(Scalar), "peaks output");
  const cl::NDRange global(items), group(local);
  kernel.setArg(0, out);
  kernel.setArg(2, a);
  kernel.setArg(3, b);
  int iterations = 16;
  for (int attempt = 0; attempt < 4; ++attempt) {
    kernel.setArg(1, iterations);
    const double ms = launch_ms(ctx, rt, kernel, global, group);
    if (ms >= kTargetMs / 2 || iterations >= (1 << 20)) break;
    const double scale = ms > 0 ? kTargetMs / ms : 64.0;
    iterations = static_cast<int>(std::clamp(iterations * scale, 16.0, double(1 << 20)));
  }
  kernel.setArg(1, iterations);
  const double ms = best_ms(ctx, rt, kernel, global, group);
  return static_cast<double>(items) * iterations * 8 * 8 * 4 * 2 / (ms * 1e-3);
}

}  // namespace

Peaks measure_peaks(Context& ctx) {
  Peaks p;
  auto& impl = *ctx.impl();
  if (impl.is_fallback()) {
    p.note = "not measured: the device is the CPU fallback (no OpenCL)";
    return p;
  }
  rt::DeviceRuntime& rt = *impl.device;
  const DeviceInfo& info = ctx.device();
  const std::size_t local = std::min<std::size_t>(256, info.max_work_group_size);

  // Copy: large enough to leave every cache behind, small enough for any device.
  std::size_t bytes = info.is_gpu ? (std::size_t{512} << 20) : (std::size_t{64} << 20);
  bytes = std::min<std::size_t>(bytes, info.max_alloc_bytes / 2);
  bytes -= bytes % (16 * local);
  cl::Buffer src = rt.allocate(bytes, "peaks copy source");
  cl::Buffer dst = rt.allocate(bytes, "peaks copy destination");
  rt.queue().enqueueFillBuffer(src, 1.0f, 0, bytes);
  cl::Kernel copy = rt.kernel(kSource, "copy_float4", "");
  copy.setArg(0, src);
  copy.setArg(1, dst);
  const double copy_ms = best_ms(ctx, rt, copy, cl::NDRange(bytes / 16), cl::NDRange(local));
  p.copy_gbps = 2.0 * static_cast<double>(bytes) / (copy_ms * 1e-3) / 1e9;

  // Enough work-items to fill every compute unit several times over.
  const std::size_t items = std::max<unsigned>(info.compute_units, 1) * (info.is_gpu ? 2048 : 512);
  // a < 1 and b > 0: x -> b / (1 - a) = 1.0 stays a normal number (no denormal slow paths).
  p.fp32_tflops =
      chain_rate<float>(ctx, rt, "fp32_fma_chains", 0.9990234375f, 0.0009765625f, items, local) /
      1e12;
  p.int32_tops =
      chain_rate<cl_uint>(ctx, rt, "int32_mul_add", 1664525u, 1013904223u, items, local) / 1e12;
  ctx.clear_kernel_times();
  p.measured = true;
  p.note = fmt::format("copy {} MiB x {} runs; {} work-items of chains; best of {}", bytes >> 20,
                       kTimedRuns + 1, items, kTimedRuns + 1);
  return p;
}

}  // namespace sparq::bench
