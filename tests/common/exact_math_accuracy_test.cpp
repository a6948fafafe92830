// Accuracy of the shared exact math (kernels_cl/common/exact_math.h), C++ side, against libm
// double references (sincospi: long double), over >= 2^24 inputs per function (exact_math_cases.h).
// The measured maxima are printed ("[exact_math] ...") and recorded in docs/exact_math.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/exact_math_cases.h"
#include "common/ulp_error.h"
#include "fallback_cpu/common/exact_math_probe.h"
#include "fp_env.h"

namespace sparq::test {
namespace {

// Evaluates `probe` on the C++ side (the fallback mirror of the probe kernel).
std::vector<std::uint32_t> eval_cpu(int probe, const std::vector<std::uint32_t>& in,
                                    std::vector<std::uint32_t>* second = nullptr) {
  std::vector<std::uint32_t> out(in.size()), out2(in.size());
  fallback::exact_math_probe(probe, in.data(), out.data(), out2.data(), in.size(), 0, 0);
  if (second) *second = std::move(out2);
  return out;
}

class ExactMathAccuracy : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ExactMathAccuracy, WithinBoundAgainstReference) {
  const MathCase& c = math_cases()[GetParam()];
  const std::vector<std::uint32_t> in = case_inputs(c);
  const std::vector<std::uint32_t> out = eval_cpu(c.probe, in);
  ErrorStats stats;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float x = from_bits(in[i]);
    if (c.exempt(x)) continue;
    stats.add(x, from_bits(out[i]), c.reference(static_cast<double>(x)));
  }
  std::printf("[exact_math] %s\n", stats.summary(c.name).c_str());
  EXPECT_GE(stats.count, kWholeRangeInputs);
  EXPECT_EQ(stats.special_mismatches, 0u)
      << "NaN/inf mismatch, first at x=" << std::hexfloat << stats.first_special_mismatch;
  if (c.probe == SQ_PROBE_EXP2_Q) {
    // The quantization-only variant: relative error < 2^-17 for results >= FLT_MIN; below, the
    // same absolute bound at FLT_MIN: 2^-17 * 2^-126 = 64 units of 2^-149.
    EXPECT_LT(stats.max_rel, 0x1p-17) << "at x=" << std::hexfloat << stats.max_rel_at;
    EXPECT_LT(stats.max_sub, 64.0) << "at x=" << std::hexfloat << stats.max_sub_at;
  } else {
    EXPECT_LE(stats.max_ulp, c.max_ulp) << "at x=" << std::hexfloat << stats.max_ulp_at;
    EXPECT_LE(stats.max_sub, 2.0) << "at x=" << std::hexfloat << stats.max_sub_at;
  }
}

// Opt-in: every k-th of all 2^32 patterns (SPARQ_EXACT_MATH_STRIDE=k, see exact_math_cases.h).
TEST_P(ExactMathAccuracy, StrideScanOfAllFloats) {
  const std::uint64_t stride = scan_stride();
  if (stride == 0) GTEST_SKIP() << "set SPARQ_EXACT_MATH_STRIDE=k to scan every k-th float";
  const MathCase& c = math_cases()[GetParam()];
  std::vector<ErrorStats> part(std::max(1u, std::thread::hardware_concurrency()));
  parallel_scan(stride, [&](std::uint64_t first, std::uint64_t n, std::uint64_t step, unsigned t) {
    rt::ScopedExactFpEnv exact_env;
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto u = static_cast<std::uint32_t>(first + i * step);
      const float x = from_bits(u);
      if (c.exempt(x)) continue;
      cl_common::uint second;
      const float y = from_bits(cl_common::sq_probe_eval(c.probe, u, 0, 0, &second));
      part[t].add(x, y, c.reference(static_cast<double>(x)));
    }
  });
  ErrorStats stats;
  for (const ErrorStats& p : part) stats.merge(p);
  std::printf("[exact_math] stride %llu: %s\n", static_cast<unsigned long long>(stride),
              stats.summary(c.name).c_str());
  EXPECT_EQ(stats.special_mismatches, 0u)
      << "NaN/inf mismatch, first at x=" << std::hexfloat << stats.first_special_mismatch;
  if (c.probe == SQ_PROBE_EXP2_Q) {
    EXPECT_LT(stats.max_rel, 0x1p-17) << "at x=" << std::hexfloat << stats.max_rel_at;
  } else {
    EXPECT_LE(stats.max_ulp, c.max_ulp) << "at x=" << std::hexfloat << stats.max_ulp_at;
    EXPECT_LE(stats.max_sub, 2.0) << "at x=" << std::hexfloat << stats.max_sub_at;
  }
}

INSTANTIATE_TEST_SUITE_P(Functions, ExactMathAccuracy,
                         ::testing::Range<std::size_t>(0, math_cases().size()),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           return std::string(math_cases()[info.param].name);
                         });

// sq_sincospi over every angle the noise generator can pass it (2^21 + 1, exhaustive).
TEST(ExactMathAccuracySincospi, ExhaustiveOverItsAngles) {
  const std::vector<std::uint32_t> in = sincospi_angles();
  std::vector<std::uint32_t> cos_bits;
  const std::vector<std::uint32_t> sin_bits = eval_cpu(SQ_PROBE_SINCOSPI, in, &cos_bits);
  const long double pi = 3.141592653589793238462643383279502884L;
  ErrorStats s, c;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float x = from_bits(in[i]);
    s.add(x, from_bits(sin_bits[i]), sinl(pi * x));
    c.add(x, from_bits(cos_bits[i]), cosl(pi * x));
  }
  std::printf("[exact_math] %s\n[exact_math] %s\n", s.summary("sinpi").c_str(),
              c.summary("cospi").c_str());
  EXPECT_EQ(s.count, (std::size_t{1} << 21) + 1);
  EXPECT_EQ(s.special_mismatches + c.special_mismatches, 0u);
  EXPECT_LE(s.max_ulp, 2.0) << "sin at x=" << std::hexfloat << s.max_ulp_at;
  EXPECT_LE(c.max_ulp, 2.0) << "cos at x=" << std::hexfloat << c.max_ulp_at;
  EXPECT_EQ(s.max_sub, 0.0);  // sin(pi x) of a nonzero angle >= 2^-23 is far above FLT_MIN
}

}  // namespace
}  // namespace sparq::test
