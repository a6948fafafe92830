// NVFP4 (SageAttention3-style) quantizers and FP4 attention on pre-quantized inputs
// (specs/fp4_attention.md §1-§4, §6; docs/fp4_attention.md). The fp32 entry is
// attention(ctx, q, k, v, {.precision = Precision::nvfp4}); these are its stages, for users who
// quantize once and attend many times, or bring tensors quantized elsewhere.
//
// Formats (§2.5): E2M1 codes, two per byte, element 2k in the low nibble; one E4M3 (OCP E4M3FN)
// scale code per group of 16, uint8; a group's scale is RNE(amax / 6) with satfinite, its codes
// are RNE(x / scale) with satfinite; Inf/NaN groups get scale 0x7F (NaN) and codes 0.
#pragma once
#include <cstdint>

#include "sparq/attention.h"
#include "sparq/context.h"
#include "sparq/tensor.h"

namespace sparq {

// Rows [B, H, L, D] quantized in groups of 16 consecutive elements along D (Q and K layout).
struct SPARQ_API Fp4Packed {
  Tensor codes;   // u8 [B, H, L, D/2]
  Tensor scales;  // u8 [B, H, L, D/16], E4M3 codes
};

// Tokens quantized in groups of 16 consecutive tokens per channel, stored transposed (V layout):
// token is innermost, padded with zero codes and zero scales to Lk64 = Lk rounded up to 64.
struct SPARQ_API Fp4PackedT {
  Tensor codes;             // u8 [B, H, D, Lk64/2]
  Tensor scales;            // u8 [B, H, D, Lk64/16]
  std::int64_t tokens = 0;  // Lk, the valid tokens
};

// x: fp32 [B, H, L, D], contiguous, D a multiple of 16. Same bytes on every backend.
SPARQ_API Fp4Packed fp4_quantize_rows(Context& ctx, const Tensor& x);
// x: fp32 [B, H, L, D], contiguous, D a multiple of 16 (V is not smoothed, §2.4).
SPARQ_API Fp4PackedT fp4_quantize_tokens(Context& ctx, const Tensor& x);

// FP4 attention (§3-§4) on packed inputs: q [B, Hq, Lq, D], k [B, Hkv, Lk, D] (Fp4Packed),
// v (Fp4PackedT of [B, Hkv, Lk, D]); D in {64, 128}; Hq % Hkv == 0. delta: fp32
// [B, Hq, ceil(Lq/128), Lk], the smoothing bias row added to every score of a 128-row query
// block (§2.4), or null for no bias (q_smooth off). options: causal and scale; the rest is
// ignored. Output fp32 [B, Hq, Lq, D]. Given the packed tensors and delta that the fp32 entry
// forms inside, the result has the same bits as attention(..., {.precision = nvfp4}).
SPARQ_API Tensor fp4_attention_packed(Context& ctx, const Fp4Packed& q, const Fp4Packed& k,
                                      const Fp4PackedT& v, const Tensor* delta,
                                      const AttentionOptions& options = {});

// Short query blocks (decode, speculative verification): Lq = 1..127 rows, same inputs and
// options as fp4_attention_packed (delta f32 [B, Hq, 1, Lk] or null), split at the 4096-key
// chunks so few rows still fill a GPU. Q is quantized per row (groups of 16 along D), so a
// decode row's codes are the prefill row's. Definition: each chunk [4096c, 4096c + 4096) is
// fp4_attention_packed's tile walk from a fresh state; chunk states (O / l, mu + log2 l) merge
// left to right with merge_states' formula: the same bits as fp4_attention_packed, which
// follows the same chunked order (ARCHITECTURE §2) at every length.
// The split depends on Lk only, never on the device. Lq > 127 -> sparq::Error.
SPARQ_API Tensor fp4_decode_packed(Context& ctx, const Fp4Packed& q, const Fp4Packed& k,
                                   const Fp4PackedT& v, const Tensor* delta,
                                   const AttentionOptions& options = {});

}  // namespace sparq
