#pragma OPENCL FP_CONTRACT OFF
// codecs_probe.cl — test probe: out[i] = codec(a[i], b[i]) for one codec of common/codecs.h
// chosen by `fn` (SQ_CODEC_* in common/codecs_probe.h). Mirror:
// fallback_cpu/common/codecs_probe.cpp. No macros consumed. Defined arithmetic order: that of each
// codec; elements are independent.
#include "common/codecs_probe.h"

__kernel void sq_codecs_probe(__global const uint* a, __global const uint* b, __global uint* out,
                              int fn, uint n) {
  uint i = (uint)get_global_id(0);
  if (i >= n) return;
  out[i] = sq_codec_probe_eval(fn, a[i], b[i]);
}
