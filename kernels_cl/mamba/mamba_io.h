// mamba_io.h — typed loads and stores of the Mamba kernels (OpenCL C only; the fallback has the
// same three functions in fallback_cpu/mamba/mamba_fallback.h). dtype codes are sparq::DType's:
// 0 f32, 1 f16, 2 bf16. Widening is exact; narrowing rounds to nearest even (common/convert.h).
#ifndef SPARQ_MAMBA_IO_H
#define SPARQ_MAMBA_IO_H

#include "common/convert.h"

typedef __global const uchar* gbytes;

static inline float sq_load_any(gbytes base, long i, int dt) {
  if (dt == 0) return ((__global const float*)base)[i];
  const ushort h = ((__global const ushort*)base)[i];
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

static inline void sq_store_any(__global uchar* base, long i, int dt, float v) {
  if (dt == 0)
    ((__global float*)base)[i] = v;
  else
    ((__global ushort*)base)[i] = dt == 1 ? sq_f32_to_f16_rne(v) : sq_f32_to_bf16_rne(v);
}

#endif  // SPARQ_MAMBA_IO_H
