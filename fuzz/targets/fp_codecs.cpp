// Fuzz target: the FP4 E2M1 / FP8 E4M3 codecs of kernels_cl/common/codecs.h (specs/fp4_attention.md
// §1-§2), fed arbitrary fp32 bit patterns (NaN payloads, Inf, subnormals, signed zeros) and
// arbitrary codes. Each encoder must give the nearest representable value (ties to the even
// code, saturating, sign kept) as a brute-force search over the codes finds it in double, the
// quotient encoders must equal encoding the exact real quotient, and decode/encode, pack/unpack
// must round-trip. Any mismatch aborts (the fuzzer's crash).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/codecs.h"
#include "fuzz_input.h"

namespace {

using namespace sparq::cl_common;

float bits_to_float(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
std::uint32_t float_bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

void require(bool ok) {
  if (!ok) std::abort();
}

// Magnitude code (0..max_code) nearest to a >= 0 among values(c); ties to the even code. Values
// past the largest (Inf included) saturate to it: clamp first, as double differences of huge
// values would tie.
template <class Values>
std::uint32_t nearest(double a, std::uint32_t max_code, Values values) {
  a = std::fmin(a, values(max_code));
  std::uint32_t best = 0;
  for (std::uint32_t c = 1; c <= max_code; ++c) {
    const double db = std::fabs(a - values(best)), dc = std::fabs(a - values(c));
    if (dc < db || (dc == db && (c & 1u) == 0)) best = c;
  }
  return best;
}
double e2m1_mag(std::uint32_t c) {
  constexpr double v[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  return v[c];
}
double e4m3_mag(std::uint32_t c) {  // finite magnitude codes 0..0x7E
  const int e = static_cast<int>(c >> 3), m = static_cast<int>(c & 7u);
  return e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
}

void check_e4m3(float x) {
  const std::uint32_t code = sq_e4m3_rne(x), sign = (float_bits(x) >> 24) & 0x80u;
  require(code <= 0xFFu && (code & 0x80u) == sign);
  if (std::isnan(x)) {
    require((code & 0x7Fu) == 0x7Fu && std::isnan(sq_e4m3_decode(code)));
    return;
  }
  require((code & 0x7Fu) == nearest(std::fabs(static_cast<double>(x)), 0x7E, e4m3_mag));
  const float back = sq_e4m3_decode(code);  // decode, re-encode: the same code
  require(sq_e4m3_rne(back) == code && std::signbit(back) == (sign != 0));
}

void check_e2m1(float y) {
  if (std::isnan(y)) return;  // NaN must not reach it (the callers' contract)
  const std::uint32_t code = sq_e2m1_rne(y);
  require(code <= 15u && ((code & 8u) != 0) == std::signbit(y));
  require((code & 7u) == nearest(std::fabs(static_cast<double>(y)), 7, e2m1_mag));
  require(sq_e2m1_rne(sq_e2m1_decode(code)) == code);
  require(static_cast<double>(sq_e2m1_twice(code)) == 2.0 * sq_e2m1_decode(code));
}

// x / s with s a decoded positive E4M3 scale: the double quotient decides every threshold (see
// the header: a real quotient on a midpoint is exact in double, and one off it is far from it).
void check_quotient(float x, std::uint32_t scale_code) {
  const float s = sq_e4m3_decode(scale_code);
  if (std::isnan(x) || !(s > 0.0f)) return;
  const double q = static_cast<double>(x) / s;
  const std::uint32_t code = sq_e2m1_rne_q(x, s);
  require(((code & 8u) != 0) == std::signbit(x));
  require((code & 7u) == nearest(std::fabs(q), 7, e2m1_mag));
  require(sq_fp4_element_code(x, scale_code) == code);
}

void check_group_scale(float amax) {
  const float a = std::fabs(amax);
  if (std::isnan(a) || std::isinf(a)) {
    require(sq_fp4_group_scale(float_bits(a)) == 0x7Fu);
    return;
  }
  const std::uint32_t code = sq_e4m3_scale(a);
  require(code == nearest(static_cast<double>(a) / 6.0, 0x7E, e4m3_mag));
  require(sq_fp4_group_scale(float_bits(a)) == code);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sparq::fuzz::Input in(data, size);
  while (in.remaining() > 0) {
    const float x = bits_to_float(in.raw<std::uint32_t>());
    const std::uint32_t scale_code = in.raw<std::uint8_t>() & 0x7Fu;  // positive codes, NaN too
    check_e4m3(x);
    check_e2m1(x);
    check_quotient(x, scale_code);
    check_group_scale(x);
    const std::uint32_t lo = scale_code & 15u, hi = scale_code >> 3;
    const std::uint32_t byte = sq_fp4_pack2(lo, hi & 15u);
    require(sq_fp4_lo(byte) == lo && sq_fp4_hi(byte) == (hi & 15u));
  }
  return 0;
}
