// sparq::Plan kinds beyond plan.cpp's fp32 attention (dense, paged, varlen): quantized
// attention, packed int8 / NVFP4 attention and sparse prefill. Each kind derives from OpPlan in
// its op's own plan file (quant_plans.cpp, nvfp4/fp4_plan.cpp, sparse/sparse_plan.cpp) and
// overrides the run it serves; the others refuse, naming the maker and the run to call.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "context_impl.h"
#include "sparq/plan.h"

namespace sparq::plan_detail {

struct OpPlan {
  OpPlan(Context& c, const char* made_by, const char* run)
      : ctx(c), owner(c.impl()), maker(made_by), run_call(run) {}
  virtual ~OpPlan() = default;
  Context ctx;  // a copy: the op functions take a Context
  std::shared_ptr<detail::ContextImpl> owner;
  const char* maker;     // the make_*_plan function that made it
  const char* run_call;  // the Plan::run a caller uses with it
  TensorDesc out, lse;   // contiguous; lse shape [] unless options.return_lse

  virtual std::uint64_t workspace_bytes() const { return 0; }

  virtual AttentionResult run(const Tensor& q, const Tensor& k, const Tensor& v,
                              const PlanBuffers& buffers);
  virtual AttentionResult run(const Tensor& q, const Tensor& k, const Tensor& v,
                              const SparseIndex& index, const PlanBuffers& buffers);
  virtual AttentionResult run(const Sage8Packed& packed, const PlanBuffers& buffers);
  virtual AttentionResult run(const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
                              const Tensor* delta, const PlanBuffers& buffers);

  // The run's outputs: buffers.out / buffers.lse checked against out / lse (dtype, shape and
  // strides; offset 0), or undefined where not given (the op allocates). The caller holds the
  // context's mutex.
  Tensor given_out(const char* op, const PlanBuffers& buffers) const;
  Tensor given_lse(const char* op, const PlanBuffers& buffers) const;
};

// A contiguous descriptor (offset 0).
inline TensorDesc contiguous_desc(DType t, std::vector<std::int64_t> shape) {
  return Tensor(nullptr, TensorDesc{t, std::move(shape), {}, 0}).desc();
}

// Workspace regions start at multiples of this (bytes): CL_DEVICE_MEM_BASE_ADDR_ALIGN of ctx's
// device (the sub-buffer origin rule), at least 4096; 4096 on the fallback.
std::uint64_t workspace_align(const detail::ContextImpl& ctx);
// A caller's workspace for a plan needing `bytes` (> 0): owned by ctx, contiguous u8 [n] with
// n >= bytes, its offset a multiple of align; sparq::Error naming op and buffers.workspace.
void check_workspace(const char* op, const Tensor& ws, std::uint64_t bytes, std::uint64_t align,
                     const detail::ContextImpl& ctx);

// A Plan holding `op` (made with the context's mutex held).
Plan make_plan(std::shared_ptr<OpPlan> op);

// make_attention_plan with precision int8 or nvfp4 (quant_plans.cpp); the mutex is held.
Plan make_quantized_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                   const TensorDesc& v, const AttentionOptions& options);

// dtype, shape and strides of `t` equal `want`'s (the offset may differ); sparq::Error naming
// `op` and `arg` otherwise.
void check_planned(const char* op, const char* arg, const Tensor& t, const TensorDesc& want,
                   const detail::ContextImpl& ctx);
// Q, K, V descriptors of a plan and the check of a run's tensors against them.
struct PlannedQkv {
  TensorDesc q, k, v;
  void check(const char* op, const Tensor& tq, const Tensor& tk, const Tensor& tv,
             const detail::ContextImpl& ctx) const {
    check_planned(op, "Q", tq, q, ctx);
    check_planned(op, "K", tk, k, ctx);
    check_planned(op, "V", tv, v, ctx);
  }
};
// The same with offset 0 (kernels that take whole tensors, e.g. the packed inputs).
void check_planned_whole(const char* op, const char* arg, const Tensor& t, const TensorDesc& want,
                         const detail::ContextImpl& ctx);

}  // namespace sparq::plan_detail
