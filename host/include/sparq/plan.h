// sparq::Plan: an attention call validated once for fixed shapes and options, then run many
// times (a model calls attention 32-80 times per forward pass with the same shapes: FlashInfer's
// plan / run split). Making a plan runs every check of the one-shot op on the descriptors,
// computes the scale and hook constants, builds the kernels and lays out the device temporaries
// of a run in one workspace (workspace_bytes(); what it holds per plan kind is listed at
// workspace_bytes() below). Plan::run then only checks that its tensors have the planned
// descriptors and enqueues; its result is the one-shot op's, bit for bit (both run the same
// launch code).
//
//   auto plan = sparq::make_attention_plan(ctx, q.desc(), k.desc(), v.desc(), {.causal = true});
//   auto ws = ctx.empty(sparq::DType::u8, {std::int64_t(plan.workspace_bytes())});  // optional
//   auto o = ctx.empty(plan.out_desc().dtype, plan.out_desc().shape);                // optional
//   for (auto& l : layers) plan.run(l.q, l.k, l.v, {.out = o, .workspace = ws});
//
// Covered: attention() (precision fp32 with every mask hook, GQA, causal, f16/bf16 storage and
// output; int8 and nvfp4), attention_varlen() and attention_paged() (f32/f16/bf16/int8 pages),
// attention(q, k, v, index) and attention(q, k, v, pattern) (sparse prefill, every precision),
// sage8_attention_packed() and fp4_attention_packed().
#pragma once
#include <cstdint>
#include <memory>
#include <utility>

#include "sparq/attention.h"
#include "sparq/context.h"
#include "sparq/export.h"
#include "sparq/int8_attention.h"
#include "sparq/nvfp4.h"
#include "sparq/sparse.h"
#include "sparq/tensor.h"

namespace sparq {

// Tensors a run writes or uses; an undefined member is provided by the plan. out / lse, when
// given, must have out_desc() / lse_desc()'s dtype, shape and strides (any offset); workspace
// must be a contiguous u8 [n] tensor of the plan's Context with n >= workspace_bytes() whose
// offset is a multiple of 4096 bytes (of the device's CL_DEVICE_MEM_BASE_ADDR_ALIGN where that is
// larger: the workspace is cut into OpenCL sub-buffers); else sparq::Error naming
// buffers.workspace, what is wrong and what is expected. Without one, the plan allocates
// its own on the first run that needs it and keeps it. Plans may share one workspace (size it
// for the largest): runs that share one must not overlap on the device, and on one Context's
// in-order queue they never do.
struct SPARQ_API PlanBuffers {
  Tensor out;
  Tensor lse;
  Tensor workspace;
};

// Host copies of a paged run's tables, as a serving engine's block manager holds them (int32,
// row-major): seq_lens [B], page_table [B * max_pages_per_seq]. The plan checks them on the host
// and uploads them itself without waiting for the device, so the run needs no host round trip;
// kv.seq_lens / kv.page_table are then not read (they may be undefined). The pointers need to be
// valid during the call only.
struct SPARQ_API PagedTables {
  const std::int32_t* seq_lens = nullptr;
  const std::int32_t* page_table = nullptr;
};

// Host copies of a varlen run's offsets, int32 [num_seqs + 1] each, used as PagedTables are.
struct SPARQ_API SeqOffsets {
  const std::int32_t* cu_seqlens_q = nullptr;
  const std::int32_t* cu_seqlens_k = nullptr;
};

class SPARQ_API Plan {
 public:
  Plan() = default;  // empty: make one with the make_attention*_plan functions below
  bool defined() const { return impl_ != nullptr; }

  // Bytes of device temporaries a run may need (0: none), each region starting at a multiple of
  // the alignment above:
  //  - fp32 attention / paged / varlen: the split-KV partial outputs and LSEs (the most chunks
  //    that still split) and the dense kernel's fp32 scratch (f16/bf16 output past 4096 keys);
  //  - int8 / nvfp4 attention() and sparse plans: zero-padded Q/K/V copies and output (head dims
  //    other than 64 and 128), the smoothing means (K, Q blocks), the quantized Q/K/V codes and
  //    scales, the smoothing delta slice(s) (one region reused by every slice), and, for dense
  //    calls with Lq <= 127 over more than 4096 keys, the decode kernel's chunk states;
  //  - fp32 sparse plans: the zero-padded copies (head dims other than 64 and 128), else 0;
  //  - sage8 / fp4 packed plans: the decode kernel's chunk states when Lq <= 127 and Lk > 4096
  //    (f32 [B*Hq*Lq, chunks, D] and [B*Hq*Lq, chunks]), else 0.
  // The same on a fallback Context, where a given workspace is checked but not used (the CPU
  // executor keeps its own temporaries).
  std::uint64_t workspace_bytes() const;
  TensorDesc out_desc() const;  // contiguous
  TensorDesc lse_desc() const;  // contiguous f32; shape [] (empty) unless options.return_lse

  // attention() (and attention(q, k, v, pattern): make_sparse_attention_plan with a pattern):
  // Q, K, V with the planned dtypes, shapes and strides (offsets may differ per
  // call, e.g. one layer's slice of a larger buffer). Mask tensors are the ones given when the
  // plan was made: alibi_slopes and sinks were read then, key_padding is read by each run.
  AttentionResult run(const Tensor& q, const Tensor& k, const Tensor& v,
                      const PlanBuffers& buffers = {});
  // attention_paged(): Q and the pools / tables as planned (descriptors, page_size, layout).
  // seq_lens and page_table are data: downloaded and checked by every run as in the one-shot
  // op; the longest sequence may reach max_pages_per_seq * page_size keys.
  // Downloading the tables waits for the device (the queue drains); see the next overload.
  AttentionResult run(const Tensor& q, const PagedKV& kv, const PlanBuffers& buffers = {});
  // The same with the tables given on the host: no download, no wait.
  AttentionResult run(const Tensor& q, const PagedKV& kv, const PlanBuffers& buffers,
                      const PagedTables& tables);

  // attention_varlen(): Q, K, V and the offsets as planned; the offsets are data (downloaded and
  // checked by every run), so sequence lengths may change while total_q / total_k stay fixed.
  AttentionResult run_varlen(const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                             const PlanBuffers& buffers = {});
  // The same with the offsets given on the host: no download, no wait.
  AttentionResult run_varlen(const Tensor& q, const Tensor& k, const Tensor& v,
                             const SeqOffsets& offsets, const PlanBuffers& buffers = {});

  // attention(q, k, v, index) (make_sparse_attention_plan with an index): Q, K, V as planned; the
  // index is data (each layer may bring its own): checked against the planned call (B, Lq, Lk,
  // causal, sharing and rows, its tensors; capacities may differ) and, when sparq's builders did
  // not make it, validated (invariants 1-8) by every run, as by the one-shot op.
  AttentionResult run_sparse(const Tensor& q, const Tensor& k, const Tensor& v,
                             const SparseIndex& index, const PlanBuffers& buffers = {});
  // sage8_attention_packed() (make_sage8_packed_plan): the packed tensors as planned.
  AttentionResult run(const Sage8Packed& packed, const PlanBuffers& buffers = {});
  // fp4_attention_packed() (make_fp4_packed_plan): the packed tensors, v.tokens and delta's
  // presence as planned.
  AttentionResult run(const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
                      const Tensor* delta, const PlanBuffers& buffers = {});

  // Library-internal.
  struct Impl;
  explicit Plan(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<Impl> impl_;
};

// A plan of attention(ctx, q, k, v, options) for tensors of these descriptors. Throws the
// sparq::Error the op would throw. With precision int8 / nvfp4 a run quantizes and attends as the
// one-shot op (same bits), every temporary in the workspace (the caller's, or the plan's own).
// Copies of a Plan share its kernels and workspace; runs of one Context are serialized, as all
// its calls.
SPARQ_API Plan make_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                   const TensorDesc& v, const AttentionOptions& options = {});

// A plan of attention_paged(ctx, q, kv, options). kv gives the descriptors of its pools, scales,
// page_table ([B, max_pages_per_seq]) and seq_lens, its page_size and layout; their contents are
// not read here.
SPARQ_API Plan make_attention_paged_plan(Context& ctx, const TensorDesc& q, const PagedKV& kv,
                                         const AttentionOptions& options = {});

// A plan of attention_varlen(ctx, q, k, v, cu_seqlens_q, cu_seqlens_k, options): packed
// [total_q, Hq, D] / [total_k, Hkv, D] and int32 [num_seqs + 1] offsets; their contents are not
// read here. Which kernel runs depends on the longest sequence of each run (data): the plan holds
// both and a workspace for either.
SPARQ_API Plan make_attention_varlen_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                          const TensorDesc& v, const TensorDesc& cu_seqlens_q,
                                          const TensorDesc& cu_seqlens_k,
                                          const AttentionOptions& options = {});

// A plan of attention(ctx, q, k, v, index, options): sparse prefill over an index of `index`'s
// metadata and tensor descriptors (its contents are not read here), any precision (int8 / nvfp4:
// the quantizers' temporaries in the workspace, as above).
SPARQ_API Plan make_sparse_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                          const TensorDesc& v, const SparseIndex& index,
                                          const AttentionOptions& options = {});
// A plan of attention(ctx, q, k, v, pattern, options, index_options): each run(q, k, v) builds
// the pattern's index from its Q and K (build_index; its checks run there) and attends over it.
// Grid patterns (permuted order) run permuted_attention and take no buffers.out / lse. The
// index each run builds is allocated by build_index (not in the workspace).
SPARQ_API Plan make_sparse_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                          const TensorDesc& v, const Pattern& pattern,
                                          const AttentionOptions& options = {},
                                          const IndexOptions& index_options = {});

// A plan of sage8_attention_packed(ctx, packed, options): packed's tensors give the descriptors
// (their contents are not read here); delta present = Q smoothing (per head or per 128 rows).
// Lq <= 127 runs the decode kernel, as the op does (split-KV chunk states in the workspace).
SPARQ_API Plan make_sage8_packed_plan(Context& ctx, const Sage8Packed& packed,
                                      const AttentionOptions& options = {});

// A plan of fp4_attention_packed(ctx, q, k, v, delta, options), descriptors and decode as above.
SPARQ_API Plan make_fp4_packed_plan(Context& ctx, const Fp4Packed& q, const Fp4Packed& k,
                                    const Fp4PackedT& v, const Tensor* delta,
                                    const AttentionOptions& options = {});

}  // namespace sparq
