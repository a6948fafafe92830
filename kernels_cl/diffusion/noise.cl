#pragma OPENCL FP_CONTRACT OFF
// noise.cl — Gaussian noise ops (specs/diffusion_sampling.md §3.5, §2.9), element-wise over
// n = B·S elements; element i is sample b = i / S, within-sample index j = i % S.
// Macros: none.
//
// Defined arithmetic order, per element:
//   diffusion_randn:   out[i] = RNE-narrow(scale · sq_randn(seed_b, j, step, tag))
//   diffusion_renoise: z = sq_randn(seed_b, j, step_b, RENOISE); y[i] = fma(b_b, z, a_b · x0[i])
// sq_randn is common/philox.h (Philox4x32-10 + exact Box-Muller). No reduction; launch geometry
// cannot change a value.
#include "common/convert.h"
#include "common/philox.h"

__kernel void diffusion_randn(__global uchar* out, int out_dt, __global const uint* seeds,
                              long sd_off, long s, long n, uint step, uint tag, float scale) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const long b = i / s, j = i - b * s;
  const float v =
      scale * sq_randn(seeds[sd_off + 2 * b], seeds[sd_off + 2 * b + 1], (ulong)j, step, tag);
  if (out_dt == 0)
    ((__global float*)out)[i] = v;
  else
    ((__global ushort*)out)[i] = out_dt == 1 ? sq_f32_to_f16_rne(v) : sq_f32_to_bf16_rne(v);
}

// coefs: 4 words per sample (a, b as float bits, step, unused); coef_stride 0 broadcasts.
__kernel void diffusion_renoise(__global float* y, __global const float* x0, long x0_off,
                                __global const uint* seeds, long sd_off,
                                __global const uint* coefs, long coef_stride, long s, long n) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const long b = i / s, j = i - b * s;
  const long c = b * coef_stride;
  const float a = as_float(coefs[c]), bb = as_float(coefs[c + 1]);
  const float z = sq_randn(seeds[sd_off + 2 * b], seeds[sd_off + 2 * b + 1], (ulong)j,
                           coefs[c + 2], SQ_TAG_RENOISE);
  y[i] = fma(bb, z, a * x0[x0_off + i]);
}
