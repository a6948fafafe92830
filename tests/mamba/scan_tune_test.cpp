// The selective scan's schedule knobs (SPARQ_TUNE_SCAN, mamba_kernels.h): every schedule gives the
// fallback's bits. Two settings cover every macro path of kernels_cl/mamba/scan_sched.h on tiny
// shapes (four programs in all: the N <= 16 program twice, the general one and the quantized one
// once); sq_scan_exp (knob exp=1) equals sq_exp on a sampled sweep of all floats (the full 2^32
// sweep is in docs/mamba.md).
#include <gtest/gtest.h>

#include <cstring>

#include "mamba/mamba_test_util.h"
#include "mamba/scan_math.h"
#include "runtime/runtime_test_util.h"

namespace sparq::test::mamba_t {
namespace {

// S1: fast exp, compile-time states per lane, full tiles unrolled in float4 steps of 8-step tiles,
// 64-lane work-groups (4 channels of 16 lanes; N = 80 gives 2 states per lane). S2: scalar steps,
// whole 32-step tiles unrolled, 8 channels at most, B/C read from global memory.
const char* const kS1 = "exp=1,per=1,unroll=4,vec=1,wg=64,tile=8";
const char* const kS2 = "per=1,unroll=16,tile=32,dbmax=8,stage=0";

std::vector<ScanCase> small_cases() {
  return {// partial tiles, a work-group over two B/C groups (unstaged) and one inside a group
          {.batch = 2,
           .D = 6,
           .L = 37,
           .N = 16,
           .G = 2,
           .has_D = true,
           .has_z = true,
           .has_bias = true,
           .softplus = true,
           .has_h0 = true},
          // varlen: empty sequences and restarts inside tiles (staged B/C)
          {.batch = 1,
           .D = 5,
           .L = 40,
           .N = 12,
           .has_D = true,
           .has_z = true,
           .softplus = true,
           .has_h0 = true,
           .cu = {0, 0, 5, 21, 21, 40}}};
}

void expect_matches_fallback(const char* knob, const std::vector<ScanCase>& cases,
                             std::uint64_t seed) {
  auto dev = device_context();
  auto cpu = fallback_context();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label() + " SPARQ_TUNE_SCAN=" + knob);
    const auto in = make_input(c, seed++);
    const auto f = run_scan(cpu, upload_args(cpu, c, in));
    const ScopedEnv tune("SPARQ_TUNE_SCAN", knob);
    const auto d = run_scan(dev, upload_args(dev, c, in));
    EXPECT_EQ(compare_bits(d.out, f.out), "") << "out";
    EXPECT_EQ(compare_bits(d.last, f.last), "") << "last_state";
  }
}

TEST(MambaScanTune, KnobSettingsMatchFallback) {
  expect_matches_fallback(kS1, small_cases(), 5100);
  // The general program (N > 16): constant C (unstaged float4 output phase), G = 4.
  expect_matches_fallback(kS1,
                          {{.batch = 2,
                            .D = 8,
                            .L = 19,
                            .N = 80,
                            .G = 4,
                            .C_var = false,
                            .has_D = true,
                            .has_z = true,
                            .has_h0 = true}},
                          5110);
  expect_matches_fallback(kS2, small_cases(), 5120);
}

TEST(MambaScanTune, BadKnobIsAnError) {
  auto dev = device_context();
  if (dev.backend() == Backend::fallback)
    GTEST_SKIP()
        << "the knobs are read by the OpenCL launch; the test context has no OpenCL device";
  const ScanCase c;
  const auto in = make_input(c, 5130);
  const auto args = upload_args(dev, c, in);
  for (const char* knob : {"tile=12", "unroll=3", "exp", "fast=1"}) {
    const ScopedEnv tune("SPARQ_TUNE_SCAN", knob);
    EXPECT_THROW(selective_scan(dev, args), Error) << knob;
  }
}

TEST(MambaScanTune, FastExpEqualsSqExpSampled) {
  using namespace sparq::cl_common;
  std::uint64_t bad = 0;
  auto check = [&](std::uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    const float a = sq_exp(x), b = sq_scan_exp(x);
    std::uint32_t ua, ub;
    std::memcpy(&ua, &a, 4);
    std::memcpy(&ub, &b, 4);
    if (ua != ub && bad++ < 5)
      ADD_FAILURE() << std::hex << "x bits " << u << ": " << ua << " vs " << ub;
  };
  for (std::uint64_t u = 0; u < (1ull << 32); u += 4099) check(static_cast<std::uint32_t>(u));
  // Dense where results turn subnormal or overflow, and around the range ends.
  for (std::uint32_t u = 0xC2AE0000u; u <= 0xC2D00010u; u += 3) check(u);  // -87 .. -104
  for (std::uint32_t u = 0x42B00000u; u <= 0x42C80010u; u += 7) check(u);  // 88 .. 100
  for (std::uint32_t u : {0x7F800000u, 0xFF800000u, 0x7FC00001u, 0xFFC12345u, 0x80000000u, 0u})
    check(u);
  EXPECT_EQ(bad, 0u);
}

}  // namespace
}  // namespace sparq::test::mamba_t
