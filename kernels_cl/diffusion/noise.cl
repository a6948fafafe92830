#pragma OPENCL FP_CONTRACT OFF
// noise.cl — Gaussian noise ops (specs/diffusion_sampling.md §3.5, §2.9), element-wise over
// n = B·S elements; element i is sample b = i / S, within-sample index j = i % S.
// Macros: none.
//
// Defined arithmetic order, per element:
//   diffusion_randn:   out[i] = RNE-narrow(scale · sq_randn(seed_b, j, step, tag))
//   diffusion_renoise: z = sq_randn(seed_b, j, step_b, RENOISE); y[i] = fma(b_b, z, a_b · x0[i])
// sq_randn is common/philox.h (Philox4x32-10 + exact Box-Muller). No reduction; launch geometry
// cannot change a value. Launch (speed only, diffusion/quad_launch.h):
// a work-item owns elements j = 4q .. min(4q + 4, s) - 1, whose four values come from one Philox
// call (sq_randn4, the same bits as sq_randn per element).
#include "common/convert.h"
#include "common/philox.h"
#include "diffusion/quad_launch.h"

__kernel void diffusion_randn(__global uchar* out, int out_dt, __global const uint* seeds,
                              long sd_off, long s, long n, uint step, uint tag, float scale,
                              uint gps) {
  long b, q0;
  sq_quad_base(gps, &b, &q0);
  for (int u = 0; u < SQ_QPT; ++u) {
    const long q = q0 + u * (long)get_local_size(0);
    const int nl = sq_quad_lanes(s, q);
    if (nl == 0) return;
    const long i = b * s + 4 * q;
    float z[4];
    sq_randn4(seeds[sd_off + 2 * b], seeds[sd_off + 2 * b + 1], (ulong)q, step, tag, z);
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      if (l >= nl) break;
      const float v = scale * z[l];
      if (out_dt == 0)
        ((__global float*)out)[i + l] = v;
      else
        ((__global ushort*)out)[i + l] = out_dt == 1 ? sq_f32_to_f16_rne(v) : sq_f32_to_bf16_rne(v);
    }
  }
}

// coefs: 4 words per sample (a, b as float bits, step, unused); coef_stride 0 broadcasts.
__kernel void diffusion_renoise(__global float* y, __global const float* x0, long x0_off,
                                __global const uint* seeds, long sd_off, __global const uint* coefs,
                                long coef_stride, long s, long n, uint gps) {
  long b, q0;
  sq_quad_base(gps, &b, &q0);
  for (int u = 0; u < SQ_QPT; ++u) {
    const long q = q0 + u * (long)get_local_size(0);
    const int nl = sq_quad_lanes(s, q);
    if (nl == 0) return;
    const long i = b * s + 4 * q;
    const long c = b * coef_stride;
    const float a = as_float(coefs[c]), bb = as_float(coefs[c + 1]);
    float z[4];
    sq_randn4(seeds[sd_off + 2 * b], seeds[sd_off + 2 * b + 1], (ulong)q, coefs[c + 2],
              SQ_TAG_RENOISE, z);
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      if (l >= nl) break;
      y[i + l] = fma(bb, z[l], a * x0[x0_off + i + l]);
    }
  }
}
