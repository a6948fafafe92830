// Internal quantizer ops shared by the quantized attention paths (int8 and NVFP4): each runs
// the kernel of kernels_cl/quant/ on a device Context or its fallback twin, and returns new
// contiguous tensors. Callers validate shapes first and hold the Context's mutex.
//   x, q, k, v: float storage (f32/f16/bf16) [B, H, L, D] with D contiguous, any outer strides.
#pragma once
#include <cstdint>

#include "context_impl.h"
#include "sparq/context.h"
#include "sparq/tensor.h"

namespace sparq::quant_detail {

// fp32(1 / n), rounded once from double (the r(n) of specs/fp4_attention.md §2.4).
float reciprocal(std::int64_t n);

// Means of x's rows in blocks of block_rows (the last block may be shorter; block_rows >= L
// gives one block = per-head / K mean): f32 [B, H, ceil(L / block_rows), D] (§2.4).
Tensor block_mean(Context& ctx, const Tensor& x, std::int64_t block_rows);

// Smoothing bias delta for query blocks [blk0, blk0 + nblk) of qm (f32 [B, Hq, nblk_q, D]):
// f32 [B, Hq, nblk, Lk] = sum_d qm[d] * (k[j][d] - km[d]); km f32 [B, Hkv, 1, D] or undefined
// (K smoothing off). D <= 128.
Tensor smooth_delta(Context& ctx, const Tensor& qm, std::int64_t blk0, std::int64_t nblk,
                    const Tensor& k, const Tensor& km);

// int8 per-block quantization (§5) of (x - mean) * mult: mean f32 [B, H, nblk_m, D] with blocks
// of mean_rows rows, or undefined. codes i8 [B, H, L, D], scales f32 [B, H, ceil(L / block_rows)].
struct Int8Quantized {
  Tensor codes, scales;
};
Int8Quantized int8_blocks(Context& ctx, const Tensor& x, const Tensor& mean, std::int64_t mean_rows,
                          float mult, std::int64_t block_rows);

// int8 V (§5): codes i8 [B, H, D, Lk64], scales f32 [B, H, D, Lk64 / 16], Lk64 = ceil(Lk/64)*64.
Int8Quantized int8_v(Context& ctx, const Tensor& v);

}  // namespace sparq::quant_detail
