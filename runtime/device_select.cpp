// Device selection (ARCHITECTURE §4): SPARQ_DEVICE / ContextOptions::device and the default
// order. A machine without any OpenCL platform (no ICD installed) is not an error: the default
// then is the fallback, and only an explicit OpenCL selector fails (no_device).
#include "device_select.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <regex>

#include "errors.h"

namespace sparq::rt {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::vector<cl::Platform> platforms_or_none() {
  std::vector<cl::Platform> platforms;
  try {
    cl::Platform::get(&platforms);
  } catch (const cl::Error& e) {
    // ocl-icd answers CL_PLATFORM_NOT_FOUND_KHR when no ICD is installed: "no OpenCL here".
    if (e.err() == CL_PLATFORM_NOT_FOUND_KHR) return {};
    fail(ErrorCode::opencl_error, "device selection", "clGetPlatformIDs failed: {}",
         cl_error_name(e.err()));
  }
  return platforms;
}

}  // namespace

std::vector<DeviceCandidate> enumerate_devices() {
  // ocl-icd's first platform enumeration (and PoCL's initialization behind it) is not thread
  // safe: two Contexts created at once in two threads saw "no platform" or crashed. One
  // process-wide lock around enumeration makes Context::create safe from any thread.
  static std::mutex enumeration_mutex;
  const std::lock_guard<std::mutex> lock(enumeration_mutex);
  std::vector<DeviceCandidate> out;
  const auto platforms = platforms_or_none();
  for (unsigned p = 0; p < platforms.size(); ++p) {
    std::vector<cl::Device> devices;
    std::string pname, pvendor;
    try {
      pname = platforms[p].getInfo<CL_PLATFORM_NAME>();
      pvendor = platforms[p].getInfo<CL_PLATFORM_VENDOR>();
      platforms[p].getDevices(CL_DEVICE_TYPE_ALL, &devices);
    } catch (const cl::Error&) {
      // CL_DEVICE_NOT_FOUND (a platform without devices), or an ICD whose driver is broken
      // (e.g. installed without its GPU): neither should make the other platforms unusable.
      continue;
    }
    for (unsigned d = 0; d < devices.size(); ++d) {
      DeviceCandidate c;
      c.platform_index = p;
      c.device_index = d;
      c.platform = platforms[p];
      c.device = devices[d];
      c.platform_name = pname;
      const std::string pl = lower(pname + " " + pvendor);
      c.is_pocl = pl.find("portable computing language") != std::string::npos ||
                  pl.find("pocl") != std::string::npos;
      try {
        c.name = devices[d].getInfo<CL_DEVICE_NAME>();
        c.is_gpu = (devices[d].getInfo<CL_DEVICE_TYPE>() & CL_DEVICE_TYPE_GPU) != 0;
        c.problem = capability_problem(devices[d]);
      } catch (const cl::Error& e) {
        c.problem = fmt::format("device query failed: {}", cl_error_name(e.err()));
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

namespace {

std::string list_for_message(const std::vector<DeviceCandidate>& all) {
  if (all.empty()) return "no OpenCL device found (no platform/ICD installed?); use 'fallback'";
  std::string s = "available:";
  for (const auto& c : all)
    s += fmt::format(" [{}] '{}' on '{}'{};", c.selector(), c.name, c.platform_name,
                     c.problem.empty() ? "" : " (refused: " + c.problem + ")");
  return s + " or 'fallback'";
}

Selection take(const DeviceCandidate& c, const std::string& spec) {
  if (!c.problem.empty())
    fail(ErrorCode::device_refused, "device selection",
         "{} selects [{}] '{}', which sparq refuses: {}", spec, c.selector(), c.name, c.problem);
  return {false, c.platform, c.device};
}

// The first usable candidate satisfying `pred`; if some match but none is usable, the refusal of
// the first match (so "gpu" on a machine whose only GPU lacks correctly rounded sqrt says why).
template <class Pred>
Selection first_usable(const std::vector<DeviceCandidate>& all, const std::string& spec, Pred pred,
                       const std::string& what) {
  const DeviceCandidate* refused = nullptr;
  for (const auto& c : all) {
    if (!pred(c)) continue;
    if (c.problem.empty()) return take(c, spec);
    if (!refused) refused = &c;
  }
  if (refused) return take(*refused, spec);
  fail(ErrorCode::no_device, "device selection", "{}: no {} found; {}", spec, what,
       list_for_message(all));
}

}  // namespace

std::string DeviceCandidate::selector() const {
  return fmt::format("{}:{}", platform_index, device_index);
}

std::string capability_problem(const cl::Device& device) {
  DeviceCaps caps;
  caps.available = device.getInfo<CL_DEVICE_AVAILABLE>() != 0;
  caps.compiler_available = device.getInfo<CL_DEVICE_COMPILER_AVAILABLE>() != 0;
  caps.opencl_c_version = device.getInfo<CL_DEVICE_OPENCL_C_VERSION>();
  caps.single_fp_config = device.getInfo<CL_DEVICE_SINGLE_FP_CONFIG>();
  caps.local_mem_bytes = device.getInfo<CL_DEVICE_LOCAL_MEM_SIZE>();
  return capability_problem(caps);
}

std::string capability_problem(const DeviceCaps& caps) {
  std::vector<std::string> problems;
  if (!caps.available) problems.push_back("device not available (CL_DEVICE_AVAILABLE = false)");
  if (!caps.compiler_available)
    problems.push_back("no OpenCL C compiler (CL_DEVICE_COMPILER_AVAILABLE = false)");
  static const std::regex version_re(R"(OpenCL C (\d+)\.(\d+))");
  std::smatch m;
  if (!std::regex_search(caps.opencl_c_version, m, version_re)) {
    problems.push_back(
        fmt::format("unrecognized OpenCL C version '{}' (need >= 1.2)", caps.opencl_c_version));
  } else {
    const int major = std::stoi(m[1].str()), minor = std::stoi(m[2].str());
    if (major < 1 || (major == 1 && minor < 2))
      problems.push_back(fmt::format("OpenCL C {}.{} < 1.2 required", major, minor));
  }
  if (!(caps.single_fp_config & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT))
    problems.push_back(
        "no correctly rounded fp32 divide/sqrt (CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT missing "
        "from CL_DEVICE_SINGLE_FP_CONFIG)");
  if (!(caps.single_fp_config & CL_FP_DENORM))
    problems.push_back(
        "fp32 denormals flushed (CL_FP_DENORM missing from CL_DEVICE_SINGLE_FP_CONFIG)");
  if (caps.local_mem_bytes < kMinLocalMemBytes)
    problems.push_back(fmt::format("local memory {} KiB < {} KiB required",
                                   caps.local_mem_bytes / 1024, kMinLocalMemBytes / 1024));
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  return out;
}

Selection select_device(const std::string& requested) {
  std::string spec = trim(requested);
  std::string source = "ContextOptions::device";
  if (spec.empty()) {
    const char* env = std::getenv("SPARQ_DEVICE");
    spec = trim(env ? env : "");
    source = "SPARQ_DEVICE";
  }
  // The fallback never touches OpenCL, so it works where no ICD loader/driver is usable at all.
  if (lower(spec) == "fallback") return {true, {}, {}};
  return select_among(enumerate_devices(), spec, source + "=\"" + spec + "\"");
}

Selection select_among(const std::vector<DeviceCandidate>& all, const std::string& spec,
                       const std::string& shown) {
  const std::string key = lower(trim(spec));
  if (key == "fallback") return {true, {}, {}};
  if (key.empty()) {
    // Default order: first capable GPU, else a capable PoCL device, else the fallback.
    for (const auto& c : all)
      if (c.is_gpu && c.problem.empty()) return {false, c.platform, c.device};
    for (const auto& c : all)
      if (c.is_pocl && c.problem.empty()) return {false, c.platform, c.device};
    return {true, {}, {}};
  }
  if (key == "gpu")
    return first_usable(
        all, shown, [](const DeviceCandidate& c) { return c.is_gpu; }, "OpenCL GPU");
  if (key == "pocl")
    return first_usable(
        all, shown, [](const DeviceCandidate& c) { return c.is_pocl; }, "PoCL device");
  static const std::regex index_re(R"((\d+):(\d+))");
  std::smatch m;
  if (std::regex_match(key, m, index_re)) {
    const unsigned long p = std::stoul(m[1].str()), d = std::stoul(m[2].str());
    for (const auto& c : all)
      if (c.platform_index == p && c.device_index == d) return take(c, shown);
    fail(ErrorCode::no_device, "device selection", "{}: there is no device {}:{}; {}", shown, p, d,
         list_for_message(all));
  }
  return first_usable(
      all, shown,
      [&](const DeviceCandidate& c) { return lower(c.name).find(key) != std::string::npos; },
      fmt::format("device whose name contains '{}'", trim(spec)));
}

std::vector<DeviceReport> list_device_reports() {
  std::vector<DeviceReport> out;
  for (const auto& c : enumerate_devices())
    out.push_back({c.selector(), c.platform_name, c.name, c.is_gpu, c.problem.empty(), c.problem});
  return out;
}

DeviceInfo describe(const cl::Platform& platform, const cl::Device& device) {
  DeviceInfo info;
  info.backend = Backend::opencl;
  info.name = device.getInfo<CL_DEVICE_NAME>();
  info.vendor = device.getInfo<CL_DEVICE_VENDOR>();
  info.platform = platform.getInfo<CL_PLATFORM_NAME>();
  info.driver_version = device.getInfo<CL_DRIVER_VERSION>();
  info.opencl_c_version = device.getInfo<CL_DEVICE_OPENCL_C_VERSION>();
  info.is_gpu = (device.getInfo<CL_DEVICE_TYPE>() & CL_DEVICE_TYPE_GPU) != 0;
  info.global_mem_bytes = device.getInfo<CL_DEVICE_GLOBAL_MEM_SIZE>();
  info.max_alloc_bytes = device.getInfo<CL_DEVICE_MAX_MEM_ALLOC_SIZE>();
  info.local_mem_bytes = device.getInfo<CL_DEVICE_LOCAL_MEM_SIZE>();
  info.compute_units = device.getInfo<CL_DEVICE_MAX_COMPUTE_UNITS>();
  info.max_work_group_size = device.getInfo<CL_DEVICE_MAX_WORK_GROUP_SIZE>();
  return info;
}

}  // namespace sparq::rt
