// sparq::attention over a SparseIndex (spec §3): validate Q/K/V and the index against the call
// (and invariants 1-8 for an index that sparq's builders did not make), then sparse_prefill.cl
// or its fallback.
#include <mutex>

#include "fallback_cpu/sparse/sparse_fallback.h"
#include "host/src/attention/attention_access.h"
#include "host/src/attention/attention_validate.h"
#include "host/src/attention/head_dim_pad.h"
#include "host/src/attention/sage8_sparse.h"
#include "host/src/nvfp4/nvfp4_common.h"
#include "sparse_common.h"
#include "sparse_kernels.h"

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

fallback::sparse::In host_in(const Tensor& t) {
  fallback::sparse::In x;
  x.p = detail::host_data(t);
  x.dtype = static_cast<int>(t.dtype());
  x.sb = t.strides()[0];
  x.sh = t.strides()[1];
  x.sr = t.strides()[2];
  return x;
}

void check_index_tensors(const SparseIndex& x, const detail::ContextImpl& impl) {
  const std::int64_t B = x.B, Hi = x.Hi, n = x.nqb;
  auto chk = [&](const Tensor& t, const char* name, std::vector<std::int64_t> shape) {
    detail::check_tensor_owner(kAttOp, name, t, impl);
    if (t.dtype() != DType::i32 || t.shape() != shape || !t.is_contiguous())
      rt::fail(ErrorCode::shape_mismatch, kAttOp, "index.{} is {}; expected contiguous i32[{}]",
               name, t.desc().describe(), fmt::join(shape, ", "));
  };
  require(kAttOp, x.max_tiles >= 0 && x.max_cols >= 0 && x.nqb >= 1,
          "index capacities max_tiles = {}, max_cols = {}, nqb = {} are invalid", x.max_tiles,
          x.max_cols, x.nqb);
  chk(x.tile_count, "tile_count", {B, Hi, n});
  chk(x.tile_start, "tile_start", {B, Hi, n, x.max_tiles});
  chk(x.col_count, "col_count", {B, Hi, n});
  chk(x.col_index, "col_index", {B, Hi, n, x.max_cols});
  require(kAttOp, x.qpos.defined() == x.kpos.defined(), "index.qpos and index.kpos come together");
  if (x.qpos.defined()) {
    chk(x.qpos, "qpos", {B, x.Lq});
    chk(x.kpos, "kpos", {B, x.Lk});
  }
}

}  // namespace

namespace sparse_detail {

// The kernel over a validated call (also used by the pattern overload).
AttentionResult run_sparse_prefill(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                   const SparseIndex& x, const AttentionOptions& options,
                                   std::int64_t scale_dim) {
  using namespace attention_detail;
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(kAttOp, "Q", q, impl);
  detail::check_tensor_owner(kAttOp, "K", k, impl);
  detail::check_tensor_owner(kAttOp, "V", v, impl);
  AttentionOptions fp32 = options;  // the checks up to the precision routing are precision-free
  fp32.precision = Precision::fp32;
  const AttentionDims d =
      validate_dense(kAttOp, q.desc(), k.desc(), v.desc(), fp32, max_alloc(impl));
  if (kernel_head_dim(d.d) == 0)
    rt::fail(ErrorCode::unsupported, kAttOp,
             "head dim D = {}; sparse attention supports 1 to 128 (64 and 128 natively, others by "
             "exact zero-padding)",
             d.d);
  if (options.out_dtype != DType::f32)
    rt::fail(ErrorCode::unsupported, kAttOp, "out_dtype {}; the sparse kernel writes f32",
             dtype_name(options.out_dtype));
  require(kAttOp, d.lq <= d.lk, "Lq = {} > Lk = {}; sparse prefill needs Lq <= Lk", d.lq, d.lk);
  require(kAttOp, x.B == d.batch && x.Lq == d.lq && x.Lk == d.lk && x.off == d.lk - d.lq,
          "index was built for B = {}, Lq = {}, Lk = {}, off = {}; the call has B = {}, Lq = {}, "
          "Lk = {}",
          x.B, x.Lq, x.Lk, x.off, d.batch, d.lq, d.lk);
  require(kAttOp, x.causal == options.causal,
          "index was built with causal = {}; options.causal is {}", x.causal, options.causal);
  const std::int64_t want_hi = x.sharing == IndexSharing::kv_group ? d.hkv : d.hq;
  require(kAttOp,
          (x.sharing == IndexSharing::per_q_head || x.sharing == IndexSharing::kv_group) &&
              x.Hi == want_hi,
          "index has Hi = {} rows per batch with sharing {}; the call needs {} ({})", x.Hi,
          static_cast<int>(x.sharing), want_hi, x.sharing == IndexSharing::kv_group ? "Hkv" : "Hq");
  check_index_tensors(x, impl);
  if (!sealed(x)) validate_index(x);       // a caller-made index: invariants 1-8, host side
  check_masks_precision(kAttOp, options);  // masks: fp32 only, before any quantized branch
  if (options.precision == Precision::int8) return sage8_sparse_attention(ctx, q, k, v, x, options);
  if (options.precision == Precision::nvfp4)
    return {nvfp4_detail::attention_nvfp4(ctx, q, k, v, options, 0, -1, &x), Tensor()};
  check_fp32_precision(kAttOp, options);
  if (const std::int64_t kd = kernel_head_dim(d.d); kd != d.d) {  // exact zero-padding
    AttentionResult r = run_sparse_prefill(ctx, pad_head_dim(ctx, q, kd), pad_head_dim(ctx, k, kd),
                                           pad_head_dim(ctx, v, kd), x, options, d.d);
    r.out = unpad_head_dim(ctx, r.out, d.d);
    return r;
  }

  const float c = scale_constant(kAttOp, options.scale, scale_dim ? scale_dim : d.d);
  const HookPlan hooks = plan_hooks(kAttOp, ctx, options, d.batch, d.hq, d.lk, false, false);
  AttentionResult r;
  r.out = new_tensor(impl, ctx.impl(), DType::f32, {d.batch, d.hq, d.lq, d.d});
  if (options.return_lse) r.lse = new_tensor(impl, ctx.impl(), DType::f32, {d.batch, d.hq, d.lq});
  const bool share = x.sharing == IndexSharing::kv_group;
  if (!impl.device) {
    fallback::sparse::PrefillProblem p;
    p.q = host_in(q);
    p.k = host_in(k);
    p.v = host_in(v);
    p.out = reinterpret_cast<float*>(detail::host_data_mut(r.out));
    p.lse = options.return_lse ? reinterpret_cast<float*>(detail::host_data_mut(r.lse)) : nullptr;
    auto i32 = [](const Tensor& t) {
      return t.numel() ? reinterpret_cast<const std::int32_t*>(detail::host_data(t)) : nullptr;
    };
    p.tcount = i32(x.tile_count);
    p.tstart = i32(x.tile_start);
    p.ccount = i32(x.col_count);
    p.cidx = i32(x.col_index);
    if (x.qpos.defined()) {
      p.qpos = i32(x.qpos);
      p.kpos = i32(x.kpos);
    }
    p.B = static_cast<int>(d.batch);
    p.Hq = static_cast<int>(d.hq);
    p.Hkv = static_cast<int>(d.hkv);
    p.Hi = x.Hi;
    p.D = static_cast<int>(d.d);
    p.share = share;
    p.max_tiles = x.max_tiles;
    p.max_cols = x.max_cols;
    p.lq = static_cast<int>(d.lq);
    p.lk = static_cast<int>(d.lk);
    p.off = static_cast<int>(d.lk - d.lq);
    p.causal = options.causal;
    p.sink = x.sink_tokens;
    p.window = x.window_tokens;
    p.c = c;
    if (hooks.on) {
      p.hooks = true;
      p.wl = hooks.wl;
      p.wr = hooks.wr;
      p.cap2 = hooks.cap2;
      p.head = hooks.head.data();
      p.key_mask = hooks.key_mask.defined() ? hooks.mask_row(0) : nullptr;
      p.mask_sb = hooks.mask_sb;
    }
    fallback::sparse::sparse_prefill(p);
    return r;
  }
  auto& dev = *impl.device;
  const PrefillKernelConfig cfg = PrefillKernelConfig::for_device(
      static_cast<int>(d.d), dev.info().is_gpu, dev.quirks().is_nvidia);
  cl::Kernel kern = dev.kernel(cfg.source, cfg.kernel, cfg.defines() + hooks.defines());
  const cl::Buffer& dummy = r.out.storage()->buffer;
  auto buf = [&](const Tensor& t) -> const cl::Buffer& {
    return t.defined() && t.numel() ? t.storage()->buffer : dummy;
  };
  cl_uint i = 0;
  // buffer, element offset, strides (batch, row, head), dtype code (attention_launch.cpp's order)
  auto tensor = [&](const Tensor& t, bool with_dtype) {
    kern.setArg(i++, t.storage()->buffer);
    kern.setArg(i++, static_cast<cl_long>(t.offset()));
    kern.setArg(i++, static_cast<cl_long>(t.strides()[0]));
    kern.setArg(i++, static_cast<cl_long>(t.strides()[2]));
    kern.setArg(i++, static_cast<cl_long>(t.strides()[1]));
    if (with_dtype) kern.setArg(i++, static_cast<cl_int>(t.dtype()));
  };
  tensor(q, true);
  tensor(k, true);
  tensor(v, true);
  for (int z = 0; z < 3; ++z) {  // int8 row scales (K, V) and page table: none
    kern.setArg(i++, dummy);
    for (int y = 0; y < (z < 2 ? 4 : 2); ++y) kern.setArg(i++, static_cast<cl_long>(0));
  }
  kern.setArg(i++, static_cast<cl_int>(0));  // page_size: K/V not paged
  tensor(r.out, true);                       // O: fp32 [B, Hq, Lq, D]
  tensor(r.out, false);                      // the merged state between segments: O itself
  if (options.return_lse) {
    // lse [B, Hq, Lq] as a [B, Hq, Lq, 1] view: strides batch, row, head
    kern.setArg(i++, r.lse.storage()->buffer);
    kern.setArg(i++, static_cast<cl_long>(r.lse.offset()));
    kern.setArg(i++, static_cast<cl_long>(r.lse.strides()[0]));
    kern.setArg(i++, static_cast<cl_long>(r.lse.strides()[2]));
    kern.setArg(i++, static_cast<cl_long>(r.lse.strides()[1]));
  } else {
    kern.setArg(i++, dummy);
    for (int z = 0; z < 4; ++z) kern.setArg(i++, static_cast<cl_long>(0));
  }
  kern.setArg(i++, static_cast<cl_int>(options.return_lse));
  kern.setArg(i++, buf(x.tile_count));
  kern.setArg(i++, buf(x.tile_start));
  kern.setArg(i++, buf(x.col_count));
  kern.setArg(i++, buf(x.col_index));
  kern.setArg(i++, buf(x.qpos));
  kern.setArg(i++, buf(x.kpos));
  kern.setArg(i++, static_cast<cl_int>(x.qpos.defined()));
  kern.setArg(i++, static_cast<cl_int>(x.Hi));
  kern.setArg(i++, static_cast<cl_int>(d.hq / d.hkv));
  kern.setArg(i++, static_cast<cl_int>(share));
  kern.setArg(i++, static_cast<cl_int>(x.max_tiles));
  kern.setArg(i++, static_cast<cl_int>(x.max_cols));
  kern.setArg(i++, static_cast<cl_int>(d.lq));
  kern.setArg(i++, static_cast<cl_int>(d.lk));
  kern.setArg(i++, static_cast<cl_int>(d.lk - d.lq));
  kern.setArg(i++, static_cast<cl_int>(options.causal));
  kern.setArg(i++, static_cast<cl_int>(x.sink_tokens));
  kern.setArg(i++, static_cast<cl_int>(x.window_tokens));
  kern.setArg(i++, static_cast<cl_float>(c));
  if (hooks.on) i = set_hook_args(kern, i, hooks, dummy);
  dev.launch(kAttOp, kern, cl::NDRange(cfg.work_group() * d.hq, x.nqb, d.batch),
             cl::NDRange(cfg.work_group(), 1, 1));
  return r;
}

}  // namespace sparse_detail

AttentionResult attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                          const SparseIndex& index, const AttentionOptions& options) {
  attention_detail::check_masks_precision(kAttOp, options);
  return run_sparse_prefill(ctx, q, k, v, index, options, 0);
}

}  // namespace sparq
