// Head dims the int8, NVFP4 and sparse kernels lack (D < 128 other than 64): the op runs at the
// next kernel D (64 or 128) on copies of Q, K, V with zero columns appended, with the softmax
// scale of the real D, and returns the first D output columns.
//
// Why this is exact (the padded problem gives the real columns' values of the same definition):
//  - dot products (fp32 fma chains, integer int8/FP4 dots, fp32 sums of FP4 group terms) gain
//    terms 0 * 0, code 0 * code 0 or (float)0 * scale, which add +0 (integers: 0), so every sum
//    keeps its value (such sums start at +0 and never hold -0, so x + 0 == x bit for bit);
//  - per-block and per-group quantization scales are absmax-based: zeros never raise an absmax,
//    so the real columns keep their scales and codes (an all-zero pad group gets scale 0, codes 0);
//  - smoothing means are per channel: the real channels' means are unchanged, the pad channels'
//    are 0, so smoothed pad columns stay 0 and the delta term q_mean . k gains +0 terms;
//  - V pad channels are 0, so their output columns are 0 and are dropped; P, m and l depend only
//    on the scores, which are unchanged;
//  - the scale constant is computed from the real D (scale_dim), never from the padded one.
// The op's definition for such a D is this padded computation (kernel == fallback as always).
#pragma once
#include <cstdint>

#include "sparq/context.h"
#include "sparq/tensor.h"

namespace sparq::attention_detail {

// The kernel head dim a call with head dim d runs at: d itself for 64 and 128, 64 for d < 64,
// 128 for 64 < d < 128; 0 for d > 128 (no kernel: the caller refuses).
std::int64_t kernel_head_dim(std::int64_t d);

// A contiguous copy [B, H, L, dp] of `t` ([B, H, L, d], any dtype and strides with D contiguous),
// columns d..dp-1 zero; written to `into` when defined (a contiguous tensor of that dtype and
// shape, offset 0, e.g. a plan's workspace region), else a new one.
Tensor pad_head_dim(Context& ctx, const Tensor& t, std::int64_t dp, Tensor into = {});

// A contiguous [B, H, L, d] copy of the first d columns of a contiguous [B, H, L, dp] tensor,
// written to `into` when defined (a contiguous tensor of that dtype and shape), else a new one.
Tensor unpad_head_dim(Context& ctx, const Tensor& t, std::int64_t d, Tensor into = {});

}  // namespace sparq::attention_detail
