// codecs_probe.h — one entry point that evaluates any codec of common/codecs.h on 32-bit
// patterns, so the probe kernel (codecs_probe.cl) and its C++ mirror
// (fallback_cpu/common/codecs_probe.cpp) run the same switch and the tests compare device and
// CPU bytes codec by codec. Compiles as OpenCL C 1.2 and as C++20.
#ifndef SPARQ_COMMON_CODECS_PROBE_H
#define SPARQ_COMMON_CODECS_PROBE_H

#include "common/codecs.h"
#include "common/prelude.h"

// Codec selectors. a, b: float bits or codes; the result is a code or a float's bits.
#define SQ_CODEC_E2M1_RNE 0         // float a -> code
#define SQ_CODEC_E2M1_DECODE 1      // code a -> float
#define SQ_CODEC_E2M1_TWICE 2       // code a -> int
#define SQ_CODEC_E2M1_RNE_Q 3       // float a, scale code b -> code (sq_fp4_element_code)
#define SQ_CODEC_E4M3_RNE 4         // float a -> code
#define SQ_CODEC_E4M3_DECODE 5      // code a -> float
#define SQ_CODEC_E4M3_SCALE 6       // float a (|a| used) -> scale code (sq_fp4_group_scale)
#define SQ_CODEC_UE8M0_DECODE 7     // code a -> float
#define SQ_CODEC_UE8M0_SCALE 8      // float a -> code
#define SQ_CODEC_ROUND_HALF_AWAY 9  // float a -> int, saturated to [-127, 127]
#define SQ_CODEC_PACK \
  10  // codes a (low nibble), b (high nibble) -> byte, then both
      // nibbles read back as int4 and FP4: byte | int4 lo,hi | fp4
#define SQ_CODEC_COUNT 11

SQ_BEGIN_NAMESPACE

SQ_FN uint sq_codec_probe_eval(int fn, uint a, uint b) {
  switch (fn) {
    case SQ_CODEC_E2M1_RNE:
      return sq_e2m1_rne(sq_as_float(a));
    case SQ_CODEC_E2M1_DECODE:
      return sq_as_uint(sq_e2m1_decode(a & 15u));
    case SQ_CODEC_E2M1_TWICE:
      return (uint)sq_e2m1_twice(a & 15u);
    case SQ_CODEC_E2M1_RNE_Q:
      return sq_fp4_element_code(sq_as_float(a), b & 0xFFu);
    case SQ_CODEC_E4M3_RNE:
      return sq_e4m3_rne(sq_as_float(a));
    case SQ_CODEC_E4M3_DECODE:
      return sq_as_uint(sq_e4m3_decode(a & 0xFFu));
    case SQ_CODEC_E4M3_SCALE:
      return sq_fp4_group_scale(sq_absmax_bits(0u, sq_as_float(a)));
    case SQ_CODEC_UE8M0_DECODE:
      return sq_as_uint(sq_ue8m0_decode(a & 0xFFu));
    case SQ_CODEC_UE8M0_SCALE:
      return sq_ue8m0_scale(sq_as_float(a));
    case SQ_CODEC_ROUND_HALF_AWAY:
      return (uint)sq_round_half_away_sat(sq_as_float(a), -127, 127);
    case SQ_CODEC_PACK: {
      uint byte = sq_fp4_pack2(a, b);
      uint i4 = sq_int4_pack2(sq_int4_lo(byte), sq_int4_hi(byte));
      uint f4 = sq_fp4_pack2(sq_fp4_lo(byte), sq_fp4_hi(byte));
      return byte | (i4 << 8) | (f4 << 16) | ((uint)sq_int8_from_byte(byte) & 0xFF000000u);
    }
    default:
      return 0u;
  }
}

SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_CODECS_PROBE_H
