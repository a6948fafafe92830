// sparq::attention (dense, batched) and supports_attention: validate -> plan -> run. plan_dense
// is shared with sparq::Plan (plan.cpp).
#include "sparq/attention.h"

#include <mutex>

#include "attention_access.h"
#include "attention_plan.h"
#include "attention_validate.h"
#include "host/src/nvfp4/nvfp4_common.h"
#include "plan_builders.h"
#include "sage8_attention.h"

namespace sparq {

using namespace attention_detail;

namespace attention_detail {

AttentionPlan plan_dense(const char* op, Context& ctx, const TensorDesc& q, const TensorDesc& k,
                         const TensorDesc& v, const AttentionOptions& options) {
  auto& impl = *ctx.impl();
  const AttentionDims d = validate_dense(op, q, k, v, options, max_alloc(impl));
  AttentionPlan p;
  p.op = op;
  p.mode = KvMode::contiguous;
  p.batch = static_cast<int>(d.batch);
  p.hq = static_cast<int>(d.hq);
  p.hkv = static_cast<int>(d.hkv);
  p.head_dim = static_cast<int>(d.d);
  p.lq = d.lq;
  p.lk = d.lk;
  p.causal = options.causal;
  p.c = scale_constant(op, options.scale, d.d);
  p.hooks = plan_hooks(op, ctx, options, d.batch, d.hq, d.lk, false, false);
  p.q = Tensor(nullptr, q);
  p.k = Tensor(nullptr, k);
  p.v = Tensor(nullptr, v);
  p.q_at = access_bhld(p.q);
  p.k_at = access_bhld(p.k);
  p.v_at = access_bhld(p.v);
  p.out_dtype = options.out_dtype;
  p.out = Tensor(nullptr, TensorDesc{options.out_dtype, {d.batch, d.hq, d.lq, d.d}, {}, 0});
  p.out_at = access_bhld(p.out);
  if (options.return_lse) {
    p.lse = Tensor(nullptr, TensorDesc{DType::f32, {d.batch, d.hq, d.lq}, {}, 0});
    p.lse_at = {DType::f32, 0, d.hq * d.lq, 1, d.lq};
  }
  return p;
}

}  // namespace attention_detail

AttentionResult attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                          const AttentionOptions& options) {
  check_masks_precision("attention", options);
  if (options.precision == Precision::int8) return sage8_attention(ctx, q, k, v, options);
  if (options.precision == Precision::nvfp4) {
    std::lock_guard lock(ctx.impl()->mutex);
    return {nvfp4_detail::attention_nvfp4(ctx, q, k, v, options), Tensor()};
  }
  constexpr const char* op = "attention";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "Q", q, impl);
  detail::check_tensor_owner(op, "K", k, impl);
  detail::check_tensor_owner(op, "V", v, impl);
  AttentionPlan p = plan_dense(op, ctx, q.desc(), k.desc(), v.desc(), options);
  p.q = q;
  p.k = k;
  p.v = v;
  p.q_at = access_bhld(q);
  p.k_at = access_bhld(k);
  p.v_at = access_bhld(v);
  p.out = new_tensor(impl, ctx.impl(), options.out_dtype, p.out.shape());
  p.out_at = access_bhld(p.out);
  if (options.return_lse) p.lse = new_tensor(impl, ctx.impl(), DType::f32, p.lse.shape());
  run_attention(impl, p);
  return {p.out, p.lse};
}

Support supports_attention(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                           const TensorDesc& v, const AttentionOptions& options) {
  if (masks_requested(options.masks) && options.precision != Precision::fp32)
    return support_of([&] { check_masks_precision("attention", options); });
  if (options.precision == Precision::int8) return supports_sage8(ctx, q, k, v, options);
  if (options.precision == Precision::nvfp4)
    return support_of([&] { nvfp4_detail::validate_nvfp4(ctx, q, k, v, options); });
  return support_of([&] { validate_dense("attention", q, k, v, options, max_alloc(*ctx.impl())); });
}

}  // namespace sparq
