// ScopedExactFpEnv: clears FTZ/DAZ for fallback arithmetic and restores the caller's mode.
#include "fp_env.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "selftest.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using rt::ScopedExactFpEnv;

// Opaque to the optimizer, so the multiplication happens at run time under the current mode.
float multiply(float a, float b) {
  volatile float va = a, vb = b;
  return va * vb;
}

TEST(RuntimeFpEnv, ClearsFlushModesAndRestoresThem) {
  if (ScopedExactFpEnv::kFlushBits == 0) GTEST_SKIP() << "no FTZ/DAZ control on this target";
  const float tiny = std::numeric_limits<float>::denorm_min() * 1000.0f;  // a denormal
  const std::uint64_t original = ScopedExactFpEnv::current();
  ScopedExactFpEnv::set(original | ScopedExactFpEnv::kFlushBits);
  const float flushed = multiply(tiny, 1.5f);
  {
    ScopedExactFpEnv exact;
    EXPECT_EQ(ScopedExactFpEnv::current() & ScopedExactFpEnv::kFlushBits, 0u);
    EXPECT_NE(multiply(tiny, 1.5f), 0.0f);
    {
      ScopedExactFpEnv nested;  // nesting is harmless
      EXPECT_EQ(multiply(tiny, 1.5f), tiny * 1.5f);
    }
    EXPECT_EQ(ScopedExactFpEnv::current() & ScopedExactFpEnv::kFlushBits, 0u);
  }
  EXPECT_EQ(ScopedExactFpEnv::current(), original | ScopedExactFpEnv::kFlushBits);
  ScopedExactFpEnv::set(original);
  EXPECT_EQ(flushed, 0.0f);  // the host mode really was flushing: the guard had work to do
}

TEST(RuntimeFpEnv, FallbackIsExactEvenWhenTheCallerFlushesDenormals) {
  std::vector<float> a, b;
  rt::selftest_inputs(a, b);
  const auto want = rt::run_selftest_fallback(a, b);
  const std::uint64_t original = ScopedExactFpEnv::current();
  ScopedExactFpEnv::set(original | ScopedExactFpEnv::kFlushBits);
  const auto got = rt::run_selftest_fallback(a, b);
  ScopedExactFpEnv::set(original);
  EXPECT_EQ(compare_bits(got, want), "");
}

}  // namespace
}  // namespace sparq::test
