// Precision::int8 attention (SageAttention 1/2 style, specs/fp4_attention.md §5) in stages:
// sage8_quantize runs the smoothing and int8 quantizers exactly as
// attention(ctx, q, k, v, {.precision = Precision::int8}) does inside, and sage8_attention_packed
// runs the attention kernel on the result (or on tensors quantized elsewhere in these layouts).
// Same bits on every device and on the fallback; docs/quantized_attention.md has the definition.
#pragma once
#include <cstdint>

#include "sparq/attention.h"

namespace sparq {

// int8 codes with one fp32 scale per block of consecutive rows of each (b, h).
struct SPARQ_API Int8Rows {
  Tensor codes;   // i8 [B, H, L, D], contiguous
  Tensor scales;  // f32 [B, H, ceil(L / block)], contiguous
};

// V: int8 per channel per group of 16 tokens, transposed (token innermost).
struct SPARQ_API Int8TokensT {
  Tensor codes;   // i8 [B, Hkv, D, Lk64], Lk64 = Lk rounded up to a multiple of 64; 0 past Lk
  Tensor scales;  // f32 [B, Hkv, D, Lk64 / 16]
};

// The inputs of the int8 attention kernel.
//   q: blocks of 128 rows of (Q - qm) * c, c = fp32(scale * log2(e)) (so scores are in log2
//      units), qm the Q smoothing mean (0 when off);
//   k: blocks of 64 tokens of K - km, km the mean key (0 when options.quant.k_smooth is off);
//   v: V per channel per 16 tokens;
//   delta: f32 [B, Hq, nblk, Lk], delta[b,h,blk,j] = sum_d qm[b,h,blk,d] * (K - km)[b,hk,j,d]:
//      nblk = ceil(Lq / 128) (QSmooth::per_block128) or 1 (QSmooth::per_head); empty when off.
struct SPARQ_API Sage8Packed {
  Int8Rows q, k;
  Int8TokensT v;
  Tensor delta;
};

// Q [B, Hq, Lq, D], K/V [B, Hkv, Lk, D] (f32/f16/bf16, D contiguous), D = 64 or 128; uses
// options.scale and options.quant. Materializes delta: [B, Hq, ceil(Lq/128), Lk] floats with
// per-block Q smoothing (attention() itself computes it in bounded slices).
SPARQ_API Sage8Packed sage8_quantize(Context& ctx, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const AttentionOptions& options = {});

// Attention on packed inputs; options.causal and options.scale (for c in the delta term) apply;
// options.quant is ignored (delta present = Q smoothing); return_lse and non-f32 out_dtype are
// not supported. Output f32 [B, Hq, Lq, D].
SPARQ_API AttentionResult sage8_attention_packed(Context& ctx, const Sage8Packed& packed,
                                                 const AttentionOptions& options = {});

// Short query blocks (decode, speculative verification): Lq = 1..127 rows against any Lk, split
// at the 4096-key chunks so few rows still fill a GPU. Same inputs and options as
// sage8_attention_packed (delta, when present, f32 [B, Hq, 1, Lk]: Lq <= 127 rows are one Q
// scale and one smoothing block, exactly as sage8_quantize defines them for the same rows).
// Definition: each 4096-key chunk [4096c, 4096c + 4096) is the tile walk of
// sage8_attention_packed from a fresh state; the chunk states (O / l, m + log2 l) are merged left
// to right with merge_states' formula (ARCHITECTURE §2's chunked order, the definition of
// sage8_attention_packed too): the same bits as sage8_attention_packed at every Lk, which runs
// this kernel itself for Lq <= 127 (SPARQ_TUNE_SAGE8=decode=0: its prefill kernel). The split
// depends on Lk only, never on the device. Lq > 127 -> sparq::Error.
SPARQ_API AttentionResult sage8_decode_packed(Context& ctx, const Sage8Packed& packed,
                                              const AttentionOptions& options = {});

}  // namespace sparq
