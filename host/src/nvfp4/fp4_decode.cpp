// sparq::fp4_decode_packed: NVFP4 attention of short query blocks split at the 4096-key chunks:
// kernels_cl/nvfp4/fp4_decode.cl (+ merge.cl when Lk > 4096) or the fallback's chunked dense walk
// (fallback_cpu/nvfp4/fp4_attention.cpp, Fp4AttentionProblem::chunked).
#include <mutex>

#include "host/src/attention/quant_decode.h"
#include "nvfp4_common.h"

namespace sparq {

using namespace nvfp4_detail;

void nvfp4_detail::run_fp4_decode(Context& ctx, const char* op, Fp4Plan p, const Tensor& out,
                                  quant_detail::Scratch* scratch) {
  constexpr int kRowsPerGroup = 16;  // QD_ROWS of fp4_decode.cl
  auto& impl = *ctx.impl();
  if (!impl.device) {
    p.chunked = true;
    run_fp4_attention(ctx, p, out);
    return;
  }
  auto& dev = *impl.device;
  const std::int64_t rows = std::int64_t{p.batch} * p.hq * p.lq;
  const auto s = scratch ? attention_detail::quant_decode_split(ctx, op, rows, p.lk, p.d, *scratch)
                         : attention_detail::quant_decode_split(dev, op, rows, p.lk, p.d);
  cl::Kernel kr =
      dev.kernel("nvfp4/fp4_decode.cl", "fp4_decode", "-DHEAD_DIM=" + std::to_string(p.d));
  const cl::Buffer& dummy = buffer(out);
  const bool has_delta = p.delta.defined();
  rt::set_kernel_args(
      op, kr, buffer(p.q.codes), buffer(p.q.scales), buffer(p.k.codes), buffer(p.k.scales),
      buffer(p.v.codes), buffer(p.v.scales), has_delta ? buffer(p.delta) : dummy,
      static_cast<cl_int>(has_delta), buffer(out), s.split() ? s.ws_o : dummy,
      s.split() ? s.ws_lse : dummy, static_cast<cl_int>(s.split()), static_cast<cl_int>(s.nchunks),
      static_cast<cl_int>(p.hq), static_cast<cl_int>(p.hq / p.hkv), static_cast<cl_int>(p.lq),
      static_cast<cl_int>(p.lk), static_cast<cl_int>(p.causal), static_cast<cl_float>(p.c));
  const std::int64_t row_groups = (p.hq / p.hkv * p.lq + kRowsPerGroup - 1) / kRowsPerGroup;
  dev.launch(
      op, kr,
      cl::NDRange(static_cast<std::size_t>(64 * row_groups), static_cast<std::size_t>(s.nchunks),
                  static_cast<std::size_t>(p.batch) * p.hkv),
      cl::NDRange(64, 1, 1));
  if (s.split())
    attention_detail::quant_decode_merge(dev, op, s, buffer(out), p.batch, p.hq, p.lq, p.lk, p.d);
}

Tensor fp4_decode_packed(Context& ctx, const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
                         const Tensor* delta, const AttentionOptions& options) {
  constexpr const char* op = "fp4_decode_packed";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const Fp4Plan p = plan_fp4_packed(op, ctx, q, k, v, delta, options);
  if (p.lq > attention_detail::kQuantDecodeMaxRows)
    rt::fail(ErrorCode::shape_mismatch, op,
             "q.codes has Lq = {} query rows; this op takes 1 to {} (use fp4_attention_packed)",
             p.lq, attention_detail::kQuantDecodeMaxRows);
  Tensor out = new_tensor(ctx, DType::f32, {p.batch, p.hq, p.lq, p.d});
  run_fp4_decode(ctx, op, p, out);
  return out;
}

}  // namespace sparq
