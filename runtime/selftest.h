// Exactness self-test: runs kernels_cl/runtime/selftest.cl on a device and its fallback mirror on
// the CPU over values chosen to expose broken divide/sqrt rounding, contraction, FTZ/DAZ and NaN
// handling, and compares bits. sparq-info prints the verdict; tests use it as a real kernel.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::rt {

class DeviceRuntime;

inline constexpr const char* kSelftestSource = "runtime/selftest.cl";
inline constexpr const char* kSelftestKernel = "sparq_selftest";

// Deterministic inputs (specials, denormals, powers of two, pseudo-random values).
void selftest_inputs(std::vector<float>& a, std::vector<float>& b);

// Runs the kernel on `device` (program built with `defines`, which tests use to force distinct
// cache entries); returns its raw outputs (SQ_SELFTEST_OUTPUTS per input). The caller holds the
// owning Context's lock, as every op does.
std::vector<float> run_selftest_kernel(DeviceRuntime& device, const std::vector<float>& a,
                                       const std::vector<float>& b,
                                       const std::string& defines = "");

// The fallback's outputs for the same inputs.
std::vector<float> run_selftest_fallback(const std::vector<float>& a, const std::vector<float>& b);

// "" when the device's outputs equal the fallback's bitwise; else the first mismatch.
std::string device_selftest(DeviceRuntime& device);

// The runtime's own program variants (for warm-up and the build-every-variant test).
std::vector<KernelVariant> runtime_kernel_variants();

}  // namespace sparq::rt

namespace sparq::fallback {
void selftest(const float* a, const float* b, float* out, std::size_t n);
}  // namespace sparq::fallback
