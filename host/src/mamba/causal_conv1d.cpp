// sparq::mamba::causal_conv1d and causal_conv1d_update: validate -> pick the conv program ->
// set arguments -> launch the output kernel, then (final states / decode state) the state-row
// kernel; or run the fallback executor. The update is the forward with the state's last W-1
// columns as initial states, then the state rows shifted in place.
#include <mutex>

#include "mamba_common.h"
#include "mamba_kernels.h"

namespace sparq::mamba {

using namespace detail_mamba;

namespace {

// Where the state-row kernel writes (dst, S_out columns) and reads (src, S_src columns).
struct StateRows {
  Tensor dst, src;
  std::int64_t S_out = 0, S_src = 0;
};

// Validated problem; runs both kernels (or their fallbacks).
void run_conv(Context& ctx, const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
              const Tensor& init, const Tensor& cu, int nseq, bool silu, const Tensor& out,
              const StateRows* rows) {
  auto& impl = *ctx.impl();
  const std::int64_t batch = x.dim(0), D = x.dim(1), L = x.dim(2), W = w.dim(1);
  const std::int64_t states = nseq ? nseq : batch;
  if (!impl.device) {
    fallback::mamba::ConvProblem p;
    p.out = detail::host_data_mut(out);
    p.out_dtype = dtype_code(out);
    p.x = host_view(x, stride(x, 0), stride(x, 1));
    p.w = host_view(w);
    p.bias = host_view(bias);
    if (init.defined()) p.init = host_view(init, stride(init, 0), stride(init, 1));
    if (nseq) p.cu = reinterpret_cast<const std::int32_t*>(detail::host_data(cu));
    p.nseq = nseq;
    p.silu = silu;
    p.batch = batch;
    p.D = D;
    p.L = L;
    p.W = W;
    fallback::mamba::causal_conv1d(p);
    if (!rows) return;
    fallback::mamba::ConvStateProblem s;
    s.dst = detail::host_data_mut(rows->dst);
    s.dst_s0 = stride(rows->dst, 0);
    s.dst_s1 = stride(rows->dst, 1);
    s.S_out = rows->S_out;
    if (rows->src.defined())
      s.src = host_view(rows->src, stride(rows->src, 0), stride(rows->src, 1));
    s.S_src = rows->S_src;
    s.x = p.x;
    s.cu = p.cu;
    s.nseq = nseq;
    s.states = states;
    s.D = D;
    s.L = L;
    fallback::mamba::conv1d_states(s);
    return;
  }
  auto& dev = *impl.device;
  auto off = [](const Tensor& t) { return static_cast<cl_long>(t.defined() ? t.offset() : 0); };
  auto g3 = [](const Tensor& t) {
    return t.defined() ? geo(t.offset(), stride(t, 0), stride(t, 1)) : geo(0, 0);
  };
  const std::size_t local = 64;
  cl::Kernel k = dev.kernel(ConvKernelConfig::source, ConvKernelConfig::fwd_kernel,
                            ConvKernelConfig::defines());
  cl_uint i = 0;
  set_buffer(k, i++, out);
  k.setArg(i++, static_cast<cl_int>(dtype_code(out)));
  set_buffer(k, i++, x);
  k.setArg(i++, g3(x));
  k.setArg(i++, static_cast<cl_int>(dtype_code(x)));
  set_buffer(k, i++, w);
  k.setArg(i++, off(w));
  k.setArg(i++, static_cast<cl_int>(dtype_code(w)));
  k.setArg(i++, static_cast<cl_int>(W));
  set_buffer(k, i++, bias);
  k.setArg(i++, off(bias));
  k.setArg(i++, static_cast<cl_int>(dtype_code(bias)));
  k.setArg(i++, static_cast<cl_int>(bias.defined()));
  set_buffer(k, i++, init);
  k.setArg(i++, g3(init));
  k.setArg(i++, static_cast<cl_int>(dtype_code(init)));
  k.setArg(i++, static_cast<cl_int>(init.defined()));
  set_buffer(k, i++, nseq ? cu : Tensor());
  k.setArg(i++, off(nseq ? cu : Tensor()));
  k.setArg(i++, static_cast<cl_int>(nseq));
  k.setArg(i++, static_cast<cl_int>(silu));
  k.setArg(i++, static_cast<cl_long>(batch));
  k.setArg(i++, static_cast<cl_int>(D));
  k.setArg(i++, static_cast<cl_long>(L));
  const std::int64_t n = batch * D * L;
  dev.launch(op, k, cl::NDRange((static_cast<std::size_t>(n) + local - 1) / local * local),
             cl::NDRange(local));
  if (!rows) return;
  cl::Kernel ks = dev.kernel(ConvKernelConfig::source, ConvKernelConfig::state_kernel,
                             ConvKernelConfig::defines());
  i = 0;
  set_buffer(ks, i++, rows->dst);
  ks.setArg(i++, g3(rows->dst));
  ks.setArg(i++, static_cast<cl_int>(rows->S_out));
  set_buffer(ks, i++, rows->src);
  ks.setArg(i++, g3(rows->src));
  ks.setArg(i++, static_cast<cl_int>(rows->S_src));
  set_buffer(ks, i++, x);
  ks.setArg(i++, g3(x));
  ks.setArg(i++, static_cast<cl_int>(dtype_code(x)));
  set_buffer(ks, i++, nseq ? cu : Tensor());
  ks.setArg(i++, off(nseq ? cu : Tensor()));
  ks.setArg(i++, static_cast<cl_int>(nseq));
  ks.setArg(i++, static_cast<cl_long>(states));
  ks.setArg(i++, static_cast<cl_int>(D));
  ks.setArg(i++, static_cast<cl_long>(L));
  const std::int64_t nr = states * D;
  dev.launch(op, ks, cl::NDRange((static_cast<std::size_t>(nr) + local - 1) / local * local),
             cl::NDRange(local));
}

// x [Bt, D, L] and weight [D, W]: returns W.
std::int64_t check_x_weight(const char* op, const Tensor& x, const Tensor& w,
                            const detail::ContextImpl& impl) {
  detail::check_tensor_owner(op, "x", x, impl);
  if (x.rank() != 3 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) < 1)
    rt::fail(ErrorCode::shape_mismatch, op, "x is {}; expected [Bt, D, L], all >= 1",
             x.desc().describe());
  check_float(op, "x", x, impl, x.shape());
  detail::check_tensor_owner(op, "weight", w, impl);
  if (w.rank() != 2 || w.dim(0) != x.dim(1) || w.dim(1) < 1 || w.dim(1) > 256)
    rt::fail(ErrorCode::shape_mismatch, op, "weight is {}; expected [D = {}, W], 1 <= W <= 256",
             w.desc().describe(), x.dim(1));
  check_float(op, "weight", w, impl, w.shape());
  if (!w.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "weight must be contiguous, got {}",
             w.desc().describe());
  return w.dim(1);
}

}  // namespace

CausalConv1dResult causal_conv1d(Context& ctx, const CausalConv1dArgs& a) {
  constexpr const char* op = "mamba::causal_conv1d";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const std::int64_t W = check_x_weight(op, a.x, a.weight, impl);
  const std::int64_t batch = a.x.dim(0), D = a.x.dim(1), L = a.x.dim(2);
  if (a.bias.defined()) check_float(op, "bias", a.bias, impl, {D});
  const int nseq = a.cu_seqlens.defined() ? check_cu_seqlens(op, a.cu_seqlens, impl, batch, L) : 0;
  const std::int64_t states = nseq ? nseq : batch;
  Tensor init = a.initial_states;
  if (init.defined()) {
    check_float(op, "initial_states", init, impl, {states, D, W - 1});
    require(op, init.dtype() == a.x.dtype(), "initial_states has dtype {}; expected x's {}",
            dtype_name(init.dtype()), dtype_name(a.x.dtype()));
    if (W == 1) init = Tensor();  // no past inputs in the window
  }
  CausalConv1dResult r;
  r.out = new_tensor(ctx, a.x.dtype(), {batch, D, L});
  StateRows rows;
  if (a.return_final_states) {
    r.final_states = new_tensor(ctx, a.x.dtype(), {states, D, W - 1});
    rows = {r.final_states, init, W - 1, init.defined() ? W - 1 : 0};
  }
  if (a.return_final_states && W > 1)
    run_conv(ctx, op, a.x, a.weight, a.bias, init, a.cu_seqlens, nseq, a.silu, r.out, &rows);
  else
    run_conv(ctx, op, a.x, a.weight, a.bias, init, a.cu_seqlens, nseq, a.silu, r.out, nullptr);
  return r;
}

Tensor causal_conv1d_update(Context& ctx, const ConvUpdateArgs& a) {
  constexpr const char* op = "mamba::causal_conv1d_update";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "x", a.x, impl);
  Tensor x = a.x;
  if (x.rank() == 2)
    x = x.view({x.dim(0), x.dim(1), 1}, {stride(x, 0), stride(x, 1), 1}, x.offset());
  const std::int64_t W = check_x_weight(op, x, a.weight, impl);
  const std::int64_t batch = x.dim(0), D = x.dim(1), L = x.dim(2);
  if (a.bias.defined()) check_float(op, "bias", a.bias, impl, {D});
  detail::check_tensor_owner(op, "conv_state", a.conv_state, impl);
  require(op, a.conv_state.rank() == 3 && a.conv_state.dim(2) >= W - 1,
          "conv_state is {}; expected [Bt, D, S] with S >= W - 1 = {}",
          a.conv_state.desc().describe(), W - 1);
  const std::int64_t S = a.conv_state.dim(2);
  check_float(op, "conv_state", a.conv_state, impl, {batch, D, S});
  require(op, a.conv_state.dtype() == x.dtype() && a.conv_state.is_contiguous(),
          "conv_state must be contiguous with x's dtype {}, got {}", dtype_name(x.dtype()),
          a.conv_state.desc().describe());
  Tensor init;
  if (W > 1)
    init = a.conv_state.view({batch, D, W - 1}, {D * S, S, 1}, a.conv_state.offset() + S - (W - 1));
  Tensor out = new_tensor(ctx, x.dtype(), {batch, D, L});
  StateRows rows{a.conv_state, a.conv_state, S, S};
  run_conv(ctx, op, x, a.weight, a.bias, init, Tensor(), 0, a.silu, out, S > 0 ? &rows : nullptr);
  return a.x.rank() == 2 ? out.view({batch, D}, {D, 1}, 0) : out;
}

}  // namespace sparq::mamba
