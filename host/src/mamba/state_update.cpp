// sparq::mamba::selective_state_update: one decode token. The [Bt, D] / [Bt, (G,) N] inputs are
// viewed as the scan's [Bt, D, 1] / [Bt, G, N, 1] (no copy) and the scan runs with L = 1 and the
// state as h0 and last_state, so decode steps are the prefill scan's bits by construction.
#include "mamba_common.h"
#include "scan_impl.h"

namespace sparq::mamba {

using namespace detail_mamba;

namespace {

constexpr const char* kOp = "mamba::selective_state_update";

// [Bt, D] -> [Bt, D, 1] with the same strides (any dtype check happens in the scan).
Tensor as_time1(const char* arg, const Tensor& t, std::int64_t batch, std::int64_t D) {
  if (!t.defined()) return t;
  if (t.rank() != 2 || t.dim(0) != batch || t.dim(1) != D)
    rt::fail(ErrorCode::shape_mismatch, kOp, "{} is {}; expected [Bt, D] = [{}, {}]", arg,
             t.desc().describe(), batch, D);
  return t.view({batch, D, 1}, {stride(t, 0), stride(t, 1), 1}, t.offset());
}

// B/C (as mamba_ssm's decode step: per token): [Bt, N] -> [Bt, 1, N, 1]; [Bt, G, N] ->
// [Bt, G, N, 1].
Tensor bc_time1(const char* arg, const Tensor& t, std::int64_t batch) {
  if (!t.defined()) rt::fail(ErrorCode::invalid_argument, kOp, "{} is required", arg);
  if (t.rank() == 2 && t.dim(0) == batch)
    return t.view({batch, 1, t.dim(1), 1}, {stride(t, 0), 0, stride(t, 1), 1}, t.offset());
  if (t.rank() == 3 && t.dim(0) == batch)
    return t.view({batch, t.dim(1), t.dim(2), 1}, {stride(t, 0), stride(t, 1), stride(t, 2), 1},
                  t.offset());
  rt::fail(ErrorCode::shape_mismatch, kOp, "{} is {}; expected [Bt, N] or [Bt, G, N] with Bt = {}",
           arg, t.desc().describe(), batch);
}

}  // namespace

Tensor selective_state_update(Context& ctx, const StateUpdateArgs& a) {
  detail::check_tensor_owner(kOp, "state", a.state, *ctx.impl());
  detail::check_tensor_owner(kOp, "x", a.x, *ctx.impl());
  if (a.x.rank() != 2)
    rt::fail(ErrorCode::shape_mismatch, kOp, "x is {}; expected [Bt, D]", a.x.desc().describe());
  const std::int64_t batch = a.x.dim(0), D = a.x.dim(1);
  if (a.state.rank() != 3 || a.state.dim(0) != batch || a.state.dim(1) != D)
    rt::fail(ErrorCode::shape_mismatch, kOp, "state is {}; expected f32 [Bt, D, N] = [{}, {}, N]",
             a.state.desc().describe(), batch, D);
  check_float(kOp, "state", a.state, *ctx.impl(), {batch, D, a.state.dim(2)}, true);
  check_float(kOp, "x", a.x, *ctx.impl(), {batch, D});
  check_float(kOp, "dt", a.dt, *ctx.impl(), {batch, D});
  if (a.z.defined()) check_float(kOp, "z", a.z, *ctx.impl(), {batch, D});
  SelectiveScanArgs s;
  s.u = as_time1("x", a.x, batch, D);
  s.delta = as_time1("dt", a.dt, batch, D);
  s.z = as_time1("z", a.z, batch, D);
  s.A = a.A;
  s.Bm = bc_time1("Bm", a.Bm, batch);
  s.Cm = bc_time1("Cm", a.Cm, batch);
  s.Dskip = a.Dskip;
  s.delta_bias = a.dt_bias;
  s.h0 = a.state;
  s.delta_softplus = a.dt_softplus;
  // The scan checks state against [Bt, D, N] f32 contiguous as h0 before writing it.
  auto r = scan_impl(ctx, s, kOp, a.state);
  return r.out.view({batch, D}, {D, 1}, 0);
}

}  // namespace sparq::mamba
