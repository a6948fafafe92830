// Precision::int8 attention: validate -> smooth + quantize (host/src/quant/quant_ops.h) ->
// kernels_cl/attention/sage8.cl (portable integer path, or inline PTX mma.sync on NVIDIA) or
// fallback_cpu/attention/sage8.cpp; dense calls with Lq <= 127 run sage8_decode.cl (same bits;
// SPARQ_TUNE_SAGE8=decode=0 turns that off). Also the staged public API of sparq/int8_attention.h.
#include "sage8_attention.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>

#include "attention_access.h"
#include "attention_validate.h"
#include "device_runtime.h"
#include "errors.h"
#include "fallback_cpu/attention/sage8_fallback.h"
#include "head_dim_pad.h"
#include "host/src/quant/quant_ops.h"
#include "quant_decode.h"
#include "sage8_kernels.h"
#include "sage8_sparse.h"
#include "sparq/int8_attention.h"

namespace sparq {

namespace attention_detail {

namespace {

constexpr std::int64_t kQBlock = 128, kKBlock = 64;
// Bound of the per-slice delta workspace of attention() with per-block Q smoothing.
constexpr std::uint64_t kDeltaSliceBytes = std::uint64_t{256} << 20;

std::int64_t cdiv(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

const cl::Buffer& buffer(const Tensor& t) {
  return t.storage()->buffer;
}

// The kernel variant for this device. SPARQ_SAGE8_MMA (for A/B checks and tests) = "0": the
// portable path; "emulate": the MMA path with emulated mma.sync (any device).
Sage8KernelConfig kernel_config(const rt::DeviceRuntime& dev, int head_dim, bool sparse) {
  const auto& q = dev.quirks();
  Sage8KernelConfig cfg{head_dim, q.inline_ptx && q.cc_major >= 8, false, sparse};
  if (const char* env = std::getenv("SPARQ_SAGE8_MMA")) {
    if (std::string(env) == "0") cfg.mma = false;
    if (std::string(env) == "emulate") cfg.mma = cfg.emulate = true;
  }
  apply_sage8_tuning(cfg, q.is_nvidia);
  return cfg;
}

using Dims = Sage8Dims;
using Slice = Sage8Slice;

void check_quant_options(const char* op, const AttentionOptions& o) {
  if (o.return_lse)
    rt::fail(ErrorCode::unsupported, op, "options.return_lse is not supported with int8 precision");
  if (o.out_dtype != DType::f32)
    rt::fail(ErrorCode::unsupported, op,
             "options.out_dtype is {}; int8 precision writes f32 output only",
             dtype_name(o.out_dtype));
  const auto qs = o.quant.q_smooth;
  if (qs != QSmooth::off && qs != QSmooth::per_head && qs != QSmooth::per_block128)
    rt::fail(ErrorCode::invalid_argument, op, "options.quant.q_smooth is not a known QSmooth");
}

// pad: attention() also takes D < 128 by exact zero-padding (head_dim_pad.h).
void check_head_dim_8(const char* op, std::int64_t d, bool pad = false) {
  if (pad && kernel_head_dim(d) == 0)
    rt::fail(ErrorCode::unsupported, op,
             "head dim D = {} is not supported with int8 precision; supported: 1 to 128 (64 and "
             "128 natively, others by exact zero-padding)",
             d);
  if (!pad && d != 64 && d != 128)
    rt::fail(ErrorCode::unsupported, op,
             "head dim D = {} is not supported with int8 precision; supported: 64, 128", d);
}

}  // namespace

Dims validate_sage8(const char* op, const TensorDesc& q, const TensorDesc& k, const TensorDesc& v,
                    const AttentionOptions& options, std::uint64_t max_alloc, bool pad) {
  AttentionOptions fp = options;
  fp.precision = Precision::fp32;
  const AttentionDims d = validate_dense(op, q, k, v, fp, max_alloc);
  check_head_dim_8(op, d.d, pad);
  check_quant_options(op, options);
  const std::int64_t lk64 = cdiv(d.lk, 64) * 64;
  check_alloc(op, "int8 V", DType::i8, {d.batch, d.hkv, d.d, lk64}, max_alloc);
  check_alloc(op, "int8 Q", DType::i8, {d.batch, d.hq, d.lq, d.d}, max_alloc);
  return {d.batch, d.hq, d.hkv, d.lq, d.lk, d.d};
}

namespace {

// One contiguous tensor of the packed form: dtype and shape exactly.
void check_packed(const char* op, const char* arg, const Tensor& t, const detail::ContextImpl& impl,
                  DType dt, const std::vector<std::int64_t>& shape) {
  detail::check_tensor_owner(op, arg, t, impl);
  if (t.dtype() != dt || t.shape() != shape || !t.is_contiguous() || t.offset() != 0)
    rt::fail(ErrorCode::shape_mismatch, op, "{} is {}; expected a whole contiguous {}[{}]", arg,
             t.desc().describe(), dtype_name(dt), fmt::join(shape, ", "));
}

Tensor new_out(Context& ctx, const Dims& d) {
  return new_tensor(*ctx.impl(), ctx.impl(), DType::f32, {d.batch, d.hq, d.lq, d.d});
}

// Q/K/V quantized as §5 (means, codes, scales); qm returned for the delta slices.
Sage8Packed quantize(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v, const Dims& d,
                     const AttentionOptions& o, float c, Tensor* qm_out, Tensor* km_out,
                     quant_detail::Scratch* scratch = nullptr) {
  Tensor km, qm;
  if (o.quant.k_smooth) km = quant_detail::block_mean(ctx, k, d.lk, scratch);
  const std::int64_t qrows = o.quant.q_smooth == QSmooth::per_block128 ? kQBlock : d.lq;
  if (o.quant.q_smooth != QSmooth::off) qm = quant_detail::block_mean(ctx, q, qrows, scratch);
  Sage8Packed p;
  auto qq = quant_detail::int8_blocks(ctx, q, qm, qrows, c, kQBlock, scratch);
  auto kq = quant_detail::int8_blocks(ctx, k, km, d.lk, 1.0f, kKBlock, scratch);
  auto vq = quant_detail::int8_v(ctx, v, scratch);
  p.q = {qq.codes, qq.scales};
  p.k = {kq.codes, kq.scales};
  p.v = {vq.codes, vq.scales};
  *qm_out = qm;
  *km_out = km;
  return p;
}

}  // namespace

cl::Kernel own_sage8_kernel(rt::DeviceRuntime& dev, std::int64_t head_dim) {
  const Sage8KernelConfig cfg = kernel_config(dev, static_cast<int>(head_dim), false);
  return dev.own_kernel(cfg.source(), cfg.kernel, cfg.defines());
}

void run_sage8_slice(Context& ctx, const Sage8Packed& p, const Dims& d, const Slice& s, bool causal,
                     float c, const Tensor& out, const SparseIndex* index, cl::Kernel* own) {
  auto& impl = *ctx.impl();
  // Short query blocks: the decode kernel (16-row blocks per KV-head group, split-KV) computes
  // the same chunked order with the same bits; delta then has one row per (b, h). Its split
  // workspace must fit one allocation (else the prefill kernel runs, which needs none).
  if (!index && d.lq <= kQuantDecodeMaxRows && s.row0 == 0 && s.row1 == d.lq &&
      (!s.delta.defined() || (s.blk0 == 0 && s.nblk == 1)) && sage8_route_decode() &&
      (!impl.device ||
       quant_decode_fits(impl.info.max_alloc_bytes, d.batch * d.hq * d.lq, d.lk, d.d))) {
    run_sage8_decode(ctx, p, d, s.delta, causal, c, out, "attention");
    return;
  }
  if (!impl.device) {
    fallback::Sage8Problem f;
    f.q8 = reinterpret_cast<const std::int8_t*>(detail::host_data(p.q.codes));
    f.k8 = reinterpret_cast<const std::int8_t*>(detail::host_data(p.k.codes));
    f.v8 = reinterpret_cast<const std::int8_t*>(detail::host_data(p.v.codes));
    f.sq = reinterpret_cast<const float*>(detail::host_data(p.q.scales));
    f.sk = reinterpret_cast<const float*>(detail::host_data(p.k.scales));
    f.sv = reinterpret_cast<const float*>(detail::host_data(p.v.scales));
    if (s.delta.defined()) f.delta = reinterpret_cast<const float*>(detail::host_data(s.delta));
    f.delta_rows = s.delta_rows;
    f.delta_blk0 = s.blk0;
    f.delta_nblk = s.nblk;
    f.out = reinterpret_cast<float*>(detail::host_data_mut(out));
    f.batch = d.batch;
    f.hq = d.hq;
    f.hkv = d.hkv;
    f.d = d.d;
    f.lq = d.lq;
    f.lk = d.lk;
    f.row0 = s.row0;
    f.row1 = s.row1;
    f.causal = causal;
    f.c = c;
    if (index)
      fallback::sage8_sparse_attention(f, sage8_sparse_fallback_index(*index));
    else
      fallback::sage8_attention(f);
    return;
  }
  auto& dev = *impl.device;
  const Sage8KernelConfig cfg = kernel_config(dev, static_cast<int>(d.d), index != nullptr);
  cl::Kernel k = own ? *own : dev.kernel(cfg.source(), cfg.kernel, cfg.defines());
  const std::int64_t qb0 = s.row0 / cfg.rows_per_group();
  const std::int64_t nqb = cdiv(s.row1, cfg.rows_per_group()) - qb0;
  const bool has_delta = s.delta.defined();
  rt::set_kernel_args(
      "attention", k, buffer(p.q.codes), buffer(p.q.scales), buffer(p.k.codes), buffer(p.k.scales),
      buffer(p.v.codes), buffer(p.v.scales), has_delta ? buffer(s.delta) : buffer(p.q.scales),
      static_cast<cl_int>(has_delta), static_cast<cl_int>(s.delta_rows),
      static_cast<cl_int>(s.blk0), static_cast<cl_int>(s.nblk), buffer(out),
      static_cast<cl_int>(d.hq), static_cast<cl_int>(d.hq / d.hkv), static_cast<cl_int>(d.lq),
      static_cast<cl_int>(d.lk), static_cast<cl_int>(causal), c, static_cast<cl_int>(qb0),
      static_cast<cl_int>(nqb));
  if (index) set_sage8_sparse_args(k, Sage8KernelConfig::dense_args, *index, buffer(out));
  dev.launch(index ? "attention (sparse)" : "attention", k,
             cl::NDRange(static_cast<std::size_t>(cfg.work_group() * nqb),
                         static_cast<std::size_t>(d.hq), static_cast<std::size_t>(d.batch)),
             cl::NDRange(cfg.work_group(), 1, 1));
}

AttentionResult sage8_attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOptions& options, const SparseIndex* index,
                                std::int64_t scale_dim, Tensor out,
                                quant_detail::Scratch* scratch) {
  const char* op = index ? "attention (sparse)" : "attention";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "Q", q, impl);
  detail::check_tensor_owner(op, "K", k, impl);
  detail::check_tensor_owner(op, "V", v, impl);
  const Dims d = validate_sage8(op, q.desc(), k.desc(), v.desc(), options, max_alloc(impl), true);
  if (const std::int64_t kd = kernel_head_dim(d.d); kd != d.d) {  // exact zero-padding
    const AttentionResult r =
        sage8_attention(ctx, pad_head_dim(ctx, q, kd), pad_head_dim(ctx, k, kd),
                        pad_head_dim(ctx, v, kd), options, index, d.d, {}, scratch);
    return {unpad_head_dim(ctx, r.out, d.d, out), {}};
  }
  const float c = scale_constant(op, options.scale, scale_dim ? scale_dim : d.d);
  Tensor qm, km;
  const Sage8Packed p = quantize(ctx, q, k, v, d, options, c, &qm, &km, scratch);
  if (!out.defined()) out = new_out(ctx, d);
  const auto qs = options.quant.q_smooth;
  if (qs == QSmooth::off) {
    run_sage8_slice(ctx, p, d, {0, d.lq, {}}, options.causal, c, out, index);
  } else if (qs == QSmooth::per_head) {
    Slice s{0, d.lq, quant_detail::smooth_delta(ctx, qm, 0, 1, k, km, scratch), d.lq, 0, 1};
    run_sage8_slice(ctx, p, d, s, options.causal, c, out, index);
  } else {
    // delta of a few 128-row blocks at a time, so its workspace stays bounded at any length.
    const std::int64_t nblk_q = cdiv(d.lq, kQBlock);
    const std::uint64_t per_block = static_cast<std::uint64_t>(d.batch * d.hq * d.lk) * 4;
    std::int64_t step = static_cast<std::int64_t>(
        std::max<std::uint64_t>(1, kDeltaSliceBytes / std::max<std::uint64_t>(per_block, 1)));
    if (impl.device)
      step = std::min<std::int64_t>(
          step, std::max<std::int64_t>(
                    1, static_cast<std::int64_t>(impl.info.max_alloc_bytes / per_block)));
    for (std::int64_t b0 = 0; b0 < nblk_q; b0 += step) {
      const std::int64_t nb = std::min(step, nblk_q - b0);
      check_alloc(op, "delta workspace", DType::f32, {d.batch, d.hq, nb, d.lk}, max_alloc(impl));
      Slice s{b0 * kQBlock,
              std::min(d.lq, (b0 + nb) * kQBlock),
              quant_detail::smooth_delta(ctx, qm, b0, nb, k, km, scratch),
              kQBlock,
              b0,
              nb};
      run_sage8_slice(ctx, p, d, s, options.causal, c, out, index);
    }
  }
  return {out, {}};
}

Sage8PackedCall check_sage8_packed(const char* op, const Sage8Packed& p,
                                   const AttentionOptions& options,
                                   const detail::ContextImpl& impl) {
  detail::check_tensor_owner(op, "q.codes", p.q.codes, impl);
  detail::check_tensor_owner(op, "k.codes", p.k.codes, impl);
  const auto& qs = p.q.codes.shape();
  const auto& ks = p.k.codes.shape();
  if (qs.size() != 4 || ks.size() != 4)
    rt::fail(ErrorCode::shape_mismatch, op,
             "q.codes and k.codes must be i8 [B, H, L, D]; got {} and {}",
             p.q.codes.desc().describe(), p.k.codes.desc().describe());
  const Dims d{qs[0], qs[1], ks[1], qs[2], ks[2], qs[3]};
  if (d.batch < 1 || d.hq < 1 || d.hkv < 1 || d.lq < 1 || d.lk < 1)
    rt::fail(ErrorCode::shape_mismatch, op, "q.codes {} / k.codes {} have an empty dimension",
             p.q.codes.desc().describe(), p.k.codes.desc().describe());
  check_head_dim_8(op, d.d);
  check_heads(op, d.hq, d.hkv);
  check_length(op, "Lq", d.lq);
  check_length(op, "Lk", d.lk);
  check_quant_options(op, options);
  const float c = scale_constant(op, options.scale, d.d);
  const std::int64_t lk64 = cdiv(d.lk, 64) * 64;
  check_packed(op, "q.codes", p.q.codes, impl, DType::i8, {d.batch, d.hq, d.lq, d.d});
  check_packed(op, "q.scales", p.q.scales, impl, DType::f32, {d.batch, d.hq, cdiv(d.lq, kQBlock)});
  check_packed(op, "k.codes", p.k.codes, impl, DType::i8, {d.batch, d.hkv, d.lk, d.d});
  check_packed(op, "k.scales", p.k.scales, impl, DType::f32, {d.batch, d.hkv, cdiv(d.lk, kKBlock)});
  check_packed(op, "v.codes", p.v.codes, impl, DType::i8, {d.batch, d.hkv, d.d, lk64});
  check_packed(op, "v.scales", p.v.scales, impl, DType::f32, {d.batch, d.hkv, d.d, lk64 / 16});
  Slice s{0, d.lq, {}};
  if (p.delta.defined()) {
    detail::check_tensor_owner(op, "delta", p.delta, impl);
    const std::int64_t nb = p.delta.rank() == 4 ? p.delta.dim(2) : 0;
    if (nb != 1 && nb != cdiv(d.lq, kQBlock))
      rt::fail(ErrorCode::shape_mismatch, op,
               "delta is {}; expected f32[{}, {}, {} or 1, {}] (per 128-row block or per head)",
               p.delta.desc().describe(), d.batch, d.hq, cdiv(d.lq, kQBlock), d.lk);
    check_packed(op, "delta", p.delta, impl, DType::f32, {d.batch, d.hq, nb, d.lk});
    s = {0, d.lq, p.delta, nb == 1 ? d.lq : kQBlock, 0, nb};
  }
  return {d, s, c};
}

Support supports_sage8(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                       const TensorDesc& v, const AttentionOptions& options) {
  return support_of(
      [&] { validate_sage8("attention", q, k, v, options, max_alloc(*ctx.impl()), true); });
}

std::vector<rt::KernelVariant> sage8_kernel_variants() {
  std::vector<rt::KernelVariant> out;
  for (int dim : {64, 128})
    for (int mode = 0; mode < 3; ++mode)  // portable, PTX, emulated PTX
      for (bool sparse : {false, true}) {
        const Sage8KernelConfig cfg{dim, mode > 0, mode == 2, sparse};
        rt::KernelVariant kv{cfg.source(), cfg.defines()};
        kv.needs_inline_ptx = mode == 1;
        out.push_back(kv);
      }
  return out;
}

}  // namespace attention_detail

using namespace attention_detail;

Sage8Packed sage8_quantize(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionOptions& options) {
  constexpr const char* op = "sage8_quantize";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "Q", q, impl);
  detail::check_tensor_owner(op, "K", k, impl);
  detail::check_tensor_owner(op, "V", v, impl);
  const Dims d = validate_sage8(op, q.desc(), k.desc(), v.desc(), options, max_alloc(impl));
  const float c = scale_constant(op, options.scale, d.d);
  Tensor qm, km;
  Sage8Packed p = quantize(ctx, q, k, v, d, options, c, &qm, &km);
  if (qm.defined()) {
    check_alloc(op, "delta", DType::f32, {d.batch, d.hq, qm.dim(2), d.lk}, max_alloc(impl));
    p.delta = quant_detail::smooth_delta(ctx, qm, 0, qm.dim(2), k, km);
  }
  return p;
}

Sage8PackedShape attention_detail::validate_sage8_packed(const char* op,
                                                         const detail::ContextImpl& impl,
                                                         const Sage8Packed& p,
                                                         const AttentionOptions& options) {
  const Sage8PackedCall call = check_sage8_packed(op, p, options, impl);
  const Sage8Dims& d = call.d;
  return {d.batch, d.hq, d.hkv,  d.lq,
          d.lk,    d.d,  call.c, call.slice.delta.defined() ? call.slice.nblk : 0};
}

AttentionResult sage8_attention_packed(Context& ctx, const Sage8Packed& p,
                                       const AttentionOptions& options) {
  constexpr const char* op = "sage8_attention_packed";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const Sage8PackedCall call = check_sage8_packed(op, p, options, impl);
  Tensor out = new_out(ctx, call.d);
  run_sage8_slice(ctx, p, call.d, call.slice, options.causal, call.c, out);
  return {out, {}};
}

}  // namespace sparq
