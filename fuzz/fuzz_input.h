// A byte-stream reader for fuzz targets (as LLVM's FuzzedDataProvider, which GCC lacks): every
// read is defined for any input; past the end it returns zeros.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

namespace sparq::fuzz {

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t remaining() const { return size_ - pos_; }

  template <class T>
  T raw() {  // the next sizeof(T) bytes (zero-padded at the end)
    T v{};
    const std::size_t n = remaining() < sizeof(T) ? remaining() : sizeof(T);
    if (n) std::memcpy(&v, data_ + pos_, n);
    pos_ += n;
    return v;
  }
  bool boolean() { return raw<std::uint8_t>() & 1; }
  // An integer in [lo, hi].
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    const std::uint64_t r = raw<std::uint32_t>();
    return span == 0 ? lo + static_cast<std::int64_t>(r) : lo + static_cast<std::int64_t>(r % span);
  }
  // Mostly small, sometimes hostile: 0, negatives, huge values, INT32/INT64 edges.
  std::int64_t dim(std::int64_t small_max) {
    switch (raw<std::uint8_t>() % 16) {
      case 0:
        return 0;
      case 1:
        return -range(1, 3);
      case 2:
        return std::int64_t{1} << range(31, 62);
      case 3:
        return std::numeric_limits<std::int32_t>::max() + range(-2, 2);
      case 4:
        return std::numeric_limits<std::int64_t>::max() - range(0, 2);
      default:
        return range(1, small_max);
    }
  }
  float any_float() {  // every bit pattern: NaN, inf, denormals, negatives
    switch (raw<std::uint8_t>() % 4) {
      case 0:
        return static_cast<float>(range(-4, 4)) * 0.25f;
      default:
        return raw<float>();
    }
  }
  // The rest of the input (or n bytes) as a byte span.
  std::span<const std::uint8_t> bytes(std::size_t n) {
    if (n > remaining()) n = remaining();
    std::span<const std::uint8_t> s(data_ + pos_, n);
    pos_ += n;
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace sparq::fuzz
