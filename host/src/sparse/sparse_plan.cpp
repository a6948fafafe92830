// make_sparse_attention_plan (sparq/plan.h): attention(q, k, v, index) validated once on the
// descriptors (check_sparse_call) with its mask hooks planned (alibi slopes and sinks read once);
// a run checks Q, K, V against the plan and the run's index against the planned call (its
// tensors, and invariants 1-8 for an index sparq's builders did not make, as the one-shot op),
// then runs execute_sparse_prefill, the one-shot op's routing and launch, into the plan's
// outputs. A pattern plan builds each run's index first (attention(q, k, v, pattern)).
#include <mutex>
#include <optional>

#include "errors.h"
#include "host/src/attention/attention_access.h"
#include "host/src/attention/head_dim_pad.h"
#include "host/src/attention/op_plan.h"
#include "host/src/attention/quant_workspace.h"
#include "host/src/quant/quant_ops.h"
#include "sparse_prefill_launch.h"

namespace sparq {

using namespace attention_detail;
using plan_detail::PlannedQkv;

namespace {

constexpr const char* kOp = "attention (sparse)";

struct SparsePlan : plan_detail::OpPlan {
  using OpPlan::OpPlan;
  using OpPlan::run;
  PlannedQkv qkv;
  AttentionOptions options;
  AttentionDims d;
  HookPlan hooks;
  std::optional<Pattern> pattern;  // pattern plans: each run builds its index
  plan_detail::PlanWorkspace ws;   // every temporary of a run (fp32: the padded copies)
  IndexOptions index_options;

  std::uint64_t workspace_bytes() const override { return ws.bytes(); }

  AttentionResult run(const Tensor& tq, const Tensor& tk, const Tensor& tv,
                      const PlanBuffers& buffers) override {
    if (!pattern) return OpPlan::run(tq, tk, tv, buffers);
    constexpr const char* op = "attention (sparse) plan";
    std::lock_guard lock(owner->mutex);
    qkv.check(op, tq, tk, tv, *owner);
    const SparseIndex x = build_index(ctx, tq, tk, *pattern, index_options);
    if (!x.qpos.defined()) return run_index(op, tq, tk, tv, x, buffers);
    if (buffers.out.defined() || buffers.lse.defined())  // Grid (§7): permuted order
      rt::fail(ErrorCode::unsupported, op,
               "buffers.out / buffers.lse with a Grid pattern (permuted order): not supported");
    return permuted_attention(ctx, tq, tk, tv, x, options);
  }

  AttentionResult run(const Tensor& tq, const Tensor& tk, const Tensor& tv, const SparseIndex& x,
                      const PlanBuffers& buffers) override {
    constexpr const char* op = "attention (sparse) plan";
    if (pattern) return OpPlan::run(tq, tk, tv, x, buffers);
    std::lock_guard lock(owner->mutex);
    qkv.check(op, tq, tk, tv, *owner);
    return run_index(op, tq, tk, tv, x, buffers);
  }

  AttentionResult run_index(const char* op, const Tensor& tq, const Tensor& tk, const Tensor& tv,
                            const SparseIndex& x, const PlanBuffers& buffers) {
    sparse_detail::check_index_for_call(op, x, d, options, *owner);
    const AttentionResult into{given_out(op, buffers), given_lse(op, buffers)};
    if (options.precision == Precision::int8 || options.precision == Precision::nvfp4) {
      quant_detail::Scratch& scratch = ws.bind(op, buffers.workspace, owner);
      return {plan_detail::run_quantized(ctx, tq, tk, tv, options, &x, into.out, scratch), {}};
    }
    const std::int64_t kd = kernel_head_dim(d.d);
    if (kd == d.d)
      return sparse_detail::execute_sparse_prefill(ctx, tq, tk, tv, x, d, options, hooks, 0, into);
    // The one-shot op's zero-padding (execute_sparse_prefill), its copies in the workspace.
    quant_detail::Scratch& scratch = ws.bind(op, buffers.workspace, owner);
    const auto padded = [&](const Tensor& t) {
      return pad_head_dim(ctx, t, kd,
                          scratch.get(ctx, t.dtype(), {t.dim(0), t.dim(1), t.dim(2), kd}));
    };
    const Tensor pq = padded(tq), pk = padded(tk), pv = padded(tv);
    const Tensor po = scratch.get(ctx, DType::f32, {d.batch, d.hq, d.lq, kd});
    AttentionDims pd = d;
    pd.d = kd;
    AttentionResult r = sparse_detail::execute_sparse_prefill(ctx, pq, pk, pv, x, pd, options,
                                                              hooks, d.d, {po, into.lse});
    r.out = unpad_head_dim(ctx, po, d.d, into.out);
    return r;
  }
};

// The plan of both makers without its index or pattern.
std::shared_ptr<SparsePlan> make_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                      const TensorDesc& v, const AttentionOptions& options,
                                      const char* run_call) {
  auto p = std::make_shared<SparsePlan>(ctx, "make_sparse_attention_plan", run_call);
  p->d = sparse_detail::check_sparse_call(kOp, q, k, v, options, *ctx.impl());
  if (options.precision == Precision::fp32)
    p->hooks = plan_hooks(kOp, ctx, options, p->d.batch, p->d.hq, p->d.lk, false, false);
  p->qkv = {q, k, v};
  p->options = options;
  p->ws.set_layout(plan_detail::workspace_layout(*ctx.impl(), q, k, v, options, true));
  p->out = plan_detail::contiguous_desc(DType::f32, {p->d.batch, p->d.hq, p->d.lq, p->d.d});
  if (options.return_lse)
    p->lse = plan_detail::contiguous_desc(DType::f32, {p->d.batch, p->d.hq, p->d.lq});
  return p;
}

}  // namespace

Plan make_sparse_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                const TensorDesc& v, const SparseIndex& index,
                                const AttentionOptions& options) {
  std::lock_guard lock(ctx.impl()->mutex);
  auto p = make_plan(ctx, q, k, v, options, "run_sparse(q, k, v, index)");
  sparse_detail::check_index_meta(kOp, index, p->d, options);
  return plan_detail::make_plan(std::move(p));
}

Plan make_sparse_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                const TensorDesc& v, const Pattern& pattern,
                                const AttentionOptions& options,
                                const IndexOptions& index_options) {
  std::lock_guard lock(ctx.impl()->mutex);
  auto p = make_plan(ctx, q, k, v, options, "run(q, k, v)");
  p->pattern = pattern;
  p->index_options = index_options;
  p->index_options.causal = options.causal;  // as attention(q, k, v, pattern)
  return plan_detail::make_plan(std::move(p));
}

}  // namespace sparq
