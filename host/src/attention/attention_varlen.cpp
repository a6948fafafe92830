// sparq::attention_varlen: packed sequences (FlashAttention's varlen layout). The offsets are
// downloaded and validated on the host before any kernel reads them. plan_varlen (descriptors)
// and bind_varlen_data (offsets) are shared with sparq::Plan.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "attention_access.h"
#include "attention_plan.h"
#include "attention_validate.h"
#include "errors.h"
#include "plan_builders.h"
#include "sparq/attention.h"

namespace sparq {

using namespace attention_detail;

namespace {

// cu[0] == 0, ascending (equal entries = empty sequences), last == total.
void check_offsets(const char* op, const char* arg, const std::vector<std::int32_t>& cu,
                   std::int64_t total, const char* total_name) {
  if (cu[0] != 0)
    rt::fail(ErrorCode::invalid_argument, op, "{}[0] is {}; it must be 0", arg, cu[0]);
  for (std::size_t i = 1; i < cu.size(); ++i)
    if (cu[i] < cu[i - 1])
      rt::fail(ErrorCode::invalid_argument, op,
               "{}[{}] = {} is less than {}[{}] = {}; offsets must be ascending", arg, i, cu[i],
               arg, i - 1, cu[i - 1]);
  if (cu.back() != total)
    rt::fail(ErrorCode::invalid_argument, op, "{}'s last entry is {} but {} has {} rows", arg,
             cu.back(), total_name, total);
}

std::int64_t longest(const std::vector<std::int32_t>& cu) {
  std::int64_t m = 0;
  for (std::size_t i = 1; i < cu.size(); ++i) m = std::max<std::int64_t>(m, cu[i] - cu[i - 1]);
  return m;
}

}  // namespace

namespace attention_detail {

AttentionPlan plan_varlen(const char* op, Context& ctx, const TensorDesc& q_desc,
                          const TensorDesc& k_desc, const TensorDesc& v_desc,
                          const TensorDesc& cu_q_desc, const TensorDesc& cu_k_desc,
                          const AttentionOptions& options) {
  auto& impl = *ctx.impl();
  // Descriptors only (no storage): the checks below read shapes and strides.
  const Tensor q(nullptr, q_desc), k(nullptr, k_desc), v(nullptr, v_desc);
  const Tensor cu_seqlens_q(nullptr, cu_q_desc), cu_seqlens_k(nullptr, cu_k_desc);
  check_float_tensor(op, "Q", q.desc(), 3, "[total_q, Hq, D]");
  check_float_tensor(op, "K", k.desc(), 3, "[total_k, Hkv, D]");
  check_float_tensor(op, "V", v.desc(), 3, "[total_k, Hkv, D]");
  if (k.shape() != v.shape())
    rt::fail(ErrorCode::shape_mismatch, op, "V has shape [{}], K has [{}]; they must match",
             fmt::join(v.shape(), ", "), fmt::join(k.shape(), ", "));
  const std::int64_t total_q = q.dim(0), hq = q.dim(1), d = q.dim(2);
  const std::int64_t total_k = k.dim(0), hkv = k.dim(1);
  if (k.dim(2) != d)
    rt::fail(ErrorCode::shape_mismatch, op, "K has head dim {}, Q has {}; they must match",
             k.dim(2), d);
  check_heads(op, hq, hkv);
  check_head_dim(op, "Q", d);
  check_length(op, "total_q", total_q);
  check_length(op, "total_k", total_k);
  check_out_dtype(op, options.out_dtype);
  check_fp32_precision(op, options);
  const float c = scale_constant(op, options.scale, d);
  check_index_tensor(op, "cu_seqlens_q", cu_seqlens_q.desc(), 1, "[num_seqs + 1]");
  check_index_tensor(op, "cu_seqlens_k", cu_seqlens_k.desc(), 1, "[num_seqs + 1]");
  if (cu_seqlens_q.dim(0) != cu_seqlens_k.dim(0))
    rt::fail(ErrorCode::shape_mismatch, op,
             "cu_seqlens_q has {} entries, cu_seqlens_k has {}; they must match",
             cu_seqlens_q.dim(0), cu_seqlens_k.dim(0));
  if (cu_seqlens_q.dim(0) < 2)
    rt::fail(ErrorCode::shape_mismatch, op,
             "cu_seqlens_q has {} entries; expected num_seqs + 1 >= 2", cu_seqlens_q.dim(0));
  check_length(op, "num_seqs * Hq", (cu_seqlens_q.dim(0) - 1) * hq);
  check_alloc(op, "output O", options.out_dtype, {total_q, hq, d}, max_alloc(impl));

  AttentionPlan p;
  p.op = op;
  p.mode = KvMode::varlen;
  p.batch = static_cast<int>(cu_seqlens_q.dim(0) - 1);
  p.hq = static_cast<int>(hq);
  p.hkv = static_cast<int>(hkv);
  p.head_dim = static_cast<int>(d);
  p.causal = options.causal;
  p.c = c;
  // key_len is unused: varlen refuses key_padding.
  p.hooks = plan_hooks(op, ctx, options, p.batch, hq, 0, false, true);
  p.q = q;
  p.k = k;
  p.v = v;
  p.q_at = access_thd(q);
  p.k_at = access_thd(k);
  p.v_at = access_thd(v);
  p.out_dtype = options.out_dtype;
  p.out = Tensor(nullptr, TensorDesc{options.out_dtype, {total_q, hq, d}, {}, 0});
  p.out_at = access_thd(p.out);
  if (options.return_lse) {
    p.lse = Tensor(nullptr, TensorDesc{DType::f32, {hq, total_q}, {}, 0});
    p.lse_at = {DType::f32, 0, 0, 1, total_q};
  }
  return p;
}

void bind_varlen_data(AttentionPlan& p, const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                      std::int64_t total_q, std::int64_t total_k) {
  p.cu_q = download_index(cu_seqlens_q);
  p.cu_k = download_index(cu_seqlens_k);
  p.cu_q_t = cu_seqlens_q;
  p.cu_k_t = cu_seqlens_k;
  check_varlen_offsets(p, total_q, total_k);
}

void check_varlen_offsets(AttentionPlan& p, std::int64_t total_q, std::int64_t total_k) {
  check_offsets(p.op, "cu_seqlens_q", p.cu_q, total_q, "Q");
  check_offsets(p.op, "cu_seqlens_k", p.cu_k, total_k, "K");
  p.lq = longest(p.cu_q);
  p.lk = longest(p.cu_k);
}

}  // namespace attention_detail

AttentionResult attention_varlen(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                                 const AttentionOptions& options) {
  constexpr const char* op = "attention_varlen";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "Q", q, impl);
  detail::check_tensor_owner(op, "K", k, impl);
  detail::check_tensor_owner(op, "V", v, impl);
  detail::check_tensor_owner(op, "cu_seqlens_q", cu_seqlens_q, impl);
  detail::check_tensor_owner(op, "cu_seqlens_k", cu_seqlens_k, impl);
  AttentionPlan p = plan_varlen(op, ctx, q.desc(), k.desc(), v.desc(), cu_seqlens_q.desc(),
                                cu_seqlens_k.desc(), options);
  bind_varlen_data(p, cu_seqlens_q, cu_seqlens_k, q.dim(0), k.dim(0));
  p.q = q;
  p.k = k;
  p.v = v;
  p.q_at = access_thd(q);
  p.k_at = access_thd(k);
  p.v_at = access_thd(v);
  p.out = new_tensor(impl, ctx.impl(), options.out_dtype, p.out.shape());
  p.out_at = access_thd(p.out);
  if (options.return_lse) p.lse = new_tensor(impl, ctx.impl(), DType::f32, p.lse.shape());
  if (p.lq > 0) run_attention(impl, p);
  return {p.out, p.lse};
}

}  // namespace sparq
