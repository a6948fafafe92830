// The workspace of the quantized plans (sparq/plan.h): make_attention_plan and
// make_sparse_attention_plan with precision int8 / nvfp4, make_sage8_packed_plan and
// make_fp4_packed_plan. A run's temporaries (zero-padded Q/K/V and output, smoothing means,
// quantized Q/K/V codes and scales, delta slices, split-KV chunk states) come from a
// quant_detail::Scratch whose layout is planned here from the descriptors, in the order the
// pipelines ask for them; a device plan carves them from the caller's workspace, or from its own
// (allocated on the first run without one, then kept).
#pragma once
#include <cstdint>
#include <memory>

#include "context_impl.h"
#include "host/src/quant/quant_ops.h"
#include "sparq/attention.h"
#include "sparq/sparse.h"

namespace sparq::plan_detail {

// Every temporary of one attention(q, k, v, options) run with precision int8 / nvfp4 (sparse:
// over a SparseIndex, which never runs the split decode kernels), for validated descriptors;
// with precision fp32 (sparse plans), the zero-padded copies only (none for D = 64 / 128).
quant_detail::ScratchLayout workspace_layout(const detail::ContextImpl& ctx, const TensorDesc& q,
                                             const TensorDesc& k, const TensorDesc& v,
                                             const AttentionOptions& options, bool sparse);

// That run: Q/K/V zero-padded into scratch when the head dim has no kernel (head_dim_pad.h),
// the one-shot pipeline (sage8_attention / attention_nvfp4) on scratch, the f32 result written to
// out (undefined: a new tensor). Same bits as attention(). Call with the context's mutex held.
Tensor run_quantized(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                     const AttentionOptions& options, const SparseIndex* index, Tensor out,
                     quant_detail::Scratch& scratch);

// A plan's scratch and the workspace it is carved from.
class PlanWorkspace {
 public:
  // Plans the layout (align: workspace_align of the plan's context).
  void set_layout(quant_detail::ScratchLayout layout);
  std::uint64_t bytes() const { return scratch_.layout().bytes; }
  // Before a run (mutex held): checks a given workspace (also on the fallback, whose executor
  // keeps its own temporaries), binds the device scratch to it or to the plan's own, restarts.
  quant_detail::Scratch& bind(const char* op, const Tensor& given,
                              const std::shared_ptr<detail::ContextImpl>& owner);
  const quant_detail::Scratch& scratch() const { return scratch_; }

 private:
  quant_detail::Scratch scratch_;
  Tensor own_;
};

}  // namespace sparq::plan_detail
