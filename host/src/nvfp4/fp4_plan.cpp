// make_fp4_packed_plan (sparq/plan.h): fp4_attention_packed validated once (check_fp4_packed),
// with its own kernel object; a run checks the packed tensors' descriptors and launches through
// run_fp4_attention, the one-shot op's launch code, which sends Lq <= 127 to the decode kernel:
// its split-KV chunk states are then regions of the plan's workspace (SplitScratchScope).
#include <mutex>

#include "host/src/attention/op_plan.h"
#include "host/src/attention/quant_decode.h"
#include "host/src/attention/quant_workspace.h"
#include "nvfp4_common.h"

namespace sparq {

using namespace nvfp4_detail;
using plan_detail::check_planned_whole;

namespace {

struct Fp4PackedPlan : plan_detail::OpPlan {
  using OpPlan::OpPlan;
  using OpPlan::run;
  TensorDesc qc, qs, kc, ks, vc, vs, delta;  // delta: shape [] when planned without
  Fp4Plan plan;                              // tensors reset
  cl::Kernel kernel;                         // own object (device contexts; Lq > 127)
  plan_detail::PlanWorkspace ws;             // decode (Lq <= 127): the split-KV chunk states

  std::uint64_t workspace_bytes() const override { return ws.bytes(); }

  AttentionResult run(const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v, const Tensor* d,
                      const PlanBuffers& buffers) override {
    constexpr const char* op = "fp4_attention_packed plan";
    std::lock_guard lock(owner->mutex);
    check_planned_whole(op, "q.codes", q.codes, qc, *owner);
    check_planned_whole(op, "q.scales", q.scales, qs, *owner);
    check_planned_whole(op, "k.codes", k.codes, kc, *owner);
    check_planned_whole(op, "k.scales", k.scales, ks, *owner);
    check_planned_whole(op, "v.codes", v.codes, vc, *owner);
    check_planned_whole(op, "v.scales", v.scales, vs, *owner);
    if (v.tokens != plan.lk)
      rt::fail(ErrorCode::shape_mismatch, op, "v.tokens is {}; the plan was made for {}", v.tokens,
               plan.lk);
    const bool planned_delta = !delta.shape.empty();
    if ((d != nullptr) != planned_delta)
      rt::fail(ErrorCode::invalid_argument, op, "delta is {}; the plan was made {} delta",
               d ? "given" : "missing", planned_delta ? "with" : "without");
    if (d) check_planned_whole(op, "delta", *d, delta, *owner);
    given_lse(op, buffers);
    Tensor o = given_out(op, buffers);
    if (!o.defined()) o = new_tensor(ctx, DType::f32, out.shape);
    Fp4Plan p = plan;
    p.q = q;
    p.k = k;
    p.v = v;
    if (d) p.delta = *d;
    const attention_detail::SplitScratchScope scope(ctx, ws.bind(op, buffers.workspace, owner));
    run_fp4_attention(ctx, p, o, nullptr, kernel() ? &kernel : nullptr);
    return {o, {}};
  }
};

}  // namespace

Plan make_fp4_packed_plan(Context& ctx, const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
                          const Tensor* delta, const AttentionOptions& options) {
  constexpr const char* op = "fp4_attention_packed";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  auto p = std::make_shared<Fp4PackedPlan>(ctx, "make_fp4_packed_plan", "run(q, k, v, delta)");
  p->plan = check_fp4_packed(op, impl, q, k, v, delta, options);
  p->plan.q = p->plan.k = Fp4Packed{};
  p->plan.v = Fp4PackedT{};
  p->plan.delta = Tensor();
  p->qc = q.codes.desc();
  p->qs = q.scales.desc();
  p->kc = k.codes.desc();
  p->ks = k.scales.desc();
  p->vc = v.codes.desc();
  p->vs = v.scales.desc();
  if (delta) p->delta = delta->desc();
  p->out =
      plan_detail::contiguous_desc(DType::f32, {p->plan.batch, p->plan.hq, p->plan.lq, p->plan.d});
  quant_detail::ScratchLayout layout;
  layout.align = plan_detail::workspace_align(impl);
  const bool decode = p->plan.lq <= attention_detail::kQuantDecodeMaxRows;
  if (decode)
    attention_detail::quant_decode_layout(
        layout, std::int64_t{p->plan.batch} * p->plan.hq * p->plan.lq, p->plan.lk, p->plan.d,
        impl.device ? impl.info.max_alloc_bytes : 0);
  p->ws.set_layout(std::move(layout));
  if (impl.device && !decode) p->kernel = own_fp4_kernel(impl, p->plan.d);
  return plan_detail::make_plan(std::move(p));
}

}  // namespace sparq
