// Device ≡ C++, bitwise: the probe kernel (kernels_cl/common/exact_math_probe.cl) on the test
// device (PoCL by default; SPARQ_TEST_DEVICE=gpu on the GPU machine) against its C++ mirror
// (fallback_cpu/common/exact_math_probe.cpp), for every shared function, over the same >= 2^24
// inputs as the accuracy tests plus the special values. Any NaN equals any NaN; signed zeros
// and everything else must match bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/exact_math_cases.h"
#include "common/philox.h"
#include "context_impl.h"
#include "device_runtime.h"
#include "fallback_cpu/common/exact_math_probe.h"
#include "test_support.h"

namespace sparq::test {
namespace {

struct ProbeCase {
  const char* name;
  int probe;
  std::vector<std::uint32_t> (*inputs)();
  int lo = 0, hi = 0;  // SQ_PROBE_TO_INT_SAT_RNE bounds
  bool float_outputs = true;
};

std::vector<std::uint32_t> whole_range_inputs() {
  std::vector<std::uint32_t> in;
  append_whole_range(in);
  append_specials(in, {0.5f, 1.5f, 2.5f, 0x1p23f, 0x1.fffffep22f, 127.5f, 128.5f});
  return in;
}
std::vector<std::uint32_t> int_range_inputs() {  // sq_round_rne_int needs |x| < 2^31
  std::vector<std::uint32_t> in;
  for (std::uint32_t u : whole_range_inputs())
    if (std::fabs(from_bits(u)) < 0x1p31f) in.push_back(u);
  append_domain(in, -0x1p31f, 0x1p31f);
  std::erase_if(in, [](std::uint32_t u) { return !(std::fabs(from_bits(u)) < 0x1p31f); });
  return in;
}
std::vector<std::uint32_t> all_radius_inputs() {
  std::vector<std::uint32_t> in(std::size_t{1} << 23);
  for (std::uint32_t m = 0; m < (1u << 23); ++m) in[m] = m;
  return in;
}
std::vector<std::uint32_t> all_16bit_codes() {
  std::vector<std::uint32_t> in(65536);
  for (std::uint32_t h = 0; h < 65536; ++h) in[h] = h;
  return in;
}
std::vector<std::uint32_t> narrowing_inputs() {
  std::vector<std::uint32_t> in = whole_range_inputs();
  append_domain(in, -70000.0f, 70000.0f);
  return in;
}
std::vector<std::uint32_t> sincospi_inputs() {
  std::vector<std::uint32_t> in = whole_range_inputs();
  for (std::uint32_t u : sincospi_angles()) in.push_back(u);
  return in;
}
// The accuracy test's inputs of the function probed by P.
template <int P>
std::vector<std::uint32_t> math_case_inputs() {
  for (const MathCase& c : math_cases())
    if (c.probe == P) return case_inputs(c);
  return {};
}

const std::vector<ProbeCase>& probe_cases() {
  static const std::vector<ProbeCase> cases = {
      {"round_rne", SQ_PROBE_ROUND_RNE, whole_range_inputs},
      {"round_rne_int", SQ_PROBE_ROUND_RNE_INT, int_range_inputs, 0, 0, false},
      {"to_int_sat_rne_i8", SQ_PROBE_TO_INT_SAT_RNE, whole_range_inputs, -128, 127, false},
      {"to_int_sat_rne_u8", SQ_PROBE_TO_INT_SAT_RNE, whole_range_inputs, 0, 255, false},
      {"exp2", SQ_PROBE_EXP2, math_case_inputs<SQ_PROBE_EXP2>},
      {"exp2_q", SQ_PROBE_EXP2_Q, math_case_inputs<SQ_PROBE_EXP2_Q>},
      {"exp", SQ_PROBE_EXP, math_case_inputs<SQ_PROBE_EXP>},
      {"log1p", SQ_PROBE_LOG1P, math_case_inputs<SQ_PROBE_LOG1P>},
      {"log", SQ_PROBE_LOG, math_case_inputs<SQ_PROBE_LOG>},
      {"log2", SQ_PROBE_LOG2, math_case_inputs<SQ_PROBE_LOG2>},
      {"softplus", SQ_PROBE_SOFTPLUS, math_case_inputs<SQ_PROBE_SOFTPLUS>},
      {"silu", SQ_PROBE_SILU, math_case_inputs<SQ_PROBE_SILU>},
      {"sigmoid", SQ_PROBE_SIGMOID, math_case_inputs<SQ_PROBE_SIGMOID>},
      {"sincospi", SQ_PROBE_SINCOSPI, sincospi_inputs},
      {"f16_to_f32", SQ_PROBE_F16_TO_F32, all_16bit_codes},
      {"bf16_to_f32", SQ_PROBE_BF16_TO_F32, all_16bit_codes},
      {"f32_to_f16", SQ_PROBE_F32_TO_F16, narrowing_inputs, 0, 0, false},
      {"f32_to_bf16", SQ_PROBE_F32_TO_BF16, narrowing_inputs, 0, 0, false},
      // Box-Muller's radius path (diffusion spec §9 test 2): every one of the 2^23 inputs.
      {"bm_radius", SQ_PROBE_BM_RADIUS, all_radius_inputs},
  };
  return cases;
}

// Runs the probe kernel over `in` in chunks (bounded device memory), returns both outputs.
void run_on_device(rt::DeviceRuntime& dev, const ProbeCase& c, const std::vector<std::uint32_t>& in,
                   std::vector<std::uint32_t>& out, std::vector<std::uint32_t>& out2) {
  constexpr std::size_t kChunk = std::size_t{1} << 22, kGroup = 64;
  const std::size_t bytes = std::min(kChunk, in.size()) * sizeof(std::uint32_t);
  cl::Buffer d_in = dev.allocate(bytes, "probe in");
  cl::Buffer d_out = dev.allocate(bytes, "probe out");
  cl::Buffer d_out2 = dev.allocate(bytes, "probe out2");
  cl::Kernel k = dev.kernel("common/exact_math_probe.cl", "sq_exact_math_probe", "");
  out.resize(in.size());
  out2.resize(in.size());
  for (std::size_t base = 0; base < in.size(); base += kChunk) {
    const std::size_t n = std::min(kChunk, in.size() - base);
    dev.write(d_in, 0, n * sizeof(std::uint32_t), in.data() + base, "probe in");
    k.setArg(0, d_in);
    k.setArg(1, d_out);
    k.setArg(2, d_out2);
    k.setArg(3, static_cast<cl_int>(c.probe));
    k.setArg(4, static_cast<cl_int>(c.lo));
    k.setArg(5, static_cast<cl_int>(c.hi));
    k.setArg(6, static_cast<cl_uint>(n));
    dev.launch("exact_math_probe", k, cl::NDRange((n + kGroup - 1) / kGroup * kGroup),
               cl::NDRange(kGroup));
    dev.read(d_out, 0, n * sizeof(std::uint32_t), out.data() + base, "probe out");
    dev.read(d_out2, 0, n * sizeof(std::uint32_t), out2.data() + base, "probe out2");
  }
}

// Index of the first mismatch (same_bits for float outputs, plain equality for codes), or npos.
std::size_t first_mismatch(const std::vector<std::uint32_t>& got,
                           const std::vector<std::uint32_t>& want, bool floats,
                           std::size_t* count) {
  std::size_t first = std::string::npos;
  *count = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool same = floats ? same_bits(from_bits(got[i]), from_bits(want[i])) : got[i] == want[i];
    if (!same && (*count)++ == 0) first = i;
  }
  return first;
}

class ExactMathDevice : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ExactMathDevice, BitwiseEqualToCpp) {
  const ProbeCase& c = probe_cases()[GetParam()];
  Context ctx = device_context();
  if (ctx.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  const std::vector<std::uint32_t> in = c.inputs();
  std::vector<std::uint32_t> got, got2, want(in.size()), want2(in.size());
  {
    std::lock_guard<std::recursive_mutex> lock(ctx.impl()->mutex);
    run_on_device(*ctx.impl()->device, c, in, got, got2);
  }
  fallback::exact_math_probe(c.probe, in.data(), want.data(), want2.data(), in.size(), c.lo, c.hi);
  std::size_t bad = 0, bad2 = 0;
  const std::size_t i = first_mismatch(got, want, c.float_outputs, &bad);
  const std::size_t i2 = first_mismatch(got2, want2, c.float_outputs, &bad2);
  std::printf("[exact_math] device %s: %zu inputs on %s, %zu + %zu mismatches\n", c.name, in.size(),
              ctx.device().name.c_str(), bad, bad2);
  EXPECT_EQ(bad, 0u) << c.name << " input 0x" << std::hex << (bad ? in[i] : 0u) << ": device 0x"
                     << (bad ? got[i] : 0u) << ", C++ 0x" << (bad ? want[i] : 0u);
  EXPECT_EQ(bad2, 0u) << c.name << " second output, input 0x" << std::hex << (bad2 ? in[i2] : 0u)
                      << ": device 0x" << (bad2 ? got2[i2] : 0u) << ", C++ 0x"
                      << (bad2 ? want2[i2] : 0u);
  EXPECT_GE(in.size(), c.probe >= SQ_PROBE_F16_TO_F32 && c.probe <= SQ_PROBE_BF16_TO_F32
                           ? std::size_t{65536}
                       : c.probe == SQ_PROBE_BM_RADIUS ? std::size_t{1} << 23
                                                       : kWholeRangeInputs);
}

// The C++ mirror over `in`, split over all hardware threads.
void run_mirror_parallel(const ProbeCase& c, const std::vector<std::uint32_t>& in,
                         std::vector<std::uint32_t>& out, std::vector<std::uint32_t>& out2) {
  out.resize(in.size());
  out2.resize(in.size());
  const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t per = (in.size() + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (std::size_t b = 0; b < in.size(); b += per)
    pool.emplace_back([&, b] {
      const std::size_t n = std::min(per, in.size() - b);
      fallback::exact_math_probe(c.probe, in.data() + b, out.data() + b, out2.data() + b, n, c.lo,
                                 c.hi);
    });
  for (auto& t : pool) t.join();
}

// Opt-in: every k-th of all 2^32 patterns (SPARQ_EXACT_MATH_STRIDE=k, see exact_math_cases.h).
TEST_P(ExactMathDevice, StrideScanOfAllPatterns) {
  const std::uint64_t stride = scan_stride();
  if (stride == 0) GTEST_SKIP() << "set SPARQ_EXACT_MATH_STRIDE=k to scan every k-th pattern";
  const ProbeCase& c = probe_cases()[GetParam()];
  if (c.probe == SQ_PROBE_F16_TO_F32 || c.probe == SQ_PROBE_BF16_TO_F32)
    GTEST_SKIP() << "16-bit inputs: the default test already covers all 65536 codes";
  if (c.probe == SQ_PROBE_BM_RADIUS)
    GTEST_SKIP() << "23-bit inputs: the default test already covers all 2^23 of them";
  Context ctx = device_context();
  if (ctx.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  constexpr std::uint64_t kBlock = std::uint64_t{1} << 24;
  const std::uint64_t total = ((std::uint64_t{1} << 32) + stride - 1) / stride;
  std::uint64_t bad = 0, scanned = 0;
  std::vector<std::uint32_t> in, got, got2, want, want2;
  for (std::uint64_t b = 0; b < total; b += kBlock) {
    in.clear();
    for (std::uint64_t i = b; i < std::min(total, b + kBlock); ++i) {
      const auto u = static_cast<std::uint32_t>(i * stride);
      if (c.probe != SQ_PROBE_ROUND_RNE_INT || std::fabs(from_bits(u)) < 0x1p31f) in.push_back(u);
    }
    {
      std::lock_guard<std::recursive_mutex> lock(ctx.impl()->mutex);
      run_on_device(*ctx.impl()->device, c, in, got, got2);
    }
    run_mirror_parallel(c, in, want, want2);
    std::size_t n1 = 0, n2 = 0;
    const std::size_t i1 = first_mismatch(got, want, c.float_outputs, &n1);
    first_mismatch(got2, want2, c.float_outputs, &n2);
    if (n1 && !bad)
      ADD_FAILURE() << c.name << " input 0x" << std::hex << in[i1] << ": device 0x" << got[i1]
                    << ", C++ 0x" << want[i1];
    bad += n1 + n2;
    scanned += in.size();
  }
  std::printf("[exact_math] device stride %llu %s: %llu inputs on %s, %llu mismatches\n",
              static_cast<unsigned long long>(stride), c.name,
              static_cast<unsigned long long>(scanned), ctx.device().name.c_str(),
              static_cast<unsigned long long>(bad));
  EXPECT_EQ(bad, 0u);
}

// Box-Muller's radius (common/philox.h sq_bm_radius) over all 2^23 inputs against float64
// sqrt(-2 log u): the C++ side, whose bits the device test above shows the kernels share.
TEST(ExactMathBoxMuller, RadiusAccuracyAllInputs) {
  double max_ulp = 0;
  std::uint32_t worst = 0;
  for (std::uint32_t m = 0; m < (1u << 23); ++m) {
    const float got = cl_common::sq_bm_radius(m);
    const double u = (2.0 * m + 1.0) * 0x1p-24;
    const double want = std::sqrt(-2.0 * std::log(u));
    int e = 0;
    std::frexp(want, &e);
    const double ulp = std::ldexp(1.0, e - 24);  // float ulp at want
    const double err = std::fabs(static_cast<double>(got) - want) / ulp;
    if (err > max_ulp) max_ulp = err, worst = m;
  }
  std::printf("[exact_math] bm_radius: max error %.3f ulp over 2^23 inputs (at m = %u)\n", max_ulp,
              worst);
  EXPECT_LT(max_ulp, 2.0);
}

INSTANTIATE_TEST_SUITE_P(Functions, ExactMathDevice,
                         ::testing::Range<std::size_t>(0, probe_cases().size()),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           return std::string(probe_cases()[info.param].name);
                         });

}  // namespace
}  // namespace sparq::test
