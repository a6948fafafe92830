// Helpers of the attention tests: typed uploads, widened downloads, seeded inputs, one-line
// case names, and the kernel-vs-fallback bitwise check.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/convert.h"
#include "sparq/sparq.h"
#include "test_support.h"

namespace sparq::test::attn {

// fp32 values rounded (nearest even) into `t` storage and uploaded; returns the tensor and,
// through `rounded`, the values the op actually sees (widened back, for reference checks).
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

// Any float tensor, widened exactly to fp32 (row-major order of its view).
inline std::vector<float> download_f32(const Tensor& t) {
  using namespace sparq::cl_common;
  if (t.dtype() == DType::f32) return t.download<float>();
  const auto bits = t.download<std::uint16_t>();
  std::vector<float> out(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i)
    out[i] = t.dtype() == DType::f16 ? sq_f16_to_f32(bits[i]) : sq_bf16_to_f32(bits[i]);
  return out;
}

// The same host data as one tensor on each of two contexts.
struct Pair {
  Tensor dev, cpu;
};
inline Pair upload_pair(Context& dev, Context& cpu, const std::vector<float>& x, DType t,
                        const std::vector<std::int64_t>& shape) {
  return {upload_as(dev, x, t, shape), upload_as(cpu, x, t, shape)};
}
inline Pair upload_index_pair(Context& dev, Context& cpu, const std::vector<std::int32_t>& x,
                              const std::vector<std::int64_t>& shape) {
  return {dev.upload(x, DType::i32, shape), cpu.upload(x, DType::i32, shape)};
}

// Device result == fallback result, bit for bit (any NaN equals any NaN).
inline void expect_same(const AttentionResult& dev, const AttentionResult& cpu,
                        const std::string& what) {
  ASSERT_EQ(dev.out.shape(), cpu.out.shape()) << what;
  const std::string o = compare_bits(download_f32(dev.out), download_f32(cpu.out));
  EXPECT_EQ(o, "") << what << ": O differs";
  ASSERT_EQ(dev.lse.defined(), cpu.lse.defined()) << what;
  if (dev.lse.defined()) {
    const std::string l = compare_bits(dev.lse.download<float>(), cpu.lse.download<float>());
    EXPECT_EQ(l, "") << what << ": lse differs";
  }
}

inline const char* dt(DType t) {
  return dtype_name(t);
}

}  // namespace sparq::test::attn
