// sparq::Plan kinds of the quantized attention ops (op_plan.h):
//  - make_attention_plan with precision int8 / nvfp4: validated once, its workspace laid out
//    (quant_workspace.h); a run checks its tensors against the plan and runs the one-shot
//    pipeline (padding, quantizers, delta slices, kernel) into the plan's output with every
//    temporary in the workspace (the caller's, or the plan's own), so its bits are attention()'s;
//  - make_sage8_packed_plan: sage8_attention_packed validated once, with its own kernel object;
//    a run checks the packed tensors' descriptors and launches (run_sage8_slice, the one-shot
//    op's launch code, which sends Lq <= 127 to the decode kernel: its split-KV chunk states are
//    then regions of the workspace, SplitScratchScope).
#include <mutex>

#include "attention_access.h"
#include "attention_validate.h"
#include "errors.h"
#include "host/src/nvfp4/nvfp4_common.h"
#include "host/src/quant/quant_ops.h"
#include "op_plan.h"
#include "quant_decode.h"
#include "quant_workspace.h"
#include "sage8_attention.h"

namespace sparq {

using namespace attention_detail;
using plan_detail::check_planned_whole;
using plan_detail::PlannedQkv;

namespace {

struct QuantizedAttentionPlan : plan_detail::OpPlan {
  using OpPlan::OpPlan;
  using OpPlan::run;
  PlannedQkv qkv;
  AttentionOptions options;
  plan_detail::PlanWorkspace ws;  // every temporary of a run

  std::uint64_t workspace_bytes() const override { return ws.bytes(); }

  AttentionResult run(const Tensor& tq, const Tensor& tk, const Tensor& tv,
                      const PlanBuffers& buffers) override {
    constexpr const char* op = "attention plan";
    std::lock_guard lock(owner->mutex);
    qkv.check(op, tq, tk, tv, *owner);
    given_lse(op, buffers);  // refused: the quantized paths return no LSE
    const Tensor o = given_out(op, buffers);
    quant_detail::Scratch& scratch = ws.bind(op, buffers.workspace, owner);
    const SplitScratchScope scope(ctx, scratch);
    return {plan_detail::run_quantized(ctx, tq, tk, tv, options, nullptr, o, scratch), {}};
  }
};

struct Sage8PackedPlan : plan_detail::OpPlan {
  using OpPlan::OpPlan;
  using OpPlan::run;
  TensorDesc qc, qs, kc, ks, vc, vs, delta;  // delta: shape [] when planned without
  Sage8PackedCall call{};
  bool causal = false;
  cl::Kernel kernel;              // own object (device contexts; Lq > 127)
  plan_detail::PlanWorkspace ws;  // decode (Lq <= 127): the split-KV chunk states

  std::uint64_t workspace_bytes() const override { return ws.bytes(); }

  AttentionResult run(const Sage8Packed& p, const PlanBuffers& buffers) override {
    constexpr const char* op = "sage8_attention_packed plan";
    std::lock_guard lock(owner->mutex);
    check_planned_whole(op, "q.codes", p.q.codes, qc, *owner);
    check_planned_whole(op, "q.scales", p.q.scales, qs, *owner);
    check_planned_whole(op, "k.codes", p.k.codes, kc, *owner);
    check_planned_whole(op, "k.scales", p.k.scales, ks, *owner);
    check_planned_whole(op, "v.codes", p.v.codes, vc, *owner);
    check_planned_whole(op, "v.scales", p.v.scales, vs, *owner);
    const bool planned_delta = !delta.shape.empty();
    if (p.delta.defined() != planned_delta)
      rt::fail(ErrorCode::invalid_argument, op, "delta is {}; the plan was made {} delta",
               p.delta.defined() ? "given" : "missing", planned_delta ? "with" : "without");
    if (planned_delta) check_planned_whole(op, "delta", p.delta, delta, *owner);
    given_lse(op, buffers);
    Tensor o = given_out(op, buffers);
    if (!o.defined()) o = new_tensor(*owner, owner, DType::f32, out.shape);
    const SplitScratchScope scope(ctx, ws.bind(op, buffers.workspace, owner));
    Sage8Slice slice = call.slice;
    slice.delta = p.delta;
    run_sage8_slice(ctx, p, call.d, slice, causal, call.c, o, nullptr,
                    kernel() ? &kernel : nullptr);
    return {o, {}};
  }
};

}  // namespace

namespace plan_detail {

Plan make_quantized_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                   const TensorDesc& v, const AttentionOptions& options) {
  constexpr const char* op = "attention";
  check_masks_precision(op, options);
  if (options.precision == Precision::int8)
    validate_sage8(op, q, k, v, options, max_alloc(*ctx.impl()), true);
  else
    nvfp4_detail::validate_nvfp4(ctx, q, k, v, options);
  auto p = std::make_shared<QuantizedAttentionPlan>(ctx, "make_attention_plan", "run(q, k, v)");
  p->qkv = {q, k, v};
  p->options = options;
  p->ws.set_layout(workspace_layout(*ctx.impl(), q, k, v, options, false));
  p->out = contiguous_desc(DType::f32, {q.shape[0], q.shape[1], q.shape[2], q.shape[3]});
  return make_plan(std::move(p));
}

}  // namespace plan_detail

Plan make_sage8_packed_plan(Context& ctx, const Sage8Packed& packed,
                            const AttentionOptions& options) {
  constexpr const char* op = "sage8_attention_packed";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  auto p = std::make_shared<Sage8PackedPlan>(ctx, "make_sage8_packed_plan", "run(packed)");
  p->call = check_sage8_packed(op, packed, options, impl);
  p->call.slice.delta = Tensor();  // the plan keeps no tensor of the example
  p->causal = options.causal;
  p->qc = packed.q.codes.desc();
  p->qs = packed.q.scales.desc();
  p->kc = packed.k.codes.desc();
  p->ks = packed.k.scales.desc();
  p->vc = packed.v.codes.desc();
  p->vs = packed.v.scales.desc();
  if (packed.delta.defined()) p->delta = packed.delta.desc();
  const Sage8Dims& d = p->call.d;
  p->out = plan_detail::contiguous_desc(DType::f32, {d.batch, d.hq, d.lq, d.d});
  quant_detail::ScratchLayout layout;
  layout.align = plan_detail::workspace_align(impl);
  if (d.lq <= kQuantDecodeMaxRows)
    quant_decode_layout(layout, d.batch * d.hq * d.lq, d.lk, d.d, max_alloc(impl));
  p->ws.set_layout(std::move(layout));
  if (impl.device && d.lq > kQuantDecodeMaxRows) p->kernel = own_sage8_kernel(*impl.device, d.d);
  return plan_detail::make_plan(std::move(p));
}

}  // namespace sparq
