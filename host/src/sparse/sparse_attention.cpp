// sparq::attention over a SparseIndex (spec §3): validate Q/K/V and the index against the call
// (and invariants 1-8 for an index that sparq's builders did not make), then sparse_prefill.cl
// or its fallback.
#include <mutex>

#include "fallback_cpu/sparse/sparse_fallback.h"
#include "host/src/attention/attention_access.h"
#include "host/src/attention/attention_validate.h"
#include "host/src/attention/head_dim_pad.h"
#include "host/src/attention/sage8_attention.h"
#include "host/src/nvfp4/nvfp4_common.h"
#include "sparse_common.h"
#include "sparse_kernels.h"
#include "sparse_prefill_launch.h"

namespace sparq {

using namespace sparse_detail;

namespace sparse_detail {

std::vector<rt::KernelVariant> sparse_kernel_variants() {
  // GPU (portable: no NVIDIA register cap) and CPU, as attention_kernel_variants().
  return {
      {PrefillKernelConfig::source, PrefillKernelConfig::for_device(64, true, false).defines()},
      {PrefillKernelConfig::source, PrefillKernelConfig::for_device(128, true, false).defines()},
      {PrefillKernelConfig::source, PrefillKernelConfig::for_device(64, false, false).defines()},
      {PrefillKernelConfig::source, PrefillKernelConfig::for_device(128, false, false).defines()},
      {BuildKernelConfig::source, BuildKernelConfig::defines()}};
}

}  // namespace sparse_detail

namespace {

constexpr const char* kAttOp = "attention (sparse)";

}  // namespace

namespace sparse_detail {

using attention_detail::AttentionDims;

AttentionDims check_sparse_call(const char* op, const TensorDesc& q, const TensorDesc& k,
                                const TensorDesc& v, const AttentionOptions& options,
                                const detail::ContextImpl& impl) {
  using namespace attention_detail;
  AttentionOptions fp32 = options;  // the checks up to the precision routing are precision-free
  fp32.precision = Precision::fp32;
  const AttentionDims d = validate_dense(op, q, k, v, fp32, max_alloc(impl));
  if (kernel_head_dim(d.d) == 0)
    rt::fail(ErrorCode::unsupported, op,
             "head dim D = {}; sparse attention supports 1 to 128 (64 and 128 natively, others by "
             "exact zero-padding)",
             d.d);
  if (options.out_dtype != DType::f32)
    rt::fail(ErrorCode::unsupported, op, "out_dtype {}; the sparse kernel writes f32",
             dtype_name(options.out_dtype));
  require(op, d.lq <= d.lk, "Lq = {} > Lk = {}; sparse prefill needs Lq <= Lk", d.lq, d.lk);
  check_masks_precision(op, options);  // masks: fp32 only, before any quantized branch
  if (options.precision != Precision::int8 && options.precision != Precision::nvfp4)
    check_fp32_precision(op, options);
  return d;
}

AttentionResult execute_sparse_prefill(Context& ctx, const Tensor& q, const Tensor& k,
                                       const Tensor& v, const SparseIndex& x,
                                       const AttentionDims& d, const AttentionOptions& options,
                                       const attention_detail::HookPlan& hooks,
                                       std::int64_t scale_dim, const AttentionResult& into,
                                       quant_detail::Scratch* scratch) {
  using namespace attention_detail;
  if (options.precision == Precision::int8)
    return sage8_attention(ctx, q, k, v, options, &x, 0, into.out, scratch);
  if (options.precision == Precision::nvfp4)
    return {nvfp4_detail::attention_nvfp4(ctx, q, k, v, options, 0, -1, &x, 0, into.out, scratch),
            Tensor()};
  if (const std::int64_t kd = kernel_head_dim(d.d); kd != d.d) {  // exact zero-padding
    AttentionDims pd = d;
    pd.d = kd;
    AttentionResult r = execute_sparse_prefill(ctx, pad_head_dim(ctx, q, kd),
                                               pad_head_dim(ctx, k, kd), pad_head_dim(ctx, v, kd),
                                               x, pd, options, hooks, d.d, {Tensor(), into.lse});
    r.out = unpad_head_dim(ctx, r.out, d.d, into.out);
    return r;
  }
  const float c = scale_constant(kAttOp, options.scale, scale_dim ? scale_dim : d.d);
  SparseKv kv;
  kv.k = k;
  kv.v = v;
  kv.k_at = access_bhld(k);
  kv.v_at = access_bhld(v);
  return launch_sparse_prefill(ctx, kAttOp, q, kv, x, d, options, c, hooks, into);
}

// The kernel over a validated call (also used by the pattern overload).
AttentionResult run_sparse_prefill(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                   const SparseIndex& x, const AttentionOptions& options) {
  using namespace attention_detail;
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(kAttOp, "Q", q, impl);
  detail::check_tensor_owner(kAttOp, "K", k, impl);
  detail::check_tensor_owner(kAttOp, "V", v, impl);
  const AttentionDims d = check_sparse_call(kAttOp, q.desc(), k.desc(), v.desc(), options, impl);
  check_index_for_call(kAttOp, x, d, options, impl);
  const HookPlan hooks = options.precision == Precision::fp32
                             ? plan_hooks(kAttOp, ctx, options, d.batch, d.hq, d.lk, false, false)
                             : HookPlan{};
  return execute_sparse_prefill(ctx, q, k, v, x, d, options, hooks, 0, {});
}

}  // namespace sparse_detail

AttentionResult attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                          const SparseIndex& index, const AttentionOptions& options) {
  attention_detail::check_masks_precision(kAttOp, options);
  return run_sparse_prefill(ctx, q, k, v, index, options);
}

}  // namespace sparq
