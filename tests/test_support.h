// Shared helpers for the test suite: which device the exactness tests run on, bitwise
// comparison with sparq's NaN rule, seeded random data.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/convert.h"
#include "sparq/sparq.h"

namespace sparq::test {

// The OpenCL device the exactness tests compare against the fallback: $SPARQ_TEST_DEVICE
// (e.g. "gpu" on the GPU machine), default "pocl".
inline std::string test_device_selector() {
  const char* s = std::getenv("SPARQ_TEST_DEVICE");
  return (s && *s) ? s : "pocl";
}
inline Context device_context() {
  return Context::create({.device = test_device_selector()});
}
inline Context fallback_context() {
  return Context::create({.device = "fallback"});
}

// Bitwise equality where any NaN equals any NaN (ARCHITECTURE §2); signed zeros must match.
inline bool same_bits(float a, float b) {
  if (a != a && b != b) return true;
  std::uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  return ua == ub;
}

// Returns "" when equal, else a message naming the first mismatching index and values.
inline std::string compare_bits(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size())
    return "size " + std::to_string(got.size()) + " != " + std::to_string(want.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!same_bits(got[i], want[i]) && bad++ == 0) first = i;
  if (!bad) return "";
  char buf[200];
  std::snprintf(buf, sizeof buf, "%zu of %zu differ; first at %zu: %.9g vs %.9g", bad, got.size(),
                first, static_cast<double>(got[first]), static_cast<double>(want[first]));
  return buf;
}

inline std::vector<float> random_normal(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// fp32 values rounded (nearest even) into `t` storage (f32/f16/bf16) and uploaded; `rounded`, if
// given, receives the values the op actually sees (widened back), for reference checks.
inline Tensor upload_as(Context& ctx, const std::vector<float>& x, DType t,
                        std::vector<std::int64_t> shape, std::vector<float>* rounded = nullptr) {
  using namespace sparq::cl_common;
  if (t == DType::f32) {
    if (rounded) *rounded = x;
    return ctx.upload(x, DType::f32, std::move(shape));
  }
  std::vector<std::uint16_t> bits(x.size());
  if (rounded) rounded->resize(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    bits[i] = t == DType::f16 ? sq_f32_to_f16_rne(x[i]) : sq_f32_to_bf16_rne(x[i]);
    if (rounded) (*rounded)[i] = t == DType::f16 ? sq_f16_to_f32(bits[i]) : sq_bf16_to_f32(bits[i]);
  }
  return ctx.upload(bits, t, std::move(shape));
}

// Any f32/f16/bf16 tensor, widened exactly to fp32 (row-major order of its view).
inline std::vector<float> download_f32(const Tensor& t) {
  using namespace sparq::cl_common;
  if (t.dtype() == DType::f32) return t.download<float>();
  const auto bits = t.download<std::uint16_t>();
  std::vector<float> out(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i)
    out[i] = t.dtype() == DType::f16 ? sq_f16_to_f32(bits[i]) : sq_bf16_to_f32(bits[i]);
  return out;
}

// f throws a sparq::Error of `code` whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& f, ErrorCode code,
                         const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no sparq::Error; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "'" << p << "' not in: " << e.what();
  }
}

}  // namespace sparq::test
