// Exactness self-test (see selftest.h).
#include "selftest.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>

#include "device_runtime.h"
#include "errors.h"
#include "runtime/selftest_ops.h"

namespace sparq::rt {

void selftest_inputs(std::vector<float>& a, std::vector<float>& b) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float denorm = std::numeric_limits<float>::denorm_min();
  const std::vector<float> specials = {0.0f,   -0.0f,        1.0f,          -1.0f,  3.0f,
                                       inf,    -inf,         nan,           denorm, -denorm,
                                       1e-38f, 1.17549e-38f, 3.4028235e38f, 0.1f,   7.0f};
  a.clear();
  b.clear();
  for (float x : specials)
    for (float y : specials) {
      a.push_back(x);
      b.push_back(y);
    }
  // Pseudo-random bit patterns (xorshift), all finite, over many exponents: rounding of / and
  // sqrt and the double rounding of a*b+a differ from exact results on a good share of these.
  std::uint32_t s = 0x9E3779B9u;
  auto next = [&s] {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
  };
  for (int i = 0; i < 4096; ++i) {
    const std::uint32_t ua = (next() & 0x807FFFFFu) | ((96u + next() % 64u) << 23);
    const std::uint32_t ub = (next() & 0x807FFFFFu) | ((96u + next() % 64u) << 23);
    a.push_back(std::bit_cast<float>(ua));
    b.push_back(std::bit_cast<float>(ub));
  }
}

std::vector<float> run_selftest_kernel(DeviceRuntime& device, const std::vector<float>& a,
                                       const std::vector<float>& b, const std::string& defines) {
  const std::size_t n = a.size();
  const std::size_t out_n = n * SQ_SELFTEST_OUTPUTS;
  cl::Buffer da = device.allocate(n * sizeof(float), "selftest a");
  cl::Buffer db = device.allocate(n * sizeof(float), "selftest b");
  cl::Buffer dout = device.allocate(out_n * sizeof(float), "selftest out");
  device.write(da, 0, n * sizeof(float), a.data(), "selftest");
  device.write(db, 0, n * sizeof(float), b.data(), "selftest");
  cl::Kernel k = device.kernel(kSelftestSource, kSelftestKernel, defines);
  k.setArg(0, da);
  k.setArg(1, db);
  k.setArg(2, dout);
  k.setArg(3, static_cast<cl_uint>(n));
  constexpr std::size_t kGroup = 64;
  device.launch("selftest", k, cl::NDRange((n + kGroup - 1) / kGroup * kGroup),
                cl::NDRange(kGroup));
  std::vector<float> out(out_n);
  device.read(dout, 0, out_n * sizeof(float), out.data(), "selftest");
  return out;
}

std::vector<float> run_selftest_fallback(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> out(a.size() * SQ_SELFTEST_OUTPUTS);
  fallback::selftest(a.data(), b.data(), out.data(), a.size());
  return out;
}

std::string device_selftest(DeviceRuntime& device) {
  std::vector<float> a, b;
  selftest_inputs(a, b);
  const std::vector<float> got = run_selftest_kernel(device, a, b);
  const std::vector<float> want = run_selftest_fallback(a, b);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = got[i] != got[i] && want[i] != want[i];
    if (both_nan || std::bit_cast<std::uint32_t>(got[i]) == std::bit_cast<std::uint32_t>(want[i]))
      continue;
    const std::size_t e = i / SQ_SELFTEST_OUTPUTS;
    return fmt::format(
        "operation {} of selftest_ops.h on a={:a}, b={:a}: device {:a}, fallback {:a}",
        i % SQ_SELFTEST_OUTPUTS, a[e], b[e], got[i], want[i]);
  }
  return "";
}

std::vector<KernelVariant> runtime_kernel_variants() {
  return {{kSelftestSource, ""}};
}

}  // namespace sparq::rt
