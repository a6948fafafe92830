// sparq::mamba::ssd_scan (Mamba-2 SSD) and ssd_state_update: validate shapes and options -> the
// single SSD program -> launch, or run the fallback executor. ssd_state_update views its
// [Bt, H, P] / [Bt, G, N] inputs as L = 1 tensors and runs the same path with the state as both
// initial and final states.
#include <mutex>

#include "mamba_common.h"
#include "mamba_kernels.h"

namespace sparq::mamba {

using namespace detail_mamba;

namespace {

SsdResult ssd_impl(Context& ctx, const SsdArgs& a, const char* op, const Tensor& state_inout) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "x", a.x, impl);
  if (a.x.rank() != 4)
    rt::fail(ErrorCode::shape_mismatch, op, "x is {}; expected [Bt, L, H, P]",
             a.x.desc().describe());
  const std::int64_t batch = a.x.dim(0), L = a.x.dim(1), H = a.x.dim(2), P = a.x.dim(3);
  require(op, batch >= 1 && L >= 1 && H >= 1 && P >= 1, "x is {}; all dimensions must be >= 1",
          a.x.desc().describe());
  require(op, H <= INT32_MAX && P <= INT32_MAX, "x is {}; H and P must fit in int32",
          a.x.desc().describe());
  check_float(op, "x", a.x, impl, {batch, L, H, P});
  check_float(op, "dt", a.dt, impl, {batch, L, H});
  check_float(op, "A", a.A, impl, {H});
  detail::check_tensor_owner(op, "Bm", a.Bm, impl);
  if (a.Bm.rank() != 4)
    rt::fail(ErrorCode::shape_mismatch, op, "Bm is {}; expected [Bt, L, G, N]",
             a.Bm.desc().describe());
  const std::int64_t G = a.Bm.dim(2), N = a.Bm.dim(3);
  if (N < 1 || N > 256)
    rt::fail(ErrorCode::unsupported, op, "Bm has N = {} states; 1 <= N <= 256 is supported", N);
  if (G < 1 || H % G != 0)
    rt::fail(ErrorCode::shape_mismatch, op, "Bm has G = {} groups; H = {} must be a multiple of G",
             G, H);
  check_float(op, "Bm", a.Bm, impl, {batch, L, G, N});
  check_float(op, "Cm", a.Cm, impl, {batch, L, G, N});
  int D_mode = 0;
  if (a.Dskip.defined()) {
    detail::check_tensor_owner(op, "Dskip", a.Dskip, impl);
    D_mode = a.Dskip.rank() == 2 ? 2 : 1;
    if (D_mode == 2)
      check_float(op, "Dskip", a.Dskip, impl, {H, P});
    else
      check_float(op, "Dskip", a.Dskip, impl, {H});
    require(op, a.Dskip.is_contiguous(), "Dskip must be contiguous");
  }
  if (a.z.defined()) check_float(op, "z", a.z, impl, {batch, L, H, P});
  if (a.dt_bias.defined()) check_float(op, "dt_bias", a.dt_bias, impl, {H});
  const int nseq = a.cu_seqlens.defined() ? check_cu_seqlens(op, a.cu_seqlens, impl, batch, L) : 0;
  const std::int64_t states = nseq ? nseq : batch;
  if (a.initial_states.defined())
    check_float(op, "initial_states", a.initial_states, impl, {states, H, P, N}, true);

  SsdResult r;
  r.out = new_tensor(ctx, a.x.dtype(), {batch, L, H, P});
  if (state_inout.defined())
    r.final_states = state_inout;
  else if (a.return_final_states)
    r.final_states = new_tensor(ctx, DType::f32, {states, H, P, N});
  const Tensor& last = r.final_states;
  const std::int64_t hpg = H / G;

  if (!impl.device) {
    fallback::mamba::SsdProblem p;
    p.out = detail::host_data_mut(r.out);
    p.out_dtype = dtype_code(r.out);
    p.x = host_view(a.x, stride(a.x, 0), stride(a.x, 1), stride(a.x, 2));
    p.dt = host_view(a.dt, stride(a.dt, 0), stride(a.dt, 1));
    if (a.z.defined()) p.z = host_view(a.z, stride(a.z, 0), stride(a.z, 1), stride(a.z, 2));
    p.A = host_view(a.A);
    p.Bm = host_view(a.Bm, stride(a.Bm, 0), stride(a.Bm, 1), stride(a.Bm, 2));
    p.Cm = host_view(a.Cm, stride(a.Cm, 0), stride(a.Cm, 1), stride(a.Cm, 2));
    p.Dskip = host_view(a.Dskip);
    p.D_mode = D_mode;
    p.bias = host_view(a.dt_bias);
    p.softplus = a.dt_softplus;
    if (a.initial_states.defined())
      p.h0 = reinterpret_cast<const float*>(detail::host_data(a.initial_states));
    if (last.defined()) p.last = reinterpret_cast<float*>(detail::host_data_mut(last));
    if (nseq) p.cu = reinterpret_cast<const std::int32_t*>(detail::host_data(a.cu_seqlens));
    p.nseq = nseq;
    p.batch = batch;
    p.L = L;
    p.H = H;
    p.P = P;
    p.N = N;
    p.hpg = hpg;
    fallback::mamba::ssd_scan(p);
    return r;
  }

  auto& dev = *impl.device;
  if (dev.info().max_work_group_size < static_cast<std::size_t>(SsdKernelConfig::wg))
    rt::fail(ErrorCode::unsupported, op,
             "the device allows work-groups of {} items; the SSD scan needs {}",
             dev.info().max_work_group_size, SsdKernelConfig::wg);
  cl::Kernel k =
      dev.kernel(SsdKernelConfig::source, SsdKernelConfig::kernel, SsdKernelConfig::defines());
  const int pb = SsdKernelConfig::dims_per_group(N, P);
  auto g4 = [](const Tensor& t) {
    if (!t.defined()) return geo(0, 0);
    return geo(t.offset(), stride(t, 0), stride(t, 1), t.rank() > 3 ? stride(t, 2) : 0);
  };
  auto off = [](const Tensor& t) { return static_cast<cl_long>(t.defined() ? t.offset() : 0); };
  cl_uint i = 0;
  set_buffer(k, i++, r.out);
  k.setArg(i++, geo(0, L * H * P, H * P, P));
  k.setArg(i++, static_cast<cl_int>(dtype_code(r.out)));
  for (const Tensor* t : {&a.x, &a.dt}) {
    set_buffer(k, i++, *t);
    k.setArg(i++, g4(*t));
    k.setArg(i++, static_cast<cl_int>(dtype_code(*t)));
  }
  set_buffer(k, i++, a.z);
  k.setArg(i++, g4(a.z));
  k.setArg(i++, static_cast<cl_int>(dtype_code(a.z)));
  k.setArg(i++, static_cast<cl_int>(a.z.defined()));
  set_buffer(k, i++, a.A);
  k.setArg(i++, off(a.A));
  k.setArg(i++, static_cast<cl_int>(dtype_code(a.A)));
  for (const Tensor* t : {&a.Bm, &a.Cm}) {
    set_buffer(k, i++, *t);
    k.setArg(i++, g4(*t));
    k.setArg(i++, static_cast<cl_int>(dtype_code(*t)));
  }
  set_buffer(k, i++, a.Dskip);
  k.setArg(i++, off(a.Dskip));
  k.setArg(i++, static_cast<cl_int>(dtype_code(a.Dskip)));
  k.setArg(i++, static_cast<cl_int>(D_mode));
  set_buffer(k, i++, a.dt_bias);
  k.setArg(i++, off(a.dt_bias));
  k.setArg(i++, static_cast<cl_int>(dtype_code(a.dt_bias)));
  k.setArg(i++, static_cast<cl_int>(a.dt_bias.defined()));
  k.setArg(i++, static_cast<cl_int>(a.dt_softplus));
  set_buffer(k, i++, a.initial_states);
  k.setArg(i++, off(a.initial_states));
  k.setArg(i++, static_cast<cl_int>(a.initial_states.defined()));
  set_buffer(k, i++, last);
  k.setArg(i++, off(last));
  k.setArg(i++, static_cast<cl_int>(last.defined()));
  set_buffer(k, i++, nseq ? a.cu_seqlens : Tensor());
  k.setArg(i++, static_cast<cl_long>(nseq ? a.cu_seqlens.offset() : 0));
  k.setArg(i++, static_cast<cl_int>(nseq));
  k.setArg(i++, static_cast<cl_int>(H));
  k.setArg(i++, static_cast<cl_long>(L));
  k.setArg(i++, static_cast<cl_int>(P));
  k.setArg(i++, static_cast<cl_int>(N));
  k.setArg(i++, static_cast<cl_int>(hpg));
  k.setArg(i++, static_cast<cl_int>(pb));
  const std::int64_t groups_total = batch * H * ((P + pb - 1) / pb);
  dev.launch(op, k, cl::NDRange(static_cast<std::size_t>(groups_total) * SsdKernelConfig::wg),
             cl::NDRange(SsdKernelConfig::wg));
  return r;
}

}  // namespace

SsdResult ssd_scan(Context& ctx, const SsdArgs& args) {
  return ssd_impl(ctx, args, "mamba::ssd_scan", Tensor());
}

Tensor ssd_state_update(Context& ctx, const SsdStateUpdateArgs& a) {
  constexpr const char* op = "mamba::ssd_state_update";
  auto& impl = *ctx.impl();
  detail::check_tensor_owner(op, "x", a.x, impl);
  detail::check_tensor_owner(op, "state", a.state, impl);
  if (a.x.rank() != 3)
    rt::fail(ErrorCode::shape_mismatch, op, "x is {}; expected [Bt, H, P]", a.x.desc().describe());
  const std::int64_t batch = a.x.dim(0), H = a.x.dim(1), P = a.x.dim(2);
  if (a.state.rank() != 4)
    rt::fail(ErrorCode::shape_mismatch, op, "state is {}; expected f32 [Bt, H, P, N]",
             a.state.desc().describe());
  check_float(op, "state", a.state, impl, {batch, H, P, a.state.dim(3)}, true);
  check_float(op, "x", a.x, impl, {batch, H, P});
  check_float(op, "dt", a.dt, impl, {batch, H});
  if (a.z.defined()) check_float(op, "z", a.z, impl, {batch, H, P});
  auto bc = [&](const char* arg, const Tensor& t) {
    detail::check_tensor_owner(op, arg, t, impl);
    if (t.rank() != 3 || t.dim(0) != batch)
      rt::fail(ErrorCode::shape_mismatch, op, "{} is {}; expected [Bt = {}, G, N]", arg,
               t.desc().describe(), batch);
    return t.view({batch, 1, t.dim(1), t.dim(2)}, {stride(t, 0), 0, stride(t, 1), stride(t, 2)},
                  t.offset());
  };
  auto t1 = [&](const Tensor& t) {  // [Bt, H, P] -> [Bt, 1, H, P]
    if (!t.defined()) return t;
    return t.view({batch, 1, H, P}, {stride(t, 0), 0, stride(t, 1), stride(t, 2)}, t.offset());
  };
  SsdArgs s;
  s.x = t1(a.x);
  s.z = t1(a.z);
  s.dt = a.dt.view({batch, 1, H}, {stride(a.dt, 0), 0, stride(a.dt, 1)}, a.dt.offset());
  s.A = a.A;
  s.Bm = bc("Bm", a.Bm);
  s.Cm = bc("Cm", a.Cm);
  s.Dskip = a.Dskip;
  s.dt_bias = a.dt_bias;
  s.initial_states = a.state;
  s.dt_softplus = a.dt_softplus;
  // ssd_impl checks state against [Bt, H, P, N] f32 contiguous as initial_states before writing.
  auto r = ssd_impl(ctx, s, op, a.state);
  return r.out.view({batch, H, P}, {H * P, P, 1}, 0);
}

}  // namespace sparq::mamba
