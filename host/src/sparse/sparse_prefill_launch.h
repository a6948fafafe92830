// The sparse prefill kernel (sparse_prefill.cl) or its fallback over a validated call, with K/V
// contiguous [B, Hkv, Lk, D] (sparse_attention.cpp) or in pages (sparse_paged.cpp). Internal.
#pragma once
#include <cstdint>
#include <vector>

#include "host/src/attention/attention_hooks.h"
#include "host/src/attention/attention_plan.h"
#include "host/src/attention/attention_validate.h"
#include "sparq/sparse.h"

namespace sparq::quant_detail {
class Scratch;  // host/src/quant/quant_ops.h
}

namespace sparq::sparse_detail {

// Where the keys live. Contiguous: *_at.at(b, head, j). Paged (page_size > 0): key j of sequence
// b at *_at.at(page_table[b][j / page_size], head, j % page_size); int8 pages (k_at.dtype == i8)
// with fp32 row scales at *s_at.at(page, head, slot).
struct SparseKv {
  Tensor k, v, k_scales, v_scales, page_table;
  attention_detail::Access k_at, v_at, ks_at, vs_at;
  std::vector<std::int32_t> table;  // host copy of page_table, [B, max_pages]
  std::int64_t max_pages = 0;
  int page_size = 0;  // 0: contiguous
};

// The index's metadata against a call of dims `d` (B, Lq, Lk, off, causal, sharing and Hi).
void check_index_meta(const char* op, const SparseIndex& x,
                      const attention_detail::AttentionDims& d, const AttentionOptions& options);
// The index against a call of dims `d` (B, Lq, Lk, off, causal, sharing, tensor shapes), then
// invariants 1-8 unless sparq's builders made it. sparq::Error naming `op` on failure.
void check_index_for_call(const char* op, const SparseIndex& x,
                          const attention_detail::AttentionDims& d, const AttentionOptions& options,
                          const detail::ContextImpl& impl);

// Runs the kernel (or fallback) on a call validated by the caller, with the context's mutex held.
// Output fp32 [B, Hq, Lq, D] (and lse [B, Hq, Lq] when options.return_lse): into's tensors
// where defined (whole contiguous tensors of those shapes), else new ones.
AttentionResult launch_sparse_prefill(Context& ctx, const char* op, const Tensor& q,
                                      const SparseKv& kv, const SparseIndex& x,
                                      const attention_detail::AttentionDims& d,
                                      const AttentionOptions& options, float c,
                                      const attention_detail::HookPlan& hooks,
                                      const AttentionResult& into = {});

// attention(q, k, v, index)'s checks on descriptors before the index: sparq::Error naming op.
attention_detail::AttentionDims check_sparse_call(const char* op, const TensorDesc& q,
                                                  const TensorDesc& k, const TensorDesc& v,
                                                  const AttentionOptions& options,
                                                  const detail::ContextImpl& impl);

// A call checked by check_sparse_call and check_index_for_call, routed by precision (int8, nvfp4,
// fp32; D < 128 other than 64 zero-padded, host/src/attention/head_dim_pad.h) into into's
// tensors where defined. hooks: plan_hooks of the call (fp32). scale_dim (0 = D): the head dim of
// the default softmax scale (the real D of a padded call). scratch (a plan's): the quantized
// paths' temporaries (null: new tensors). The context's mutex is held.
AttentionResult execute_sparse_prefill(Context& ctx, const Tensor& q, const Tensor& k,
                                       const Tensor& v, const SparseIndex& x,
                                       const attention_detail::AttentionDims& d,
                                       const AttentionOptions& options,
                                       const attention_detail::HookPlan& hooks,
                                       std::int64_t scale_dim, const AttentionResult& into,
                                       quant_detail::Scratch* scratch = nullptr);

}  // namespace sparq::sparse_detail
