// Helpers shared by the case files: bitwise comparison, deterministic inputs, dtype uploads.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <random>
#include <thread>

#include "cases/case.h"

namespace sparq::bench {

bool same_bits(float a, float b) {
  if (a != a && b != b) return true;
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

void BitComparer::compare(const std::vector<float>& got, const std::vector<float>& want,
                          const std::string& where) {
  if (got.size() != want.size()) {
    if (mismatches_++ == 0)
      first_ = fmt::format("{}: {} values from the device, {} from the fallback", where, got.size(),
                           want.size());
    return;
  }
  compare(got.data(), want.data(), got.size(), where);
}

void BitComparer::compare(const float* got, const float* want, std::size_t n,
                          const std::string& where) {
  for (std::size_t i = 0; i < n; ++i) {
    if (same_bits(got[i], want[i])) continue;
    if (mismatches_++ == 0)
      first_ = fmt::format(
          "{}: first mismatch at element {}: device {:.9g} (0x{:08x}), fallback "
          "{:.9g} (0x{:08x})",
          where, i, got[i], std::bit_cast<std::uint32_t>(got[i]), want[i],
          std::bit_cast<std::uint32_t>(want[i]));
  }
  compared_ += n;
}

Validation BitComparer::result(std::string scope) const {
  Validation v;
  v.exact = mismatches_ == 0 && compared_ > 0;
  v.scope = std::move(scope);
  v.values_compared = compared_;
  if (mismatches_)
    v.detail = fmt::format("{} of {} values differ; {}", mismatches_, compared_, first_);
  else if (!compared_)
    v.detail = "nothing was compared";
  return v;
}

std::vector<float> random_normal(std::size_t n, std::uint64_t seed, float scale) {
  // Irwin-Hall with 4 uniforms of 24 bits: mean 2, variance 1/3; every step is exact or one
  // correctly rounded fp32 operation, so the result does not depend on the C++ library.
  constexpr float kUnit = 1.0f / 16777216.0f;
  constexpr float kSqrt3 = 1.7320508f;
  constexpr std::size_t kChunk = std::size_t{1} << 22;
  std::vector<float> v(n);
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  auto fill = [&](std::size_t c) {
    // Chunk 0 is std::mt19937_64(seed) itself, so inputs of up to 4 Mi values (every small case)
    // keep the bits they always had; chunk c > 0 has its own generator, seeded by splitmix64.
    std::uint64_t z = seed + c * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    std::mt19937_64 rng(c == 0 ? seed : z ^ (z >> 31));
    const std::size_t end = std::min(n, (c + 1) * kChunk);
    for (std::size_t i = c * kChunk; i < end; ++i) {
      float sum = 0.0f;
      for (int k = 0; k < 4; ++k) sum += static_cast<float>(rng() >> 40) * kUnit;
      v[i] = (sum - 2.0f) * kSqrt3 * scale;
    }
  };
  // Large inputs (a 128K-token prefill draws 1.6 G values, about 20 s on one core) are drawn by
  // up to 16 threads; the values depend on seed and n only, never on the thread count.
  const std::size_t threads =
      std::min<std::size_t>(chunks, std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
  if (threads <= 1) {
    for (std::size_t c = 0; c < chunks; ++c) fill(c);
    return v;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (std::size_t c = next++; c < chunks; c = next++) fill(c);
    });
  for (auto& th : pool) th.join();
  return v;
}

std::string head_label(std::int64_t q_heads, std::int64_t kv_heads) {
  return q_heads == kv_heads ? fmt::format("H{}", q_heads)
                             : fmt::format("Hq{}/Hkv{}", q_heads, kv_heads);
}

namespace {
std::uint16_t bf16_bits_rne(float f) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}
}  // namespace

Tensor upload_as(Context& ctx, const std::vector<float>& values, DType dtype,
                 std::vector<std::int64_t> shape) {
  switch (dtype) {
    case DType::f32:
      return ctx.upload(values, DType::f32, std::move(shape));
    case DType::bf16: {
      std::vector<std::uint16_t> bits(values.size());
      for (std::size_t i = 0; i < values.size(); ++i) bits[i] = bf16_bits_rne(values[i]);
      return ctx.upload(bits, DType::bf16, std::move(shape));
    }
    default:
      throw Error(
          ErrorCode::unsupported,
          fmt::format("sparq-bench: inputs of dtype {} are not generated", dtype_name(dtype)));
  }
}

}  // namespace sparq::bench
