// selftest.cl — sparq_selftest: out[i * SQ_SELFTEST_OUTPUTS + k] = sq_selftest_op(k, a[i], b[i]).
// Macros: none. Arithmetic order: per element, each operation as written in selftest_ops.h
// (no reductions). Used by sparq-info and the runtime tests to check a device's arithmetic
// against the fallback, and as the runtime's own small program for program-cache tests.
#pragma OPENCL FP_CONTRACT OFF
#include "runtime/selftest_ops.h"

__kernel void sparq_selftest(__global const float* a, __global const float* b,
                             __global float* out, uint n) {
  const uint i = (uint)get_global_id(0);
  if (i >= n) return;
  for (int k = 0; k < SQ_SELFTEST_OUTPUTS; ++k)
    out[i * SQ_SELFTEST_OUTPUTS + k] = sq_selftest_op(k, a[i], b[i]);
}
