#pragma OPENCL FP_CONTRACT OFF
// check_finite.cl — sparq::check_finite: the smallest row-major index i of a NaN or ±inf element
// of a strided f32/f16/bf16 tensor (rank <= 4, padded with leading size-1 dims) into *first
// (atomic_min; initialized to INT_MAX by the host; indices clamp at INT_MAX - 1). No arithmetic
// on the values: widening is exact, so the device and the fallback flag the same elements.
#include "mamba/mamba_io.h"

__kernel void mamba_check_finite(gbytes p, long off, int dt, long4 shape, long4 stride, long n,
                                 volatile __global int* first) {
  const long i = get_global_id(0);
  if (i >= n) return;
  long rem = i;
  const long i3 = rem % shape.w;
  rem /= shape.w;
  const long i2 = rem % shape.z;
  rem /= shape.z;
  const long i1 = rem % shape.y;
  const long i0 = rem / shape.y;
  const float v =
      sq_load_any(p, off + i0 * stride.x + i1 * stride.y + i2 * stride.z + i3 * stride.w, dt);
  if (isnan(v) || isinf(v)) atomic_min(first, (int)min(i, (long)0x7ffffffe));
}
