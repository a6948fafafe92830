// Internal quantizer ops shared by the quantized attention paths (int8 and NVFP4): each runs
// the kernel of kernels_cl/quant/ on a device Context or its fallback twin, and returns new
// contiguous tensors. Callers validate shapes first and hold the Context's mutex.
//   x, q, k, v: float storage (f32/f16/bf16) [B, H, L, D] with D contiguous, any outer strides.
#pragma once
#include <cstdint>
#include <vector>

#include "context_impl.h"
#include "sparq/context.h"
#include "sparq/tensor.h"

namespace sparq::quant_detail {

// Temporaries reused across the runs of a sparq::Plan (quantized attention): the n-th tensor
// asked for in a run is the n-th of the previous run when its dtype and shape match (a plan's
// runs ask in the same order), else a new one that replaces it. A run's writes into them follow
// the previous run's reads on the in-order queue (the fallback runs synchronously). The ops'
// results never come from here, only their internal tensors.
class Scratch {
 public:
  void restart() { next_ = 0; }
  Tensor get(Context& ctx, DType t, std::vector<std::int64_t> shape);

 private:
  std::vector<Tensor> tensors_;
  std::size_t next_ = 0;
};

// A new contiguous tensor, or scratch's (when given).
Tensor new_temp(Context& ctx, DType t, std::vector<std::int64_t> shape, Scratch* scratch);

// fp32(1 / n), rounded once from double (the r(n) of specs/fp4_attention.md §2.4).
float reciprocal(std::int64_t n);

// Means of x's rows in blocks of block_rows (the last block may be shorter; block_rows >= L
// gives one block = per-head / K mean): f32 [B, H, ceil(L / block_rows), D] (§2.4).
// scratch (every op here): where the result's tensors come from (null: new tensors).
Tensor block_mean(Context& ctx, const Tensor& x, std::int64_t block_rows,
                  Scratch* scratch = nullptr);

// Smoothing bias delta for query blocks [blk0, blk0 + nblk) of qm (f32 [B, Hq, nblk_q, D]):
// f32 [B, Hq, nblk, Lk] = sum_d qm[d] * (k[j][d] - km[d]); km f32 [B, Hkv, 1, D] or undefined
// (K smoothing off). D <= 128.
Tensor smooth_delta(Context& ctx, const Tensor& qm, std::int64_t blk0, std::int64_t nblk,
                    const Tensor& k, const Tensor& km, Scratch* scratch = nullptr);

// int8 per-block quantization (§5) of (x - mean) * mult: mean f32 [B, H, nblk_m, D] with blocks
// of mean_rows rows, or undefined. codes i8 [B, H, L, D], scales f32 [B, H, ceil(L / block_rows)].
struct Int8Quantized {
  Tensor codes, scales;
};
Int8Quantized int8_blocks(Context& ctx, const Tensor& x, const Tensor& mean, std::int64_t mean_rows,
                          float mult, std::int64_t block_rows, Scratch* scratch = nullptr);

// int8 V (§5): codes i8 [B, H, D, Lk64], scales f32 [B, H, D, Lk64 / 16], Lk64 = ceil(Lk/64)*64.
Int8Quantized int8_v(Context& ctx, const Tensor& v, Scratch* scratch = nullptr);

}  // namespace sparq::quant_detail
