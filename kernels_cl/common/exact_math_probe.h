// exact_math_probe.h — one entry point that evaluates any shared exact-math or conversion
// function on a 32-bit pattern, so the probe kernel (exact_math_probe.cl) and its C++ mirror
// (fallback_cpu/common/exact_math_probe.cpp) run the same switch and the tests can compare
// device and CPU bits function by function. Compiles as OpenCL C 1.2 and as C++20.
#ifndef SPARQ_COMMON_EXACT_MATH_PROBE_H
#define SPARQ_COMMON_EXACT_MATH_PROBE_H

#include "common/convert.h"
#include "common/exact_math.h"
#include "common/philox.h"
#include "common/prelude.h"
#include "common/rounding.h"

// Function selectors. Inputs and outputs are bit patterns: a float's bits, an int's bits, or a
// 16-bit code in the low half. Only SQ_PROBE_SINCOSPI has a second output (cos).
#define SQ_PROBE_ROUND_RNE 0       // float -> float
#define SQ_PROBE_ROUND_RNE_INT 1   // float -> int (input must be in (-2^31, 2^31))
#define SQ_PROBE_TO_INT_SAT_RNE 2  // float -> int, saturating to [lo, hi]
#define SQ_PROBE_EXP2 3
#define SQ_PROBE_EXP2_Q 4
#define SQ_PROBE_EXP 5
#define SQ_PROBE_LOG1P 6
#define SQ_PROBE_LOG 7
#define SQ_PROBE_LOG2 8
#define SQ_PROBE_SOFTPLUS 9
#define SQ_PROBE_SILU 10
#define SQ_PROBE_SIGMOID 11
#define SQ_PROBE_SINCOSPI 12     // float -> sin (first), cos (second)
#define SQ_PROBE_F16_TO_F32 13   // half code -> float
#define SQ_PROBE_BF16_TO_F32 14  // bf16 code -> float
#define SQ_PROBE_F32_TO_F16 15   // float -> half code
#define SQ_PROBE_F32_TO_BF16 16  // float -> bf16 code
#define SQ_PROBE_BM_RADIUS 17    // m (< 2^23) -> Box-Muller radius sqrt(-2 log((2m+1) 2^-24))
#define SQ_PROBE_COUNT 18

SQ_BEGIN_NAMESPACE

// Returns the first output's bits; *second gets the second output's bits (0 when none).
SQ_FN uint sq_probe_eval(int fn, uint in, int lo, int hi, uint* second) {
  float x = sq_as_float(in);
  float c = 0.0f;
  float y = 0.0f;
  *second = 0u;
  switch (fn) {
    case SQ_PROBE_ROUND_RNE:
      y = sq_round_rne(x);
      break;
    case SQ_PROBE_ROUND_RNE_INT:
      return (uint)sq_round_rne_int(x);
    case SQ_PROBE_TO_INT_SAT_RNE:
      return (uint)sq_to_int_sat_rne(x, lo, hi);
    case SQ_PROBE_EXP2:
      y = sq_exp2(x);
      break;
    case SQ_PROBE_EXP2_Q:
      y = sq_exp2_q(x);
      break;
    case SQ_PROBE_EXP:
      y = sq_exp(x);
      break;
    case SQ_PROBE_LOG1P:
      y = sq_log1p(x);
      break;
    case SQ_PROBE_LOG:
      y = sq_log(x);
      break;
    case SQ_PROBE_LOG2:
      y = sq_log2(x);
      break;
    case SQ_PROBE_SOFTPLUS:
      y = sq_softplus(x);
      break;
    case SQ_PROBE_SILU:
      y = sq_silu(x);
      break;
    case SQ_PROBE_SIGMOID:
      y = sq_sigmoid(x);
      break;
    case SQ_PROBE_SINCOSPI:
      y = sq_sincospi(x, &c);
      *second = sq_as_uint(c);
      break;
    case SQ_PROBE_F16_TO_F32:
      y = sq_f16_to_f32((ushort)(in & 0xffffu));
      break;
    case SQ_PROBE_BF16_TO_F32:
      y = sq_bf16_to_f32((ushort)(in & 0xffffu));
      break;
    case SQ_PROBE_F32_TO_F16:
      return (uint)sq_f32_to_f16_rne(x);
    case SQ_PROBE_F32_TO_BF16:
      return (uint)sq_f32_to_bf16_rne(x);
    case SQ_PROBE_BM_RADIUS:
      y = sq_bm_radius(in & 0x7fffffu);
      break;
    default:
      return 0xffffffffu;
  }
  return sq_as_uint(y);
}

SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_EXACT_MATH_PROBE_H
