// sparq::mamba::selective_scan: validate shapes and options -> pick the (single) scan program ->
// set arguments -> launch, or run the fallback executor. selective_state_update (state_update.cpp)
// runs the same path with L = 1 and the state tensor as both h0 and last_state.
#include <mutex>

#include "mamba_common.h"
#include "mamba_kernels.h"
#include "scan_impl.h"

namespace sparq::mamba {

using namespace detail_mamba;

namespace detail_mamba {

namespace {

// Form of a B or C argument: constant [D, N] or variable [Bt, G, N, L] ([Bt, N, L] is G = 1).
struct BcForm {
  bool var = false;
  std::int64_t groups = 1;
  std::int64_t s0 = 0, s1 = 0, s2 = 0;  // variable: batch, group, n strides; constant: row
};

BcForm check_bc(const char* op, const char* arg, const Tensor& t, const detail::ContextImpl& impl,
                std::int64_t batch, std::int64_t D, std::int64_t N, std::int64_t L) {
  detail::check_tensor_owner(op, arg, t, impl);
  BcForm f;
  if (t.rank() == 2) {
    check_float(op, arg, t, impl, {D, N});
    f.s0 = stride(t, 0);
    return f;
  }
  if (t.rank() == 3) {
    check_float(op, arg, t, impl, {batch, N, L});
    f.var = true;
    f.s0 = stride(t, 0);
    f.s2 = stride(t, 1);
    return f;
  }
  if (t.rank() != 4)
    rt::fail(ErrorCode::shape_mismatch, op,
             "{} is {}; expected [D, N] = [{}, {}], [Bt, N, L] or [Bt, G, N, L] = [{}, G, {}, {}]",
             arg, t.desc().describe(), D, N, batch, N, L);
  f.var = true;
  f.groups = t.dim(1);
  if (f.groups < 1 || D % f.groups != 0)
    rt::fail(ErrorCode::shape_mismatch, op, "{} has G = {} groups; D = {} must be a multiple of G",
             arg, f.groups, D);
  check_float(op, arg, t, impl, {batch, f.groups, N, L});
  f.s0 = stride(t, 0);
  f.s1 = stride(t, 1);
  f.s2 = stride(t, 2);
  return f;
}

// A quantized B or C: rows [Bt, L, G*N], variable with G = channels / N groups.
BcForm check_bc_q(const char* op, const char* arg, const QuantizedRows& q,
                  const detail::ContextImpl& impl, std::int64_t batch, std::int64_t D,
                  std::int64_t N, std::int64_t L) {
  check_qrows(op, arg, q, impl, batch, L, true);
  BcForm f;
  f.var = true;
  f.groups = q.C / N;
  if (q.C % N != 0 || D % f.groups != 0)
    rt::fail(ErrorCode::shape_mismatch, op,
             "{} has rows of {} channels; expected G*N with N = {} and D = {} a multiple of G", arg,
             q.C, N, D);
  return f;
}

// The fallback's and the kernel's view of quantized rows.
fallback::mamba::QSrc qsrc(const QuantizedRows& q) {
  fallback::mamba::QSrc s;
  s.codes = reinterpret_cast<const std::uint8_t*>(detail::host_data(q.codes));
  s.scales = reinterpret_cast<const float*>(detail::host_data(q.scales));
  s.counts = reinterpret_cast<const std::int32_t*>(detail::host_data(q.outlier_count));
  s.fmt = fmt_code(q.params.outlier_format);
  if (q.params.max_outliers > 0) {
    s.idx = reinterpret_cast<const std::int32_t*>(detail::host_data(q.outlier_idx));
    const std::byte* v = detail::host_data(q.outlier_val);
    if (s.fmt == 0) s.val_f = reinterpret_cast<const float*>(v);
    if (s.fmt == 1) s.val_h = reinterpret_cast<const std::uint16_t*>(v);
    if (s.fmt == 2) s.val_b = reinterpret_cast<const std::uint8_t*>(v);
  }
  if (s.fmt == 2) s.oscale = reinterpret_cast<const float*>(detail::host_data(q.outlier_scale));
  s.bits8 = q.params.bits == InlierBits::Int8;
  s.K = q.params.max_outliers;
  s.C = static_cast<int>(q.C);
  return s;
}

void set_qargs(cl::Kernel& k, cl_uint& i, const QuantizedRows* q) {
  const Tensor none;
  set_buffer(k, i++, q ? q->codes : none);
  set_buffer(k, i++, q ? q->scales : none);
  set_buffer(k, i++, q ? q->outlier_count : none);
  set_buffer(k, i++, q && q->params.max_outliers ? q->outlier_idx : none);
  set_buffer(k, i++, q && q->params.max_outliers ? q->outlier_val : none);
  const bool i8 = q && q->params.outlier_format == OutlierFormat::Int8;
  set_buffer(k, i++, i8 ? q->outlier_scale : none);
  cl_int4 m{};
  if (q) {
    m.s[0] = 1 | (q->params.bits == InlierBits::Int8 ? 2 : 0) |
             (fmt_code(q->params.outlier_format) << 2);
    m.s[1] = q->params.max_outliers;
    m.s[2] = static_cast<cl_int>(q->C);
  }
  k.setArg(i++, m);
}

}  // namespace

SelectiveScanResult scan_impl(Context& ctx, const SelectiveScanArgs& a, const char* op,
                              const Tensor& state_inout, const QSources& q) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  std::int64_t batch = 0, D = 0, L = 0;
  if (q.u) {
    detail::check_tensor_owner(op, "u.scales", q.u->scales, impl);
    require(op, q.u->scales.rank() == 2, "u.scales is {}; expected f32[Bt, L]",
            q.u->scales.desc().describe());
    batch = q.u->scales.dim(0);
    L = q.u->scales.dim(1);
    D = q.u->C;
    require(op, batch >= 1 && D >= 1 && L >= 1, "u has rows [{}, {}, {}]; all must be >= 1", batch,
            L, D);
    check_qrows(op, "u", *q.u, impl, batch, L, true);
  } else {
    detail::check_tensor_owner(op, "u", a.u, impl);
    if (a.u.rank() != 3)
      rt::fail(ErrorCode::shape_mismatch, op, "u is {}; expected [Bt, D, L]",
               a.u.desc().describe());
    batch = a.u.dim(0);
    D = a.u.dim(1);
    L = a.u.dim(2);
    require(op, batch >= 1 && D >= 1 && L >= 1, "u is {}; Bt, D and L must be >= 1",
            a.u.desc().describe());
    check_float(op, "u", a.u, impl, {batch, D, L});
  }
  auto check_row_q = [&](const char* arg, const QuantizedRows& r) {
    check_qrows(op, arg, r, impl, batch, L, true);
    require(op, r.C == D, "{} has rows of {} channels; expected D = {}", arg, r.C, D);
  };
  if (q.delta)
    check_row_q("delta", *q.delta);
  else
    check_float(op, "delta", a.delta, impl, {batch, D, L});
  detail::check_tensor_owner(op, "A", a.A, impl);
  require(op, a.A.rank() == 2 && a.A.dim(0) == D, "A is {}; expected [D = {}, N]",
          a.A.desc().describe(), D);
  const std::int64_t N = a.A.dim(1);
  if (N < 1 || N > 256)
    rt::fail(ErrorCode::unsupported, op, "A has N = {} states; 1 <= N <= 256 is supported", N);
  check_float(op, "A", a.A, impl, {D, N});
  if (!a.A.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "A must be contiguous, got {}", a.A.desc().describe());
  const BcForm bf = q.B ? check_bc_q(op, "Bm", *q.B, impl, batch, D, N, L)
                        : check_bc(op, "Bm", a.Bm, impl, batch, D, N, L);
  const BcForm cf = q.C ? check_bc_q(op, "Cm", *q.C, impl, batch, D, N, L)
                        : check_bc(op, "Cm", a.Cm, impl, batch, D, N, L);
  require(op, !bf.var || !cf.var || bf.groups == cf.groups,
          "Bm has {} groups and Cm {}; they must agree", bf.groups, cf.groups);
  const std::int64_t groups = bf.var ? bf.groups : cf.groups;
  if (a.Dskip.defined()) check_float(op, "Dskip", a.Dskip, impl, {D});
  if (a.delta_bias.defined()) check_float(op, "delta_bias", a.delta_bias, impl, {D});
  if (q.z)
    check_row_q("z", *q.z);
  else if (a.z.defined())
    check_float(op, "z", a.z, impl, {batch, D, L});
  const bool has_z = q.z || a.z.defined();
  const int nseq = a.cu_seqlens.defined() ? check_cu_seqlens(op, a.cu_seqlens, impl, batch, L) : 0;
  const std::int64_t states = nseq ? nseq : batch;
  if (a.h0.defined()) check_float(op, "h0", a.h0, impl, {states, D, N}, true);

  SelectiveScanResult r;
  r.out = new_tensor(ctx, q.u ? DType::f32 : a.u.dtype(), {batch, D, L});
  if (state_inout.defined())
    r.last_state = state_inout;
  else if (a.return_last_state)
    r.last_state = new_tensor(ctx, DType::f32, {states, D, N});
  const Tensor& last = r.last_state;
  const std::int64_t dpg = D / groups;

  if (!impl.device) {
    fallback::mamba::ScanProblem p;
    p.out = detail::host_data_mut(r.out);
    p.out_dtype = dtype_code(r.out);
    p.out_sb = D * L;
    p.out_sd = L;
    fallback::mamba::QSrc qs[5];
    if (q.u) p.qu = &(qs[0] = qsrc(*q.u));
    if (q.delta) p.qdelta = &(qs[1] = qsrc(*q.delta));
    if (q.z) p.qz = &(qs[2] = qsrc(*q.z));
    if (q.B) p.qB = &(qs[3] = qsrc(*q.B));
    if (q.C) p.qC = &(qs[4] = qsrc(*q.C));
    if (!q.u) p.u = host_view(a.u, stride(a.u, 0), stride(a.u, 1));
    if (!q.delta) p.delta = host_view(a.delta, stride(a.delta, 0), stride(a.delta, 1));
    if (!q.z && a.z.defined()) p.z = host_view(a.z, stride(a.z, 0), stride(a.z, 1));
    p.A = host_view(a.A);
    if (!q.B) p.Bm = host_view(a.Bm, bf.s0, bf.s1, bf.s2);
    if (!q.C) p.Cm = host_view(a.Cm, cf.s0, cf.s1, cf.s2);
    p.Dskip = host_view(a.Dskip);
    p.bias = host_view(a.delta_bias);
    p.B_var = bf.var;
    p.C_var = cf.var;
    p.softplus = a.delta_softplus;
    if (a.h0.defined()) p.h0 = reinterpret_cast<const float*>(detail::host_data(a.h0));
    if (last.defined()) p.last = reinterpret_cast<float*>(detail::host_data_mut(last));
    if (nseq) p.cu = reinterpret_cast<const std::int32_t*>(detail::host_data(a.cu_seqlens));
    p.nseq = nseq;
    p.batch = batch;
    p.D = D;
    p.L = L;
    p.N = N;
    p.dpg = dpg;
    fallback::mamba::selective_scan(p);
    return r;
  }
  const bool quantized = q.u || q.delta || q.z || q.B || q.C;

  auto& dev = *impl.device;
  const ScanTuning tune =
      ScanTuning::from_env(op, dev.quirks().is_nvidia, dev.info().is_gpu, N <= 16);
  const bool small = ScanKernelConfig::use_small(N, tune);
  if (dev.info().max_work_group_size < static_cast<std::size_t>(tune.wg))
    rt::fail(ErrorCode::unsupported, op,
             "the device allows work-groups of {} items; the scan needs {}",
             dev.info().max_work_group_size, tune.wg);
  const std::size_t local = ScanKernelConfig::local_bytes(small, tune);
  if (dev.quirks().local_mem_bytes != 0 && local > dev.quirks().local_mem_bytes)
    rt::fail(ErrorCode::unsupported, op,
             "SPARQ_TUNE_SCAN asks for tiles of {} bytes of local memory; the device has {}", local,
             dev.quirks().local_mem_bytes);
  cl::Kernel k = dev.kernel(ScanKernelConfig::source, ScanKernelConfig::kernel,
                            ScanKernelConfig::defines(quantized, small, tune));
  const int db = ScanKernelConfig::channels_per_group(N, tune);
  auto tgeo = [](const Tensor& t) {
    return t.defined() ? geo(t.offset(), stride(t, 0), stride(t, 1)) : geo(0, 0);
  };
  auto bcgeo = [](const Tensor& t, const BcForm& f) { return geo(t.offset(), f.s0, f.s1, f.s2); };
  auto off = [](const Tensor& t) { return static_cast<cl_long>(t.defined() ? t.offset() : 0); };
  cl_uint i = 0;
  set_buffer(k, i++, r.out);
  k.setArg(i++, geo(0, D * L, L));
  k.setArg(i++, static_cast<cl_int>(dtype_code(r.out)));
  for (const Tensor* t : {&a.u, &a.delta}) {
    set_buffer(k, i++, *t);
    k.setArg(i++, tgeo(*t));
    k.setArg(i++, static_cast<cl_int>(dtype_code(*t)));
  }
  set_buffer(k, i++, a.z);
  k.setArg(i++, tgeo(a.z));
  k.setArg(i++, static_cast<cl_int>(dtype_code(a.z)));
  k.setArg(i++, static_cast<cl_int>(has_z));
  set_buffer(k, i++, a.A);
  k.setArg(i++, off(a.A));
  k.setArg(i++, static_cast<cl_int>(dtype_code(a.A)));
  for (auto [t, f] : {std::pair{&a.Bm, &bf}, std::pair{&a.Cm, &cf}}) {
    set_buffer(k, i++, *t);
    k.setArg(i++, bcgeo(*t, *f));
    k.setArg(i++, static_cast<cl_int>(dtype_code(*t)));
    k.setArg(i++, static_cast<cl_int>(f->var));
  }
  for (const Tensor* t : {&a.Dskip, &a.delta_bias}) {
    set_buffer(k, i++, *t);
    k.setArg(i++, off(*t));
    k.setArg(i++, static_cast<cl_int>(dtype_code(*t)));
    k.setArg(i++, static_cast<cl_int>(t->defined()));
  }
  k.setArg(i++, static_cast<cl_int>(a.delta_softplus));
  set_buffer(k, i++, a.h0);
  k.setArg(i++, off(a.h0));
  k.setArg(i++, static_cast<cl_int>(a.h0.defined()));
  set_buffer(k, i++, last);
  k.setArg(i++, off(last));
  k.setArg(i++, static_cast<cl_int>(last.defined()));
  set_buffer(k, i++, nseq ? a.cu_seqlens : Tensor());
  k.setArg(i++, static_cast<cl_long>(nseq ? a.cu_seqlens.offset() : 0));
  k.setArg(i++, static_cast<cl_int>(nseq));
  k.setArg(i++, static_cast<cl_int>(D));
  k.setArg(i++, static_cast<cl_long>(L));
  k.setArg(i++, static_cast<cl_int>(N));
  k.setArg(i++, static_cast<cl_int>(dpg));
  k.setArg(i++, static_cast<cl_int>(db));
  if (quantized)
    for (const QuantizedRows* x : {q.u, q.delta, q.z, q.B, q.C}) set_qargs(k, i, x);
  const std::int64_t groups_total = batch * ((D + db - 1) / db);
  dev.launch(op, k, cl::NDRange(static_cast<std::size_t>(groups_total) * tune.wg),
             cl::NDRange(tune.wg));
  return r;
}

}  // namespace detail_mamba

SelectiveScanResult selective_scan(Context& ctx, const SelectiveScanArgs& args) {
  return scan_impl(ctx, args, "mamba::selective_scan", Tensor());
}

SelectiveScanResult selective_scan_q(Context& ctx, const SelectiveScanQArgs& args) {
  SelectiveScanArgs a;
  QSources q;
  auto pick = [](const ScanInput& in, Tensor& t, const QuantizedRows*& qr) {
    if (const auto* r = std::get_if<QuantizedRows>(&in))
      qr = r;
    else
      t = std::get<Tensor>(in);
  };
  pick(args.u, a.u, q.u);
  pick(args.delta, a.delta, q.delta);
  pick(args.z, a.z, q.z);
  pick(args.Bm, a.Bm, q.B);
  pick(args.Cm, a.Cm, q.C);
  a.A = args.A;
  a.Dskip = args.Dskip;
  a.delta_bias = args.delta_bias;
  a.h0 = args.h0;
  a.cu_seqlens = args.cu_seqlens;
  a.delta_softplus = args.delta_softplus;
  a.return_last_state = args.return_last_state;
  return scan_impl(ctx, a, "mamba::selective_scan_q", Tensor(), q);
}

}  // namespace sparq::mamba
