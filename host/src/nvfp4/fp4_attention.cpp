// sparq::fp4_attention_packed: validate the packed tensors -> Fp4Plan -> launch
// kernels_cl/nvfp4/fp4_attention.cl (portable integer dots, or NVIDIA inline-PTX MMA by device
// quirks; Lq <= 127: fp4_decode.cl, fp4_decode.cpp), or run fallback_cpu/nvfp4/fp4_attention.cpp.
// Every path gives the same bits.
#include <cmath>
#include <mutex>

#include "fallback_cpu/nvfp4/nvfp4_fallback.h"
#include "host/src/attention/attention_validate.h"
#include "nvfp4_common.h"

namespace sparq {

namespace nvfp4_detail {

Fp4DotPath default_dot_path(const detail::ContextImpl& impl) {
  if (!impl.device) return Fp4DotPath::portable;
  const rt::DeviceQuirks& q = impl.device->quirks();
  return q.inline_ptx && q.cc_major >= 8 ? Fp4DotPath::mma : Fp4DotPath::portable;
}

cl::Kernel own_fp4_kernel(const detail::ContextImpl& impl, int head_dim) {
  const Fp4AttentionKernelConfig cfg{head_dim, default_dot_path(impl), false, fp4_tuning().forms};
  return impl.device->own_kernel(cfg.source, cfg.kernel(), cfg.defines());
}

void run_fp4_attention(Context& ctx, const Fp4Plan& p, const Tensor& out, const Fp4DotPath* path,
                       cl::Kernel* own) {
  auto& impl = *ctx.impl();
  if (!impl.device) {
    fallback::nvfp4::Fp4AttentionProblem f;
    f.qc = host_ptr<std::uint8_t>(p.q.codes);
    f.qs = host_ptr<std::uint8_t>(p.q.scales);
    f.kc = host_ptr<std::uint8_t>(p.k.codes);
    f.ks = host_ptr<std::uint8_t>(p.k.scales);
    f.vc = host_ptr<std::uint8_t>(p.v.codes);
    f.vs = host_ptr<std::uint8_t>(p.v.scales);
    f.delta = p.delta.defined() ? host_ptr<float>(p.delta) : nullptr;
    f.delta_rows = p.delta_rows;
    f.delta_blk0 = p.delta_blk0;
    f.delta_nblk = p.delta_nblk;
    f.row_begin = p.row_begin;
    f.row_end = p.row_end;
    f.out = host_mut<float>(out);
    f.batch = p.batch;
    f.hq = p.hq;
    f.hkv = p.hkv;
    f.lq = p.lq;
    f.lk = p.lk;
    f.lk64 = p.lk64;
    f.d = p.d;
    f.causal = p.causal;
    f.c = p.c;
    fallback::nvfp4::Fp4SparseSteps steps;
    if (p.index) f.sparse = &(steps = sparse_steps(*p.index));
    fallback::nvfp4::fp4_attention(f);
    return;
  }
  // Short query blocks take fp4_decode.cl: the same bits (the chunked order of both kernels),
  // more work-groups for few rows. Not with a forced dot path (the tests of this kernel) or an
  // index; SPARQ_TUNE_FP4=decode=N routes Lq <= N only (0: never), for A/B on a GPU.
  if (!path && !p.index && p.row_begin == 0 && p.row_end == p.lq &&
      (!p.delta.defined() || (p.delta_blk0 == 0 && p.delta_nblk == 1 && p.delta_rows >= p.lq)) &&
      p.lq <= fp4_decode_route_rows()) {
    run_fp4_decode(ctx, p, out);
    return;
  }
  auto& dev = *impl.device;
  const Fp4AttentionKernelConfig cfg{p.d, path ? *path : default_dot_path(impl), p.index != nullptr,
                                     fp4_tuning().forms};
  cl::Kernel k = own ? *own : dev.kernel(cfg.source, cfg.kernel(), cfg.defines());
  const cl::Buffer& delta = p.delta.defined() ? buffer(p.delta) : buffer(out);
  rt::set_kernel_args(
      p.op, k, buffer(p.q.codes), buffer(p.q.scales), buffer(p.k.codes), buffer(p.k.scales),
      buffer(p.v.codes), buffer(p.v.scales), delta, static_cast<cl_int>(p.delta.defined()),
      static_cast<cl_int>(p.delta_rows), static_cast<cl_int>(p.delta_blk0),
      static_cast<cl_int>(p.delta_nblk), buffer(out), static_cast<cl_int>(p.hq),
      static_cast<cl_int>(p.hkv), static_cast<cl_int>(p.lq), static_cast<cl_int>(p.lk),
      static_cast<cl_int>(p.lk64), static_cast<cl_int>(p.row_begin), static_cast<cl_int>(p.row_end),
      static_cast<cl_int>(p.causal), static_cast<cl_float>(p.c));
  if (p.index) set_sparse_args(p.op, k, 21, *p.index, buffer(out));
  const std::int64_t blocks =
      (p.row_end - p.row_begin + cfg.rows_per_group - 1) / cfg.rows_per_group;
  dev.launch(p.op, k,
             cl::NDRange(static_cast<std::size_t>(blocks * cfg.work_group),
                         static_cast<std::size_t>(p.hq), static_cast<std::size_t>(p.batch)),
             cl::NDRange(static_cast<std::size_t>(cfg.work_group), 1, 1));
}

Fp4Plan check_fp4_packed(const char* op, const detail::ContextImpl& impl, const Fp4Packed& q,
                         const Fp4Packed& k, const Fp4PackedT& v, const Tensor* delta,
                         const AttentionOptions& options) {
  detail::check_tensor_owner(op, "q.codes", q.codes, impl);
  detail::check_tensor_owner(op, "k.codes", k.codes, impl);
  detail::check_tensor_owner(op, "v.codes", v.codes, impl);
  if (q.codes.rank() != 4 || k.codes.rank() != 4 || v.codes.rank() != 4)
    rt::fail(ErrorCode::shape_mismatch, op,
             "q.codes {}, k.codes {}, v.codes {}; expected rank-4 u8 tensors",
             q.codes.desc().describe(), k.codes.desc().describe(), v.codes.desc().describe());
  const std::int64_t B = q.codes.dim(0), Hq = q.codes.dim(1), Lq = q.codes.dim(2);
  const std::int64_t D = q.codes.dim(3) * 2, Hkv = k.codes.dim(1), Lk = k.codes.dim(2);
  if (D != 64 && D != 128)
    rt::fail(ErrorCode::unsupported, op,
             "head_dim is {} (q.codes has {} bytes per row); FP4 "
             "attention supports D = 64 and 128",
             D, q.codes.dim(3));
  require(op, B >= 1 && Hq >= 1 && Lq >= 1 && Hkv >= 1 && Lk >= 1,
          "q.codes {} / k.codes {}: every dimension must be >= 1", q.codes.desc().describe(),
          k.codes.desc().describe());
  if (Hq % Hkv != 0)
    rt::fail(ErrorCode::shape_mismatch, op,
             "K has {} heads, Q has {}; Q heads must be a multiple of K heads (GQA)", Hkv, Hq);
  require(op, Lq < (std::int64_t{1} << 30) && Lk < (std::int64_t{1} << 30),
          "Lq = {}, Lk = {}; at most 2^30 - 1 each", Lq, Lk);
  require(op, v.tokens == Lk, "v.tokens is {}; K has {} tokens", v.tokens, Lk);
  const std::int64_t Lk64 = round_up(Lk, 64);
  check_whole(op, "q.codes", q.codes, impl, DType::u8, {B, Hq, Lq, D / 2});
  check_whole(op, "q.scales", q.scales, impl, DType::u8, {B, Hq, Lq, D / 16});
  check_whole(op, "k.codes", k.codes, impl, DType::u8, {B, Hkv, Lk, D / 2});
  check_whole(op, "k.scales", k.scales, impl, DType::u8, {B, Hkv, Lk, D / 16});
  check_whole(op, "v.codes", v.codes, impl, DType::u8, {B, Hkv, D, Lk64 / 2});
  check_whole(op, "v.scales", v.scales, impl, DType::u8, {B, Hkv, D, Lk64 / 16});
  if (delta) check_whole(op, "delta", *delta, impl, DType::f32, {B, Hq, (Lq + 127) / 128, Lk});
  Fp4Plan p;
  p.op = op;
  p.batch = static_cast<int>(B);
  p.hq = static_cast<int>(Hq);
  p.hkv = static_cast<int>(Hkv);
  p.lq = static_cast<int>(Lq);
  p.lk = static_cast<int>(Lk);
  p.lk64 = static_cast<int>(Lk64);
  p.d = static_cast<int>(D);
  p.causal = options.causal;
  p.c = attention_detail::scale_constant(op, options.scale, D);
  p.q = q;
  p.k = k;
  p.v = v;
  if (delta) p.delta = *delta;
  p.delta_nblk = static_cast<int>((Lq + 127) / 128);
  p.row_end = p.lq;
  return p;
}

}  // namespace nvfp4_detail

using namespace nvfp4_detail;

Fp4Plan nvfp4_detail::plan_fp4_packed(const char* op, Context& ctx, const Fp4Packed& q,
                                      const Fp4Packed& k, const Fp4PackedT& v, const Tensor* delta,
                                      const AttentionOptions& options) {
  return check_fp4_packed(op, *ctx.impl(), q, k, v, delta, options);
}

Tensor fp4_attention_packed(Context& ctx, const Fp4Packed& q, const Fp4Packed& k,
                            const Fp4PackedT& v, const Tensor* delta,
                            const AttentionOptions& options) {
  constexpr const char* op = "fp4_attention_packed";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const Fp4Plan p = check_fp4_packed(op, impl, q, k, v, delta, options);
  Tensor out = new_tensor(ctx, DType::f32, {p.batch, p.hq, p.lq, p.d});
  run_fp4_attention(ctx, p, out);
  return out;
}

}  // namespace sparq
