// AttentionPlan templates shared by the one-shot ops and sparq::Plan: every field that the
// descriptors and options fix, after the same validation the op runs. The tensors of a template
// are storage-less placeholders with the planned descriptors (out / lse: contiguous, offset 0);
// the caller puts the call's tensors in and recomputes their Access before run_attention.
#pragma once
#include "attention_plan.h"
#include "sparq/attention.h"
#include "sparq/context.h"

namespace sparq::attention_detail {

// attention() with precision fp32 (attention.cpp). Call with the context's mutex held.
AttentionPlan plan_dense(const char* op, Context& ctx, const TensorDesc& q, const TensorDesc& k,
                         const TensorDesc& v, const AttentionOptions& options);

// attention_paged() (attention_paged.cpp): kv's tensors give the pools' and tables' descriptors
// (checked for ownership, not read). lk, seq_lens and page_table stay empty.
AttentionPlan plan_paged(const char* op, Context& ctx, const TensorDesc& q, const PagedKV& kv,
                         const AttentionOptions& options);
// Downloads and checks kv.seq_lens / kv.page_table (data, so once per call) and sets lk.
void bind_paged_data(AttentionPlan& plan, const PagedKV& kv);
// The checks of bind_paged_data on plan.seq_lens / plan.page_table (host copies); sets lk.
void check_paged_tables(AttentionPlan& plan);

// attention_varlen() (attention_varlen.cpp): cu_seqlens descriptors only; lq, lk, cu_q, cu_k stay
// empty.
AttentionPlan plan_varlen(const char* op, Context& ctx, const TensorDesc& q, const TensorDesc& k,
                          const TensorDesc& v, const TensorDesc& cu_seqlens_q,
                          const TensorDesc& cu_seqlens_k, const AttentionOptions& options);
// Downloads and checks the offsets (Q has total_q rows, K total_k) and sets lq, lk.
void bind_varlen_data(AttentionPlan& plan, const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                      std::int64_t total_q, std::int64_t total_k);
// The checks of bind_varlen_data on plan.cu_q / plan.cu_k (host copies); sets lq and lk.
void check_varlen_offsets(AttentionPlan& plan, std::int64_t total_q, std::int64_t total_k);

}  // namespace sparq::attention_detail
