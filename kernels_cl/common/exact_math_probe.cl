#pragma OPENCL FP_CONTRACT OFF
// exact_math_probe.cl — test probe: out[i] = f(in[i]) for one shared exact-math or conversion
// function f chosen by `fn` (SQ_PROBE_* in common/exact_math_probe.h), on bit patterns.
// Mirror: fallback_cpu/common/exact_math_probe.cpp. No macros consumed.
// Defined arithmetic order: that of each function in common/exact_math.h / convert.h /
// rounding.h; elements are independent, so the launch shape cannot change any result.
#include "common/exact_math_probe.h"

__kernel void sq_exact_math_probe(__global const uint* in, __global uint* out,
                                  __global uint* out2, int fn, int lo, int hi, uint n) {
  uint i = (uint)get_global_id(0);
  if (i >= n) return;
  uint second;
  out[i] = sq_probe_eval(fn, in[i], lo, hi, &second);
  out2[i] = second;
}
