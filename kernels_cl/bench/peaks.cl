// peaks.cl — device peak measurements for sparq-bench (the way clpeak measures them).
//
// These kernels measure the device, not an op: their results are never read, so they have no
// CPU fallback and no defined arithmetic order to match. sparq-bench times them once per run and
// divides each case's GB/s and FLOP/s by these peaks (docs/benchmarks.md, "Rooflines").
//
//   copy_float4      dst[i] = src[i] on float4: copy bandwidth, read + write bytes counted.
//   fp32_fma_chains  eight independent float4 fma chains per work-item: fp32 FMA rate
//                    (one fma = 2 flops). Values converge to 1.0, so no denormal slow paths.
//   int32_mul_add    eight independent uint4 multiply-add chains: the integer rate that a portable
//                    int8/int32 dot-product loop runs at (one mul + add = 2 ops). Unsigned, so
//                    wrap-around is defined.
//
// Macros: none. The loop count is a kernel argument so sparq-bench can calibrate the run time.
// Every chain's final value is stored, so the compiler cannot drop the work.
#pragma OPENCL FP_CONTRACT OFF

__kernel void copy_float4(__global const float4* restrict src, __global float4* restrict dst) {
  size_t i = get_global_id(0);
  dst[i] = src[i];
}

// 8 independent chains per work-item: a CPU core (PoCL) needs this many fmas in flight to hide
// their latency; a GPU also hides it across warps. One float4 register per chain.
#define FMA_STEP(a, b) \
  x0 = fma(x0, a, b);  \
  x1 = fma(x1, a, b);  \
  x2 = fma(x2, a, b);  \
  x3 = fma(x3, a, b);  \
  x4 = fma(x4, a, b);  \
  x5 = fma(x5, a, b);  \
  x6 = fma(x6, a, b);  \
  x7 = fma(x7, a, b)
#define FMA_8(a, b) \
  FMA_STEP(a, b);   \
  FMA_STEP(a, b);   \
  FMA_STEP(a, b);   \
  FMA_STEP(a, b);   \
  FMA_STEP(a, b);   \
  FMA_STEP(a, b);   \
  FMA_STEP(a, b);   \
  FMA_STEP(a, b)

// Flops per work-item = iterations * 8 steps * 8 chains * 4 lanes * 2.
__kernel void fp32_fma_chains(__global float* out, int iterations, float a, float b) {
  float start = (float)(get_global_id(0) & 255) * 0.00390625f;
  float4 x0 = (float4)(start, start + 0.25f, start + 0.5f, start + 0.75f);
  float4 x1 = x0 + 1.0f, x2 = x0 + 2.0f, x3 = x0 + 3.0f, x4 = x0 + 4.0f;
  float4 x5 = x0 + 5.0f, x6 = x0 + 6.0f, x7 = x0 + 7.0f;
  float4 va = (float4)(a), vb = (float4)(b);
  for (int it = 0; it < iterations; ++it) {
    FMA_8(va, vb);
  }
  float4 s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
  out[get_global_id(0)] = (s.x + s.y) + (s.z + s.w);
}

#define IMAD_STEP(a, b) \
  y0 = y0 * a + b;      \
  y1 = y1 * a + b;      \
  y2 = y2 * a + b;      \
  y3 = y3 * a + b;      \
  y4 = y4 * a + b;      \
  y5 = y5 * a + b;      \
  y6 = y6 * a + b;      \
  y7 = y7 * a + b
#define IMAD_8(a, b) \
  IMAD_STEP(a, b);   \
  IMAD_STEP(a, b);   \
  IMAD_STEP(a, b);   \
  IMAD_STEP(a, b);   \
  IMAD_STEP(a, b);   \
  IMAD_STEP(a, b);   \
  IMAD_STEP(a, b);   \
  IMAD_STEP(a, b)

// Ops per work-item = iterations * 8 steps * 8 chains * 4 lanes * 2.
__kernel void int32_mul_add(__global uint* out, int iterations, uint a, uint b) {
  uint start = (uint)get_global_id(0);
  uint4 y0 = (uint4)(start, start + 1u, start + 2u, start + 3u);
  uint4 y1 = y0 + 4u, y2 = y0 + 8u, y3 = y0 + 12u, y4 = y0 + 16u;
  uint4 y5 = y0 + 20u, y6 = y0 + 24u, y7 = y0 + 28u;
  uint4 va = (uint4)(a), vb = (uint4)(b);
  for (int it = 0; it < iterations; ++it) {
    IMAD_8(va, vb);
  }
  uint4 s = ((y0 ^ y1) ^ (y2 ^ y3)) ^ ((y4 ^ y5) ^ (y6 ^ y7));
  out[get_global_id(0)] = (s.x ^ s.y) ^ (s.z ^ s.w);
}
