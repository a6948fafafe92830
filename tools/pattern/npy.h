// Minimal .npy reader for sparq-pattern: little-endian float32 / float16 arrays in C order (the
// files numpy.save and torch's .numpy() dumps produce). Anything else is a clear error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sparq::pattern {

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // widened to float32, C order
};

// Throws std::runtime_error naming the file and what is wrong (magic, version, header, dtype,
// fortran order, size).
NpyArray read_npy(const std::string& path);
// Parses an in-memory .npy image (what read_npy does after reading the file; fuzz/test friendly).
NpyArray parse_npy(const std::string& bytes, const std::string& what = "npy");

}  // namespace sparq::pattern
