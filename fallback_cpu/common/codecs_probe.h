// C++ mirror of kernels_cl/common/codecs_probe.cl: evaluates one codec (SQ_CODEC_* of
// kernels_cl/common/codecs_probe.h) over arrays of bit patterns with the code the kernel runs.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sparq::fallback {

void codecs_probe(int fn, const std::uint32_t* a, const std::uint32_t* b, std::uint32_t* out,
                  std::size_t n);

}  // namespace sparq::fallback
