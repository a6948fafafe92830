// The parts of op_plan.h that every plan kind shares: the planned-descriptor checks, the runs a
// kind does not serve (refused, naming the maker and the run to call) and the caller's outputs.
#include "op_plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "device_runtime.h"
#include "errors.h"

namespace sparq::plan_detail {

void check_planned(const char* op, const char* arg, const Tensor& t, const TensorDesc& want,
                   const detail::ContextImpl& ctx) {
  detail::check_tensor_owner(op, arg, t, ctx);
  if (t.dtype() == want.dtype && t.shape() == want.shape && t.strides() == want.strides) return;
  TensorDesc got = t.desc();
  got.offset = 0;
  rt::fail(ErrorCode::shape_mismatch, op,
           "{} is {}; the plan was made for {} (dtype, shape and strides must match; the offset "
           "may differ)",
           arg, got.describe(), want.describe());
}

void check_planned_whole(const char* op, const char* arg, const Tensor& t, const TensorDesc& want,
                         const detail::ContextImpl& ctx) {
  check_planned(op, arg, t, want, ctx);
  if (t.offset() != 0)
    rt::fail(ErrorCode::shape_mismatch, op,
             "{} starts at element offset {}; this op reads whole tensors (offset 0)", arg,
             t.offset());
}

std::uint64_t workspace_align(const detail::ContextImpl& ctx) {
  constexpr std::uint64_t kMinAlign = 4096;
  if (!ctx.device) return kMinAlign;
  const auto bits = ctx.device->device().getInfo<CL_DEVICE_MEM_BASE_ADDR_ALIGN>();
  return std::max<std::uint64_t>(kMinAlign, bits / 8);
}

void check_workspace(const char* op, const Tensor& ws, std::uint64_t bytes, std::uint64_t align,
                     const detail::ContextImpl& ctx) {
  detail::check_tensor_owner(op, "buffers.workspace", ws, ctx);
  const char* wrong = nullptr;
  if (ws.dtype() != DType::u8)
    wrong = "its dtype is not u8";
  else if (ws.rank() != 1 || ws.strides()[0] != 1)
    wrong = "it is not a contiguous 1-d tensor";
  else if (static_cast<std::uint64_t>(ws.dim(0)) < bytes)
    wrong = "it is too small";
  else if (static_cast<std::uint64_t>(ws.offset()) % align != 0)
    wrong = "its offset is not a multiple of the alignment";
  if (wrong)
    rt::fail(ErrorCode::shape_mismatch, op,
             "buffers.workspace is {} ({}); expected contiguous u8[>= {}] (workspace_bytes()) "
             "with an offset that is a multiple of {}",
             ws.desc().describe(), wrong, bytes, align);
}

namespace {

[[noreturn]] void refuse(const char* op_name, const OpPlan& p) {
  rt::fail(ErrorCode::invalid_argument, op_name, "this plan was made by {}; call {}", p.maker,
           p.run_call);
}

}  // namespace

AttentionResult OpPlan::run(const Tensor&, const Tensor&, const Tensor&, const PlanBuffers&) {
  refuse("attention plan", *this);
}
AttentionResult OpPlan::run(const Tensor&, const Tensor&, const Tensor&, const SparseIndex&,
                            const PlanBuffers&) {
  refuse("attention (sparse) plan", *this);
}
AttentionResult OpPlan::run(const Sage8Packed&, const PlanBuffers&) {
  refuse("sage8_attention_packed plan", *this);
}
AttentionResult OpPlan::run(const Fp4Packed&, const Fp4Packed&, const Fp4PackedT&, const Tensor*,
                            const PlanBuffers&) {
  refuse("fp4_attention_packed plan", *this);
}

Tensor OpPlan::given_out(const char* op, const PlanBuffers& buffers) const {
  if (!buffers.out.defined()) return {};
  check_planned_whole(op, "buffers.out", buffers.out, out, *owner);
  return buffers.out;
}

Tensor OpPlan::given_lse(const char* op, const PlanBuffers& buffers) const {
  if (!buffers.lse.defined()) return {};
  if (lse.shape.empty())
    rt::fail(ErrorCode::invalid_argument, op,
             "buffers.lse is given but the plan was made without options.return_lse");
  check_planned_whole(op, "buffers.lse", buffers.lse, lse, *owner);
  return buffers.lse;
}

}  // namespace sparq::plan_detail
