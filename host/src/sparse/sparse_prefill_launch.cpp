// The sparse prefill launch shared by sparq::attention(q, k, v, index) and
// sparq::attention_paged(q, kv, index): sparse_prefill.cl (contiguous or paged K/V, run-time
// mode) or fallback_cpu/sparse/sparse_prefill.cpp, the same bits.
#include "sparse_prefill_launch.h"

#include <fmt/format.h>

#include "fallback_cpu/sparse/sparse_fallback.h"
#include "host/src/attention/attention_access.h"
#include "sparse_common.h"
#include "sparse_kernels.h"

namespace sparq::sparse_detail {

using attention_detail::Access;
using attention_detail::access_bhld;
using attention_detail::AttentionDims;
using attention_detail::HookPlan;
using attention_detail::new_tensor;

namespace {

// A tensor read through `a` (its base is the tensor's offset, already in host_data).
fallback::sparse::In host_in(const Tensor& t, const Access& a) {
  fallback::sparse::In x;
  x.p = detail::host_data(t);
  x.dtype = static_cast<int>(a.dtype);
  x.sb = a.seq;
  x.sh = a.head;
  x.sr = a.row;
  return x;
}

void check_index_tensors(const char* op, const SparseIndex& x, const detail::ContextImpl& impl) {
  const std::int64_t B = x.B, Hi = x.Hi, n = x.nqb;
  auto chk = [&](const Tensor& t, const char* name, std::vector<std::int64_t> shape) {
    detail::check_tensor_owner(op, name, t, impl);
    if (t.dtype() != DType::i32 || t.shape() != shape || !t.is_contiguous())
      rt::fail(ErrorCode::shape_mismatch, op, "index.{} is {}; expected contiguous i32[{}]", name,
               t.desc().describe(), fmt::join(shape, ", "));
  };
  require(op, x.max_tiles >= 0 && x.max_cols >= 0 && x.nqb >= 1,
          "index capacities max_tiles = {}, max_cols = {}, nqb = {} are invalid", x.max_tiles,
          x.max_cols, x.nqb);
  chk(x.tile_count, "tile_count", {B, Hi, n});
  chk(x.tile_start, "tile_start", {B, Hi, n, x.max_tiles});
  chk(x.col_count, "col_count", {B, Hi, n});
  chk(x.col_index, "col_index", {B, Hi, n, x.max_cols});
  require(op, x.qpos.defined() == x.kpos.defined(), "index.qpos and index.kpos come together");
  if (x.qpos.defined()) {
    chk(x.qpos, "qpos", {B, x.Lq});
    chk(x.kpos, "kpos", {B, x.Lk});
  }
}

}  // namespace

void check_index_meta(const char* op, const SparseIndex& x, const AttentionDims& d,
                      const AttentionOptions& options) {
  require(op, x.B == d.batch && x.Lq == d.lq && x.Lk == d.lk && x.off == d.lk - d.lq,
          "index was built for B = {}, Lq = {}, Lk = {}, off = {}; the call has B = {}, Lq = {}, "
          "Lk = {}",
          x.B, x.Lq, x.Lk, x.off, d.batch, d.lq, d.lk);
  require(op, x.causal == options.causal, "index was built with causal = {}; options.causal is {}",
          x.causal, options.causal);
  const std::int64_t want_hi = x.sharing == IndexSharing::kv_group ? d.hkv : d.hq;
  require(op,
          (x.sharing == IndexSharing::per_q_head || x.sharing == IndexSharing::kv_group) &&
              x.Hi == want_hi,
          "index has Hi = {} rows per batch with sharing {}; the call needs {} ({})", x.Hi,
          static_cast<int>(x.sharing), want_hi, x.sharing == IndexSharing::kv_group ? "Hkv" : "Hq");
}

void check_index_for_call(const char* op, const SparseIndex& x, const AttentionDims& d,
                          const AttentionOptions& options, const detail::ContextImpl& impl) {
  check_index_meta(op, x, d, options);
  check_index_tensors(op, x, impl);
  if (!sealed(x)) validate_index(x);  // a caller-made index: invariants 1-8, host side
}

AttentionResult launch_sparse_prefill(Context& ctx, const char* op, const Tensor& q,
                                      const SparseKv& kv, const SparseIndex& x,
                                      const AttentionDims& d, const AttentionOptions& options,
                                      float c, const HookPlan& hooks, const AttentionResult& into) {
  auto& impl = *ctx.impl();
  AttentionResult r = into;
  if (!r.out.defined())
    r.out = new_tensor(impl, ctx.impl(), DType::f32, {d.batch, d.hq, d.lq, d.d});
  if (options.return_lse && !r.lse.defined())
    r.lse = new_tensor(impl, ctx.impl(), DType::f32, {d.batch, d.hq, d.lq});
  const bool share = x.sharing == IndexSharing::kv_group;
  if (!impl.device) {
    fallback::sparse::PrefillProblem p;
    p.q = host_in(q, access_bhld(q));
    p.k = host_in(kv.k, kv.k_at);
    p.v = host_in(kv.v, kv.v_at);
    if (kv.page_size > 0) {
      p.page_table = kv.table.data();
      p.max_pages = kv.max_pages;
      p.page_size = kv.page_size;
      if (kv.k_scales.defined()) {
        p.k_sc = host_in(kv.k_scales, kv.ks_at);
        p.v_sc = host_in(kv.v_scales, kv.vs_at);
      }
    }
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
  // buffer, element offset, strides (batch or page, row, head), dtype code (attention_launch.cpp)
  auto tensor = [&](const Tensor& t, const Access& a, bool with_dtype) {
    kern.setArg(i++, t.storage()->buffer);
    kern.setArg(i++, static_cast<cl_long>(a.base));
    kern.setArg(i++, static_cast<cl_long>(a.seq));
    kern.setArg(i++, static_cast<cl_long>(a.row));
    kern.setArg(i++, static_cast<cl_long>(a.head));
    if (with_dtype) kern.setArg(i++, static_cast<cl_int>(a.dtype));
  };
  tensor(q, access_bhld(q), true);
  tensor(kv.k, kv.k_at, true);
  tensor(kv.v, kv.v_at, true);
  for (auto [t, a] : {std::pair{&kv.k_scales, &kv.ks_at}, std::pair{&kv.v_scales, &kv.vs_at}}) {
    if (t->defined()) {
      tensor(*t, *a, false);  // int8 row scales
    } else {
      kern.setArg(i++, dummy);
      for (int z = 0; z < 4; ++z) kern.setArg(i++, static_cast<cl_long>(0));
    }
  }
  const bool paged = kv.page_size > 0;
  kern.setArg(i++, paged ? kv.page_table.storage()->buffer : dummy);
  kern.setArg(i++, static_cast<cl_long>(paged ? kv.page_table.offset() : 0));
  kern.setArg(i++, static_cast<cl_long>(paged ? kv.page_table.strides()[0] : 0));
  kern.setArg(i++, static_cast<cl_int>(kv.page_size));
  const Access o_at = access_bhld(r.out);
  tensor(r.out, o_at, true);   // O: fp32 [B, Hq, Lq, D]
  tensor(r.out, o_at, false);  // the merged state between segments: O itself
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
  dev.launch(op, kern, cl::NDRange(cfg.work_group() * d.hq, x.nqb, d.batch),
             cl::NDRange(cfg.work_group(), 1, 1));
  return r;
}

}  // namespace sparq::sparse_detail
