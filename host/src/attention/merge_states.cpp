// sparq::merge_states: merges two partial attention states over disjoint key sets with the one
// formula of kernels_cl/attention/attention_common.h (the chunk merge of every attention op).
#include <fmt/format.h>

#include <mutex>

#include "attention_access.h"
#include "attention_kernels.h"
#include "attention_validate.h"
#include "errors.h"
#include "fallback_cpu/attention/attention_fallback.h"
#include "sparq/attention.h"

namespace sparq {

using namespace attention_detail;

namespace {

constexpr int kMaxLeadingDims = 4;

void check_lse(const char* op, const char* arg, const Tensor& t,
               const std::vector<std::int64_t>& want) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f16 && t.dtype() != DType::bf16)
    rt::fail(ErrorCode::shape_mismatch, op, "{} has dtype {}; expected f32, f16 or bf16", arg,
             dtype_name(t.dtype()));
  if (t.shape() != want)
    rt::fail(ErrorCode::shape_mismatch, op, "{} has shape [{}]; expected [{}] (out's leading dims)",
             arg, fmt::join(t.shape(), ", "), fmt::join(want, ", "));
}

// Leading-dim strides padded on the left to 4 (size-1 dims get stride 0).
fallback::MergeOperand operand(const Tensor& t, int leading) {
  fallback::MergeOperand m;
  m.dtype = t.dtype();
  m.base = t.offset();
  for (int i = 0; i < leading; ++i) m.strides[kMaxLeadingDims - leading + i] = t.strides()[i];
  if (!t.storage()->on_device) m.data = t.storage()->host.data();
  return m;
}

}  // namespace

AttentionResult merge_states(Context& ctx, const Tensor& out_a, const Tensor& lse_a,
                             const Tensor& out_b, const Tensor& lse_b) {
  constexpr const char* op = "merge_states";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "out_a", out_a, impl);
  detail::check_tensor_owner(op, "lse_a", lse_a, impl);
  detail::check_tensor_owner(op, "out_b", out_b, impl);
  detail::check_tensor_owner(op, "lse_b", lse_b, impl);
  const int rank = out_a.rank();
  if (rank < 2 || rank > kMaxLeadingDims + 1)
    rt::fail(ErrorCode::shape_mismatch, op, "out_a must have 2 to {} dims [..., D], got {}",
             kMaxLeadingDims + 1, out_a.desc().describe());
  check_float_tensor(op, "out_a", out_a.desc(), rank, "[..., D]");
  check_float_tensor(op, "out_b", out_b.desc(), rank, "[..., D]");
  if (out_b.shape() != out_a.shape())
    rt::fail(ErrorCode::shape_mismatch, op, "out_b has shape [{}], out_a has [{}]; they must match",
             fmt::join(out_b.shape(), ", "), fmt::join(out_a.shape(), ", "));
  std::vector<std::int64_t> lead(out_a.shape().begin(), out_a.shape().end() - 1);
  check_lse(op, "lse_a", lse_a, lead);
  check_lse(op, "lse_b", lse_b, lead);
  const std::int64_t d = out_a.dim(rank - 1);
  check_length(op, "D", d);
  check_alloc(op, "output", DType::f32, out_a.shape(), max_alloc(impl));

  Tensor out = new_tensor(impl, ctx.impl(), DType::f32, out_a.shape());
  Tensor lse = new_tensor(impl, ctx.impl(), DType::f32, lead);
  fallback::MergeProblem m;
  for (int i = 0; i < rank - 1; ++i) m.dims[kMaxLeadingDims - (rank - 1) + i] = lead[i];
  m.d = d;
  m.out_a = operand(out_a, rank - 1);
  m.lse_a = operand(lse_a, rank - 1);
  m.out_b = operand(out_b, rank - 1);
  m.lse_b = operand(lse_b, rank - 1);
  const std::int64_t rows = lse.numel();
  if (!impl.device) {
    m.out = reinterpret_cast<float*>(out.storage()->host.data());
    m.lse = reinterpret_cast<float*>(lse.storage()->host.data());
    fallback::merge_states(m);
    return {out, lse};
  }
  const MergeKernelConfig cfg;
  cl::Kernel k = impl.device->kernel(cfg.source, cfg.states_kernel, cfg.defines());
  cl_uint n = 0;
  auto set_operand = [&](const Tensor& t, const fallback::MergeOperand& o) {
    k.setArg(n++, t.storage()->buffer);
    k.setArg(n++, static_cast<cl_long>(o.base));
    k.setArg(n++, cl_long4{{o.strides[0], o.strides[1], o.strides[2], o.strides[3]}});
    k.setArg(n++, static_cast<cl_int>(o.dtype));
  };
  set_operand(out_a, m.out_a);
  set_operand(lse_a, m.lse_a);
  set_operand(out_b, m.out_b);
  set_operand(lse_b, m.lse_b);
  k.setArg(n++, out.storage()->buffer);
  k.setArg(n++, lse.storage()->buffer);
  k.setArg(n++, cl_long4{{m.dims[0], m.dims[1], m.dims[2], m.dims[3]}});
  k.setArg(n++, static_cast<cl_long>(rows));
  k.setArg(n++, static_cast<cl_int>(d));
  impl.device->launch(op, k, cl::NDRange((d + 63) / 64 * 64, rows), cl::NDRange(64, 1));
  return {out, lse};
}

}  // namespace sparq
