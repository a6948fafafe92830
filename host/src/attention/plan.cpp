// sparq::Plan (sparq/plan.h): an AttentionPlan template made once by the one-shot ops' own
// builders (plan_builders.h), own kernel objects, and a workspace laid out once. A run checks its
// tensors against the planned descriptors, puts them into the template and calls run_attention
// with the plan's kernels and workspace regions: the launch code of the one-shot ops. Plans of
// the other ops (op_plan.h) are held here and run by their own files.
#include "sparq/plan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <deque>
#include <mutex>

#include "attention_access.h"
#include "attention_plan.h"
#include "attention_validate.h"
#include "context_impl.h"
#include "errors.h"
#include "op_plan.h"
#include "paged_kv.h"
#include "plan_builders.h"

namespace sparq {

using namespace attention_detail;
using plan_detail::check_planned;

namespace {

std::uint64_t round_up(std::uint64_t x, std::uint64_t m) {
  return (x + m - 1) / m * m;
}

}  // namespace

struct Plan::Impl {
  std::shared_ptr<plan_detail::OpPlan> op;  // a plan of another op (then nothing below is used)
  std::shared_ptr<detail::ContextImpl> owner;
  AttentionPlan p;  // template: scalars and hooks fixed, tensors put in by each run
  TensorDesc q, k, v, out, lse;
  bool paged = false, varlen = false;
  TensorDesc cu_q, cu_k;  // varlen: the offsets' descriptors
  // Paged: the planned pool and table descriptors.
  TensorDesc k_pages, v_pages, k_scales, v_scales, page_table, seq_lens;
  PageLayout layout = PageLayout::nhd;
  // Workspace layout: [ws_o | ws_lse | scratch], each region starting at a multiple of align.
  Temporaries temps;
  std::uint64_t align = 4096;  // plan_detail::workspace_align
  std::uint64_t lse_at = 0, scratch_at = 0, bytes = 0;
  DeviceResources res;
  DeviceResources dense_res;  // varlen: the dense kernel, for runs whose longest sequence takes it
  bool scalars_set = false;   // dense runs: res's kernels hold the scalars of last_offsets
  std::array<std::int64_t, 5> last_offsets{};
  Tensor own_workspace;
  // The workspace res's regions were cut from (held, so its address cannot be reused by another).
  std::shared_ptr<detail::Storage> bound_storage;
  std::int64_t bound_offset = -1;
  // Runs with host tables: the plan's device copy ([seq_lens | page_table] or [cu_q | cu_k]) and
  // the host staging vectors of the writes in flight.
  Tensor host_ints, first_view, second_view;
  struct Staging {
    std::vector<std::int32_t> data;
    cl::Event written;
  };
  std::deque<Staging> staging;

  const char* maker() const {
    if (op) return op->maker;
    return paged ? "make_attention_paged_plan"
                 : (varlen ? "make_attention_varlen_plan" : "make_attention_plan");
  }
  const char* run_call() const {
    if (op) return op->run_call;
    return paged ? "run(q, kv)" : (varlen ? "run_varlen" : "run(q, k, v)");
  }
  // A run that does not belong to this plan.
  [[noreturn]] void refuse(const char* op_name) const {
    rt::fail(ErrorCode::invalid_argument, op_name, "this plan was made by {}; call {}", maker(),
             run_call());
  }

  // A staging vector whose write has completed (or a new one: never waits for the device).
  Staging& free_staging() {
    for (Staging& s : staging)
      if (!s.written() || s.written.getInfo<CL_EVENT_COMMAND_EXECUTION_STATUS>() == CL_COMPLETE)
        return s;
    return staging.emplace_back();
  }

  void lay_out(std::int64_t max_chunks) {
    const auto& impl = *owner;
    align = plan_detail::workspace_align(impl);
    // The same bytes on the fallback, so an app sizes its workspace alike on every Context.
    const std::uint64_t max_alloc = impl.device ? impl.info.max_alloc_bytes : ~0ull;
    if (!varlen) {
      temps = device_temporaries(p, max_chunks, max_alloc);
    } else {
      // The path depends on the longest sequence (data): room for both. Probes: the row path
      // (split-capable: one query row per sequence), the dense path over all total_q rows.
      AttentionPlan rows = p, dense = p;
      const auto total_q = static_cast<std::int32_t>(out.shape[0]);
      rows.cu_q = {0, total_q};
      rows.lq = 1;
      dense.mode = KvMode::contiguous;
      dense.batch = 1;
      dense.lq = total_q;
      temps = device_temporaries(rows, max_chunks, max_alloc);
      temps.scratch = device_temporaries(dense, max_chunks, max_alloc).scratch;
      if (impl.device && uses_dense_kernel(dense))
        make_own_kernels(*impl.device, dense, false, dense_res);
    }
    lse_at = round_up(temps.ws_o, align);
    scratch_at = round_up(lse_at + temps.ws_lse, align);
    bytes = temps.ws_o + temps.ws_lse + temps.scratch == 0 ? 0 : scratch_at + temps.scratch;
    if (impl.device) {
      AttentionPlan rows = p;
      if (varlen) rows.lq = 1;  // the row kernel (dense_res holds the dense one)
      make_own_kernels(*impl.device, rows, temps.ws_o > 0, res);
    }
  }

  // Points res's buffers at regions of the run's workspace (given, or the plan's own).
  void bind_workspace(const char* op, const Tensor& given) {
    auto& impl = *owner;
    if (bytes == 0) return;
    if (given.defined()) plan_detail::check_workspace(op, given, bytes, align, impl);
    if (!impl.device) return;  // the CPU executor keeps its own temporaries
    if (!given.defined() && !own_workspace.defined())
      own_workspace = new_tensor(impl, owner, DType::u8, {static_cast<std::int64_t>(bytes)});
    const Tensor& ws = given.defined() ? given : own_workspace;
    if (ws.storage() == bound_storage && ws.offset() == bound_offset) return;
    cl::Buffer base = ws.storage()->buffer;
    const auto origin = static_cast<std::uint64_t>(ws.offset());
    auto region = [&](std::uint64_t at, std::uint64_t size) {
      if (size == 0) return cl::Buffer();
      cl_buffer_region r{static_cast<std::size_t>(origin + at), static_cast<std::size_t>(size)};
      cl_int err = CL_SUCCESS;
      cl::Buffer b =
          base.createSubBuffer(CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
      if (err != CL_SUCCESS)
        rt::fail(ErrorCode::opencl_error, op, "a workspace region of {} bytes at {}: {}", size,
                 origin + at, rt::cl_error_name(err));
      return b;
    };
    res.ws_o = region(0, temps.ws_o);
    res.ws_lse = region(lse_at, temps.ws_lse);
    res.scratch = region(scratch_at, temps.scratch);
    dense_res.scratch = res.scratch;
    bound_storage = ws.storage();
    bound_offset = ws.offset();
  }

  // Outputs: the given ones (checked) or new ones; their Access into the template.
  void bind_outputs(const char* op, const PlanBuffers& buffers) {
    auto& impl = *owner;
    if (buffers.out.defined()) {
      check_planned(op, "buffers.out", buffers.out, out, impl);
      p.out = buffers.out;
    } else {
      p.out = new_tensor(impl, owner, out.dtype, out.shape);
    }
    p.out_at = varlen ? access_thd(p.out) : access_bhld(p.out);
    if (lse.shape.empty()) {
      if (buffers.lse.defined())
        rt::fail(ErrorCode::invalid_argument, op,
                 "buffers.lse is given but the plan was made without options.return_lse");
      return;
    }
    if (buffers.lse.defined()) {
      check_planned(op, "buffers.lse", buffers.lse, lse, impl);
      p.lse = buffers.lse;
    } else {
      p.lse = new_tensor(impl, owner, DType::f32, lse.shape);
    }
    p.lse_at.base = p.lse.offset();
  }

  AttentionResult run_paged(const Tensor& q, const PagedKV& kv, const PlanBuffers& buffers,
                            const PagedTables* host) {
    constexpr const char* op = "attention_paged plan";
    if (!paged) refuse(op);
    auto& ctx = *owner;
    std::lock_guard lock(ctx.mutex);
    check_planned(op, "Q", q, this->q, ctx);
    check_planned(op, "kv.k_pages", kv.k_pages, k_pages, ctx);
    check_planned(op, "kv.v_pages", kv.v_pages, v_pages, ctx);
    if (!host) {
      check_planned(op, "kv.page_table", kv.page_table, page_table, ctx);
      check_planned(op, "kv.seq_lens", kv.seq_lens, seq_lens, ctx);
    }
    if (kv.page_size != p.page_size || kv.layout != layout)
      rt::fail(ErrorCode::shape_mismatch, op,
               "kv has page_size {} in {}; the plan was made for page_size {} in {}", kv.page_size,
               page_layout_text(kv.layout), p.page_size, page_layout_text(layout));
    const bool nhd = layout == PageLayout::nhd;
    if (kv.k_pages.dtype() == DType::i8) {
      check_planned(op, "kv.k_scales", kv.k_scales, k_scales, ctx);
      check_planned(op, "kv.v_scales", kv.v_scales, v_scales, ctx);
    } else if (kv.k_scales.defined() || kv.v_scales.defined()) {
      rt::fail(ErrorCode::invalid_argument, op,
               "kv.k_scales / kv.v_scales are given but the pages are {}; scales belong to int8 "
               "pages only",
               dtype_name(kv.k_pages.dtype()));
    }
    if (host)
      bind_host_tables(op, *host);
    else
      bind_paged_data(p, kv);
    bind_workspace(op, buffers.workspace);
    bind_outputs(op, buffers);
    p.q = q;
    p.q_at = access_bhld(q);
    p.k = kv.k_pages;
    p.v = kv.v_pages;
    p.k_at = page_access(kv.k_pages, nhd);
    p.v_at = page_access(kv.v_pages, nhd);
    if (kv.k_pages.dtype() == DType::i8) {
      p.k_scales = kv.k_scales;
      p.v_scales = kv.v_scales;
      p.ks_at = scale_access(kv.k_scales, nhd);
      p.vs_at = scale_access(kv.v_scales, nhd);
    }
    return execute();
  }

  // Host tables: checked here, then uploaded by upload_host_ints.
  void bind_host_tables(const char* op, const PagedTables& t) {
    if (!t.seq_lens || !t.page_table)
      rt::fail(ErrorCode::invalid_argument, op,
               "tables.seq_lens and tables.page_table must both point to host int32 data");
    const std::int64_t b = p.batch, entries = b * p.max_pages;
    p.seq_lens.assign(t.seq_lens, t.seq_lens + b);
    p.page_table.assign(t.page_table, t.page_table + entries);
    check_paged_tables(p);
    upload_host_ints(op, p.seq_lens, p.page_table, {b, p.max_pages});
    if (owner->device) {
      p.seq_lens_t = first_view;
      p.page_table_t = second_view;
    }
  }

  // a ++ b written to the plan's own device copy without blocking (an in-order queue runs the
  // write after the previous run's kernels), viewed as first_view [a.size()] and second_view
  // (shape_b). Each write reads a staging vector that stays untouched until the write's event
  // completes; one is added per write in flight (as many as the runs the device is behind). The
  // CPU executor reads the host copies: nothing to do on the fallback.
  void upload_host_ints(const char* op, const std::vector<std::int32_t>& a,
                        const std::vector<std::int32_t>& b, std::vector<std::int64_t> shape_b) {
    auto& impl = *owner;
    if (!impl.device) return;
    const auto na = static_cast<std::int64_t>(a.size()), nb = static_cast<std::int64_t>(b.size());
    if (!host_ints.defined()) {
      host_ints = new_tensor(impl, owner, DType::i32, {na + nb});
      first_view = host_ints.view({na}, {1}, 0);
      second_view = host_ints.view(std::move(shape_b), {}, na);
    }
    try {
      Staging& s = free_staging();
      s.data.assign(a.begin(), a.end());
      s.data.insert(s.data.end(), b.begin(), b.end());
      impl.device->queue().enqueueWriteBuffer(host_ints.storage()->buffer, CL_FALSE, 0,
                                              s.data.size() * 4, s.data.data(), nullptr,
                                              &s.written);
    } catch (const cl::Error& e) {
      rt::fail(ErrorCode::opencl_error, op, "uploading the host tables failed: {}",
               rt::cl_error_name(e.err()));
    }
  }

  AttentionResult run_varlen(const Tensor& tq, const Tensor& tk, const Tensor& tv,
                             const Tensor* cu_q_t, const Tensor* cu_k_t, const SeqOffsets* host,
                             const PlanBuffers& buffers) {
    constexpr const char* op = "attention_varlen plan";
    if (!varlen) refuse(op);
    auto& ctx = *owner;
    std::lock_guard lock(ctx.mutex);
    check_planned(op, "Q", tq, q, ctx);
    check_planned(op, "K", tk, k, ctx);
    check_planned(op, "V", tv, v, ctx);
    const std::int64_t total_q = q.shape[0], total_k = k.shape[0];
    if (host) {
      if (!host->cu_seqlens_q || !host->cu_seqlens_k)
        rt::fail(ErrorCode::invalid_argument, op,
                 "offsets.cu_seqlens_q and offsets.cu_seqlens_k must both point to host int32 "
                 "data");
      const std::size_t n = static_cast<std::size_t>(p.batch) + 1;
      p.cu_q.assign(host->cu_seqlens_q, host->cu_seqlens_q + n);
      p.cu_k.assign(host->cu_seqlens_k, host->cu_seqlens_k + n);
      check_varlen_offsets(p, total_q, total_k);
      upload_host_ints(op, p.cu_q, p.cu_k, {static_cast<std::int64_t>(n)});
      if (owner->device) {
        p.cu_q_t = first_view;
        p.cu_k_t = second_view;
      }
    } else {
      check_planned(op, "cu_seqlens_q", *cu_q_t, cu_q, ctx);
      check_planned(op, "cu_seqlens_k", *cu_k_t, cu_k, ctx);
      bind_varlen_data(p, *cu_q_t, *cu_k_t, total_q, total_k);
    }
    bind_workspace(op, buffers.workspace);
    bind_outputs(op, buffers);
    p.q = tq;
    p.k = tk;
    p.v = tv;
    p.q_at = access_thd(tq);
    p.k_at = access_thd(tk);
    p.v_at = access_thd(tv);
    return execute();
  }

  AttentionResult execute() {
    const DeviceResources* kernels = varlen && uses_dense_kernel(p) ? &dense_res : &res;
    if (!varlen || p.lq > 0) run_attention(*owner, p, owner->device ? kernels : nullptr);
    AttentionResult r{p.out, p.lse};
    // The template keeps no reference to the call's tensors.
    p.q = p.k = p.v = p.out = p.lse = p.k_scales = p.v_scales = Tensor();
    p.seq_lens_t = p.page_table_t = p.cu_q_t = p.cu_k_t = Tensor();
    return r;
  }
};

Plan make_attention_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                         const TensorDesc& v, const AttentionOptions& options) {
  constexpr const char* op = "attention";
  std::lock_guard lock(ctx.impl()->mutex);
  if (options.precision != Precision::fp32)
    return plan_detail::make_quantized_attention_plan(ctx, q, k, v, options);
  auto impl = std::make_shared<Plan::Impl>();
  impl->owner = ctx.impl();
  impl->p = plan_dense(op, ctx, q, k, v, options);
  impl->q = impl->p.q.desc();
  impl->k = impl->p.k.desc();
  impl->v = impl->p.v.desc();
  impl->out = impl->p.out.desc();
  if (options.return_lse) impl->lse = impl->p.lse.desc();
  impl->lay_out(impl->p.num_chunks());
  return Plan(std::move(impl));
}

Plan make_attention_paged_plan(Context& ctx, const TensorDesc& q, const PagedKV& kv,
                               const AttentionOptions& options) {
  constexpr const char* op = "attention_paged";
  std::lock_guard lock(ctx.impl()->mutex);
  auto impl = std::make_shared<Plan::Impl>();
  impl->owner = ctx.impl();
  impl->paged = true;
  impl->p = plan_paged(op, ctx, q, kv, options);
  impl->q = impl->p.q.desc();
  impl->out = impl->p.out.desc();
  if (options.return_lse) impl->lse = impl->p.lse.desc();
  impl->k_pages = kv.k_pages.desc();
  impl->v_pages = kv.v_pages.desc();
  if (kv.k_pages.dtype() == DType::i8) {
    impl->k_scales = kv.k_scales.desc();
    impl->v_scales = kv.v_scales.desc();
  }
  impl->page_table = kv.page_table.desc();
  impl->seq_lens = kv.seq_lens.desc();
  impl->layout = kv.layout;
  // The longest sequence the page table can hold.
  const std::int64_t max_keys = impl->p.max_pages * impl->p.page_size;
  impl->lay_out(std::max<std::int64_t>(1, (max_keys + kChunkKeys - 1) / kChunkKeys));
  return Plan(std::move(impl));
}

Plan make_attention_varlen_plan(Context& ctx, const TensorDesc& q, const TensorDesc& k,
                                const TensorDesc& v, const TensorDesc& cu_seqlens_q,
                                const TensorDesc& cu_seqlens_k, const AttentionOptions& options) {
  constexpr const char* op = "attention_varlen";
  std::lock_guard lock(ctx.impl()->mutex);
  auto impl = std::make_shared<Plan::Impl>();
  impl->owner = ctx.impl();
  impl->varlen = true;
  impl->p = plan_varlen(op, ctx, q, k, v, cu_seqlens_q, cu_seqlens_k, options);
  impl->q = impl->p.q.desc();
  impl->k = impl->p.k.desc();
  impl->v = impl->p.v.desc();
  impl->cu_q = Tensor(nullptr, cu_seqlens_q).desc();
  impl->cu_k = Tensor(nullptr, cu_seqlens_k).desc();
  impl->out = impl->p.out.desc();
  if (options.return_lse) impl->lse = impl->p.lse.desc();
  // The longest sequence may hold every key.
  const std::int64_t total_k = impl->k.shape[0];
  impl->lay_out(std::max<std::int64_t>(1, (total_k + kChunkKeys - 1) / kChunkKeys));
  return Plan(std::move(impl));
}

AttentionResult Plan::run_varlen(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                                 const PlanBuffers& buffers) {
  if (!impl_) rt::fail(ErrorCode::invalid_argument, "attention_varlen plan", "the Plan is empty");
  return impl_->run_varlen(q, k, v, &cu_seqlens_q, &cu_seqlens_k, nullptr, buffers);
}

AttentionResult Plan::run_varlen(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const SeqOffsets& offsets, const PlanBuffers& buffers) {
  if (!impl_) rt::fail(ErrorCode::invalid_argument, "attention_varlen plan", "the Plan is empty");
  return impl_->run_varlen(q, k, v, nullptr, nullptr, &offsets, buffers);
}

std::uint64_t Plan::workspace_bytes() const {
  if (!impl_) return 0;
  return impl_->op ? impl_->op->workspace_bytes() : impl_->bytes;
}

TensorDesc Plan::out_desc() const {
  if (!impl_) return {};
  return impl_->op ? impl_->op->out : impl_->out;
}

TensorDesc Plan::lse_desc() const {
  if (!impl_) return {};
  return impl_->op ? impl_->op->lse : impl_->lse;
}

AttentionResult Plan::run(const Tensor& q, const Tensor& k, const Tensor& v,
                          const PlanBuffers& buffers) {
  constexpr const char* op = "attention plan";
  if (!impl_) rt::fail(ErrorCode::invalid_argument, op, "the Plan is empty");
  Impl& s = *impl_;
  if (s.op) return s.op->run(q, k, v, buffers);
  if (s.paged || s.varlen) s.refuse(op);
  auto& ctx = *s.owner;
  std::lock_guard lock(ctx.mutex);
  check_planned(op, "Q", q, s.q, ctx);
  check_planned(op, "K", k, s.k, ctx);
  check_planned(op, "V", v, s.v, ctx);
  s.bind_workspace(op, buffers.workspace);
  s.bind_outputs(op, buffers);
  s.p.q = q;
  s.p.k = k;
  s.p.v = v;
  s.p.q_at = access_bhld(q);
  s.p.k_at = access_bhld(k);
  s.p.v_at = access_bhld(v);
  // The kernels' scalars depend on the shapes (fixed) and the tensors' offsets: when those equal
  // the last run's, only the buffer arguments are set.
  const std::array<std::int64_t, 5> offsets{q.offset(), k.offset(), v.offset(), s.p.out.offset(),
                                            s.p.lse.defined() ? s.p.lse.offset() : 0};
  s.res.reuse_scalars = s.scalars_set && offsets == s.last_offsets;
  s.scalars_set = false;  // until this run's arguments are all set
  AttentionResult r = s.execute();
  s.scalars_set = true;
  s.last_offsets = offsets;
  return r;
}

AttentionResult Plan::run(const Tensor& q, const PagedKV& kv, const PlanBuffers& buffers) {
  if (!impl_) rt::fail(ErrorCode::invalid_argument, "attention_paged plan", "the Plan is empty");
  return impl_->run_paged(q, kv, buffers, nullptr);
}

AttentionResult Plan::run(const Tensor& q, const PagedKV& kv, const PlanBuffers& buffers,
                          const PagedTables& tables) {
  if (!impl_) rt::fail(ErrorCode::invalid_argument, "attention_paged plan", "the Plan is empty");
  return impl_->run_paged(q, kv, buffers, &tables);
}

AttentionResult Plan::run_sparse(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const SparseIndex& index, const PlanBuffers& buffers) {
  constexpr const char* op = "attention (sparse) plan";
  if (!impl_) rt::fail(ErrorCode::invalid_argument, op, "the Plan is empty");
  if (!impl_->op) impl_->refuse(op);
  return impl_->op->run(q, k, v, index, buffers);
}

AttentionResult Plan::run(const Sage8Packed& packed, const PlanBuffers& buffers) {
  constexpr const char* op = "sage8_attention_packed plan";
  if (!impl_) rt::fail(ErrorCode::invalid_argument, op, "the Plan is empty");
  if (!impl_->op) impl_->refuse(op);
  return impl_->op->run(packed, buffers);
}

AttentionResult Plan::run(const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
                          const Tensor* delta, const PlanBuffers& buffers) {
  constexpr const char* op = "fp4_attention_packed plan";
  if (!impl_) rt::fail(ErrorCode::invalid_argument, op, "the Plan is empty");
  if (!impl_->op) impl_->refuse(op);
  return impl_->op->run(q, k, v, delta, buffers);
}

namespace plan_detail {

Plan make_plan(std::shared_ptr<OpPlan> op) {
  auto impl = std::make_shared<Plan::Impl>();
  impl->owner = op->owner;
  impl->op = std::move(op);
  return Plan(std::move(impl));
}

}  // namespace plan_detail

}  // namespace sparq
