// C++ mirror of kernels_cl/common/exact_math_probe.cl: evaluates one shared exact-math or
// conversion function (SQ_PROBE_* of kernels_cl/common/exact_math_probe.h) over an array of bit
// patterns, with the same code the kernel runs. Used by the tests to compare device and CPU bits.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sparq::fallback {

// out[i] = f(in[i]); out2[i] = the second output (cos for SQ_PROBE_SINCOSPI, else 0).
// lo, hi: the saturation bounds of SQ_PROBE_TO_INT_SAT_RNE (ignored otherwise).
void exact_math_probe(int fn, const std::uint32_t* in, std::uint32_t* out, std::uint32_t* out2,
                      std::size_t n, int lo, int hi);

}  // namespace sparq::fallback
