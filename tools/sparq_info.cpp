// sparq-info: what sparq sees on this machine — OpenCL platforms and devices with the capability
// verdict, the default device, the program cache, and (--warm) cold vs warm build times.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "context_impl.h"
#include "kernel_variants.h"
#include "selftest.h"
#include "sparq/sparq.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void print_devices() {
  const auto devices = sparq::list_devices();
  fmt::print("OpenCL devices:\n");
  if (devices.empty()) fmt::print("  (none: no OpenCL platform found; ops run on the fallback)\n");
  for (const auto& d : devices)
    fmt::print("  [{}] {} — {}{}: {}\n", d.selector, d.name, d.platform, d.is_gpu ? " (GPU)" : "",
               d.usable ? "usable" : "refused: " + d.reason);
}

// `how`: which setting chose the device ("default", "SPARQ_DEVICE=gpu", "--device 0:0").
void print_context(sparq::Context& ctx, const std::string& how, bool selftest) {
  const auto& info = ctx.device();
  if (info.backend == sparq::Backend::fallback) {
    fmt::print("Device ({}): CPU fallback, no OpenCL ({} threads)\n", how, info.compute_units);
    return;
  }
  fmt::print("Device ({}): {} ({}), platform {}, driver {}, {}\n", how, info.name, info.vendor,
             info.platform, info.driver_version, info.opencl_c_version);
  fmt::print(
      "  {} compute units, {:.1f} GiB global, {:.0f} MiB max alloc, {} KiB local, "
      "work-group <= {}\n",
      info.compute_units, info.global_mem_bytes / 1073741824.0, info.max_alloc_bytes / 1048576.0,
      info.local_mem_bytes / 1024, info.max_work_group_size);
  auto& device = *ctx.impl()->device;
  fmt::print("  quirks: {}\n", device.quirks().summary());
  if (selftest) {
    std::lock_guard lock(ctx.impl()->mutex);
    const std::string problem = sparq::rt::device_selftest(device);
    fmt::print("  exactness self-test vs fallback: {}\n",
               problem.empty() ? "bit-identical" : "MISMATCH: " + problem);
  }
}

// Times warm_up() (Context creation excluded) on a Context without the disk cache (cold: every
// program compiled from source; the driver's own cache, e.g. PoCL's or NVIDIA's ComputeCache, may
// still help) and on one reading sparq's disk cache (warm: what a later process gets).
int warm(const std::string& selector) {
  auto cold = sparq::Context::create({.device = selector, .disk_cache = false});
  if (cold.backend() == sparq::Backend::fallback) {
    fmt::print("--warm: the fallback compiles nothing\n");
    return 0;
  }
  auto t0 = std::chrono::steady_clock::now();
  const int n = cold.warm_up();
  const double cold_s = seconds_since(t0);
  sparq::Context::create({.device = selector}).warm_up();  // fills missing disk-cache entries
  auto again = sparq::Context::create({.device = selector});
  t0 = std::chrono::steady_clock::now();
  again.warm_up();
  const double warm_s = seconds_since(t0);
  const auto stats = again.impl()->device->programs().stats();
  fmt::print(
      "--warm: {} program variants: cold (from source) {:.3f} s, warm (disk cache) {:.3f} s "
      "[{} disk hits, {} builds, {} corrupt files replaced]\n",
      n, cold_s, warm_s, stats.disk_hits, stats.builds, stats.corrupt_files);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sparq-info: OpenCL devices, sparq's verdict on each, the program cache"};
  std::string selector;
  bool do_warm = false, selftest = false, list_variants = false;
  app.add_option("-d,--device", selector,
                 "device to select (as SPARQ_DEVICE: fallback, pocl, gpu, P:D, name substring)");
  app.add_flag("--warm", do_warm, "pre-build every kernel variant; print cold vs warm time");
  app.add_flag("--selftest", selftest, "run the exactness self-test kernel against the fallback");
  app.add_flag("--variants", list_variants, "list every kernel program variant");
  CLI11_PARSE(app, argc, argv);
  try {
    fmt::print("sparq {}\n", sparq::version());
    print_devices();
    auto ctx = sparq::Context::create({.device = selector});
    const char* env = std::getenv("SPARQ_DEVICE");
    const std::string how =
        !selector.empty() ? "--device " + selector
        : (env && *env)   ? std::string("SPARQ_DEVICE=") + env
                          : std::string("default: first capable GPU, else PoCL, else fallback");
    print_context(ctx, how, selftest);
    const std::string dir = ctx.cache_dir();
    fmt::print("Program cache: {}\n",
               !dir.empty() ? dir
               : ctx.backend() == sparq::Backend::fallback
                   ? fmt::format("{} (unused by the fallback)", sparq::default_cache_dir())
                   : std::string("off"));
    if (list_variants)
      for (const auto& v : sparq::rt::all_kernel_variants())
        fmt::print("  variant: {} {}\n", v.source_path, v.defines);
    if (do_warm) return warm(selector);
  } catch (const sparq::Error& e) {
    std::fprintf(stderr, "sparq-info: %s\n", e.what());
    return 1;
  }
  return 0;
}
