// Exact fp32 attention: dense prefill, variable-length (packed) batches, decode over a paged KV
// cache, and merge_states. Every result is bit-identical on every OpenCL device and on the
// fallback; the same token gets the same bits in prefill, chunked prefill, decode and any batch.
//
// Definition (kernels_cl/attention/attention_common.h states it in full):
//   c = fp32(scale * log2(e)) (host, double, rounded once); q' = q * c;
//   s_j = dot(q', k_j) as the chain acc = fma(q'[d], k_j[d], acc), d ascending;
//   keys in chunks of 4096 (64 tiles of 64); online base-2 softmax over the tiles of a chunk;
//   chunk states merged left to right with merge_states' formula.
// LSE is base 2 of the scaled scores: lse2 = log2(sum_j 2^(s_j)); natural LSE = lse2 * ln(2).
#pragma once
#include <cstdint>
#include <vector>

#include "sparq/context.h"
#include "sparq/support.h"
#include "sparq/tensor.h"

namespace sparq {

// Arithmetic of an attention call (docs: specs/fp4_attention.md). fp32 is the exact path;
// int8 (SageAttention 1/2 style) and nvfp4 (SageAttention3 style) quantize Q, K, V and P inside
// the op with a defined order, so they are as reproducible as fp32, only less accurate.
enum class Precision { fp32, int8, nvfp4 };

// Query smoothing before quantization (mean subtraction; the bias term keeps scores exact).
enum class QSmooth { off, per_head, per_block128 };

struct SPARQ_API QuantAttnOptions {
  QSmooth q_smooth = QSmooth::per_block128;  // SageAttention3's default (per_block_mean=True)
  bool k_smooth = true;                      // subtract the mean key (softmax ignores it)
};

// Masks and logit hooks of the exact fp32 path (docs/attention.md "Masks and logit hooks"; the
// arithmetic is stated in kernels_cl/attention/attention_common.h, HOOKS). They compose with
// each other, with causal, with every sparse pattern (attention(..., SparseIndex)) and with
// attention_paged / attention_varlen; the same token gets the same bits in prefill and decode.
// Positions: query row i sits at qp = i + (Lk - Lq), key j at kp = j (sparse: the index's
// qpos/kpos). Quantized precisions (int8, nvfp4) refuse every hook.
struct SPARQ_API AttentionMasks {
  // Sliding window (FlashAttention's window_size): key kp is visible to qp iff
  // qp - window_left <= kp <= qp + window_right; -1 = unbounded on that side.
  int window_left = -1, window_right = -1;
  // Logit soft-cap (Gemma-2): s -> softcap * tanh(s / softcap) on s = scale * q.k; 0 = off,
  // otherwise finite and > 0.
  float softcap = 0.0f;
  // ALiBi: f32 [Hq], finite and >= 0; bias -slope[h] * |qp - kp| added to the (soft-capped)
  // score (FlashAttention's alibi_slopes). Undefined = off.
  Tensor alibi_slopes;
  // Learned attention sinks (gpt-oss): f32 [Hq], finite, natural-log units; one virtual key per
  // query head with logit sinks[h] and value 0 joins the softmax denominator (and the returned
  // lse). Undefined = off.
  Tensor sinks;
  // Key padding (Hugging Face attention_mask convention): u8 [B, Lk] (attention_paged: [B, N] with
  // N >= every seq_lens[b]), nonzero = the key takes part, 0 = padding (left or right). Note
  // PyTorch's nn.MultiheadAttention key_padding_mask is the inverse (True = padding).
  // attention_varlen refuses it (its cu_seqlens already give each sequence's keys). Undefined =
  // off.
  Tensor key_padding;
};

struct SPARQ_API AttentionOptions {
  bool causal = false;  // aligned bottom-right when Lq != Lk (as FlashAttention)
  float scale = 0.0f;   // 0 = 1/sqrt(D); otherwise finite and > 0
  bool return_lse = false;
  DType out_dtype = DType::f32;  // f32, or f16/bf16 rounded to nearest even
  Precision precision = Precision::fp32;
  QuantAttnOptions quant{};  // used when precision is int8 or nvfp4
  AttentionMasks masks{};    // fp32 only
};

struct SPARQ_API AttentionResult {
  Tensor out;  // [B, Hq, Lq, D] (varlen: [total_q, Hq, D]; paged: Q's shape)
  Tensor lse;  // fp32 base-2 LSE, [B, Hq, Lq] (varlen: [Hq, total_q]; paged: Q's leading dims);
               // empty unless options.return_lse
};

// Q [B, Hq, Lq, D], K and V [B, Hkv, Lk, D]; Hq % Hkv == 0; D <= 256 (64/128: fast path).
// Any strides with D contiguous (so [B, L, H, D] memory works through Tensor::view).
SPARQ_API AttentionResult attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// Packed sequences as FlashAttention's varlen API: Q [total_q, Hq, D], K/V [total_k, Hkv, D],
// cu_seqlens_q / cu_seqlens_k int32 [num_seqs + 1], ascending from 0. Sequence s has
// Lq_s = cu_q[s+1] - cu_q[s] query rows and Lk_s keys; causal alignment is per sequence.
SPARQ_API AttentionResult attention_varlen(Context& ctx, const Tensor& q, const Tensor& k,
                                           const Tensor& v, const Tensor& cu_seqlens_q,
                                           const Tensor& cu_seqlens_k,
                                           const AttentionOptions& options = {});

enum class PageLayout {
  nhd,  // pages [num_pages, page_size, Hkv, D]  (vLLM / FlashInfer "NHD")
  hnd,  // pages [num_pages, Hkv, page_size, D]  (FlashInfer "HND")
};

// A paged KV cache: sequence b's key j lives in page page_table[b][j / page_size] at slot
// j % page_size. page_table int32 [B, max_pages_per_seq]; seq_lens int32 [B]. Indices are
// validated on the host before any kernel reads them.
// Pages hold f32, f16 or bf16, or int8 codes with one fp32 scale per (page, slot, KV head) row
// in k_scales / v_scales (NHD [num_pages, page_size, Hkv], HND [num_pages, Hkv, page_size];
// written by kv_append). An int8 element means the float sq_att_deq_i8(code, scale) =
// fp32(code * scale), and attention over int8 pages is exactly fp32 attention over those floats.
// Or NVFP4 (u8 pages, as Fp4Packed in nvfp4.h): D / 2 bytes per row, E2M1 codes two per byte
// (element 2k in the low nibble), and k_scales / v_scales u8 [<pages' dims without D>, D / 16]
// holding one E4M3 scale code per 16 elements of a row (no per-row or per-tensor fp32 scale, as
// specs/fp4_attention.md §1.3). An NVFP4 element means e2m1(code) * e4m3(scale code), a product
// that is exact in fp32 (sq_att_deq_fp4; a NaN scale code gives NaN); attention over NVFP4
// pages is exactly fp32 attention over those floats.
struct QuestState;  // quest.h

struct SPARQ_API PagedKV {
  Tensor k_pages, v_pages;
  Tensor page_table;
  Tensor seq_lens;
  int page_size = 16;
  PageLayout layout = PageLayout::nhd;
  Tensor k_scales, v_scales;  // int8 (f32 per row) and NVFP4 (u8 per 16-group) pages only
};

// New pages: num_pages pages of page_size slots for Hkv heads of head_dim, in `storage` (f32,
// f16, bf16, i8 = int8 or u8 = NVFP4 with head_dim % 16 == 0; i8 and u8 also allocate the
// scales), zero-filled, with page_table / seq_lens undefined (the caller's block manager
// provides them).
SPARQ_API PagedKV make_paged_kv(Context& ctx, std::int64_t num_pages, int page_size, int hkv,
                                int head_dim, DType storage, PageLayout layout = PageLayout::nhd);

// Writes n new tokens per sequence into the cache: token t of sequence b (k_new/v_new
// [B, Hkv, n, D], any float storage, D contiguous) goes to position seq_lens[b] + t, in page
// page_table[b][pos / page_size]; the pages it needs must be in the table. f16/bf16 pages get
// the value rounded to nearest even; int8 pages get per-row codes and scale (the int8 codec of
// specs/fp4_attention.md §5: scale = absmax / 127, codes round-half-away, clamp +-127);
// NVFP4 pages get quant16 of each 16-group (§2.3: scale E4M3(amax / 6), codes RNE, satfinite),
// the same bytes fp4_quantize_rows gives that row. Then seq_lens[b] += n (in place). A token
// whose row (int8) or group (NVFP4) holds Inf/NaN gives a non-finite scale.
// quest (optional, quest.h): the cache's Quest metadata, updated in the same kernel for the pages
// the new keys touch, equal bit for bit to quest_update_metadata(ctx, kv, *quest, prev_lens)
// after the append: per (page, KV head, d) the min / max over the page's keys of the values the
// pages hold (the dequantized floats for int8 / NVFP4 pages, as attention reads them).
SPARQ_API void kv_append(Context& ctx, PagedKV& kv, const Tensor& k_new, const Tensor& v_new,
                         QuestState* quest = nullptr);

// Decode: Q [B, Hq, Lq, D] with small Lq (1 for plain decode, >1 for speculative/chunked
// decode), or [B, Hq, D] for Lq = 1; query row i of sequence b sits at position
// seq_lens[b] - Lq + i (options.causal masks later keys, as in attention()).
// Long contexts are split across work-groups at 4096-key chunk boundaries and merged with
// merge_states' formula, so the result equals the prefill row bit for bit.
SPARQ_API AttentionResult attention_paged(Context& ctx, const Tensor& q, const PagedKV& kv,
                                          const AttentionOptions& options = {});

// Merges two partial attention results over disjoint key sets (e.g. two KV chunks):
//   m = max(lse_a, lse_b); wa = exp2(lse_a - m); wb = exp2(lse_b - m); s = wa + wb
//   out = fma(out_a, wa, out_b * wb) / s;  lse = m + log2(s)
// with sparq's exact exp2/log2. A side whose lse is -inf is empty: the other side is returned
// unchanged (both empty: out_b, lse -inf). out_* [..., D] with 1 to 4 leading dims, lse_* [...]
// (base 2), matching leading dims; f32/f16/bf16 storage, D contiguous. Outputs fp32.
SPARQ_API AttentionResult merge_states(Context& ctx, const Tensor& out_a, const Tensor& lse_a,
                                       const Tensor& out_b, const Tensor& lse_b);

// The same validation the ops run, without running them: frameworks route on {ok, reason}.
SPARQ_API Support supports_attention(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                     const TensorDesc& v, const AttentionOptions& options = {});

}  // namespace sparq
