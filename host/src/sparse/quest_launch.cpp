// Executes validated Quest plans: sets the arguments of kernels_cl/sparse/quest.cl and launches,
// or runs the fallback executor (fallback_cpu/sparse/quest.cpp). Geometry never changes a bit.
#include <algorithm>

#include "context_impl.h"
#include "errors.h"
#include "fallback_cpu/sparse/quest_fallback.h"
#include "quest_kernels.h"
#include "quest_plan.h"

namespace sparq::quest_detail {

namespace {

const cl::Buffer& buffer(const Tensor& t) {
  return t.storage()->buffer;
}

class Args {
 public:
  Args(const char* op, cl::Kernel& k) : op_(op), k_(k) {}
  Args& buf(const cl::Buffer& b) { return set(b); }
  Args& i64(std::int64_t x) { return set(static_cast<cl_long>(x)); }
  Args& i32(std::int64_t x) { return set(static_cast<cl_int>(x)); }
  Args& f32(float x) { return set(static_cast<cl_float>(x)); }
  Args& rows(const Tensor& t, const RowAccess& a) {
    return buf(buffer(t)).i64(a.base).i64(a.s0).i64(a.ss).i64(a.sh);
  }

 private:
  template <class T>
  Args& set(const T& x) {
    int err = CL_SUCCESS;
    try {
      k_.setArg(n_, x);
    } catch (const cl::Error& e) {
      err = e.err();
    }
    if (err != CL_SUCCESS) rt::set_kernel_args_impl(op_, k_, n_, err);
    ++n_;
    return *this;
  }
  const char* op_;
  cl::Kernel& k_;
  cl_uint n_ = 0;
};

std::int64_t round_up(std::int64_t x, std::int64_t m) {
  return (x + m - 1) / m * m;
}

// The page table (or a dummy buffer for a contiguous cache) and its element offset.
void table_args(Args& a, const QuestCache& c, const Tensor& dummy) {
  if (c.paged)
    a.buf(buffer(c.page_table_t)).i64(c.page_table_t.offset());
  else
    a.buf(buffer(dummy)).i64(0);
}

}  // namespace

void run_metadata(detail::ContextImpl& ctx, const MetadataPlan& p) {
  if (p.items.empty()) return;
  if (!ctx.device) {
    fallback::quest::metadata(p);
    return;
  }
  auto& dev = *ctx.device;
  const QuestCache& c = *p.cache;
  const std::size_t bytes = p.items.size() * sizeof(MetaItem);
  cl::Buffer items = dev.allocate(bytes, "quest metadata work list");
  dev.write(items, 0, bytes, p.items.data(), "quest metadata work list");
  cl::Kernel k = dev.kernel(QuestKernelConfig::source, QuestKernelConfig::metadata_kernel,
                            QuestKernelConfig::defines());
  Args a("quest_update_metadata", k);
  a.rows(c.k, c.k_at).i32(c.k_dt);
  if (c.k_scales.defined())
    a.rows(c.k_scales, c.ks_at);
  else
    a.buf(buffer(c.k)).i64(0).i64(0).i64(0).i64(0);
  a.buf(items).buf(buffer(p.kmin)).buf(buffer(p.kmax));
  a.i32(c.hkv).i32(c.head_dim);
  dev.launch("quest_update_metadata", k, cl::NDRange(c.head_dim, c.hkv, p.items.size()),
             cl::NullRange);
}

void run_select(detail::ContextImpl& ctx, const SelectPlan& p) {
  if (!ctx.device) {
    fallback::quest::select(p);
    return;
  }
  auto& dev = *ctx.device;
  const QuestCache& c = *p.cache;
  const int hi_count = p.share ? c.hkv : p.hq;
  const auto rows = static_cast<std::size_t>(c.batch) * hi_count;
  {  // the bounds of every page: many work-groups (the selection below has one per (b, hi))
    cl::Kernel k = dev.kernel(QuestKernelConfig::source, QuestKernelConfig::bounds_kernel,
                              QuestKernelConfig::defines());
    Args a("quest_select", k);
    a.buf(buffer(p.q)).i64(p.q.offset()).i64(p.q_sb).i64(p.q_sh);
    a.buf(buffer(p.kmin)).buf(buffer(p.kmax));
    table_args(a, c, p.q);
    a.buf(buffer(c.seq_lens_t)).i64(c.seq_lens_t.offset()).buf(buffer(p.bounds));
    a.i32(c.paged).i32(c.max_pages).i32(c.page_size).i32(p.hq).i32(c.hkv).i32(p.share);
    a.i32(c.head_dim);
    const std::int64_t wg = QuestKernelConfig::bounds_work_group;
    const std::int64_t groups =
        (c.max_pages + QuestKernelConfig::bounds_pages - 1) / QuestKernelConfig::bounds_pages;
    dev.launch("quest_select", k, cl::NDRange(static_cast<std::size_t>(groups * wg), rows),
               cl::NDRange(wg, 1));
  }
  cl::Kernel k = dev.kernel(QuestKernelConfig::source, QuestKernelConfig::select_kernel,
                            QuestKernelConfig::defines());
  Args a("quest_select", k);
  a.buf(buffer(c.seq_lens_t)).i64(c.seq_lens_t.offset());
  a.buf(buffer(p.bounds)).buf(buffer(p.pages)).buf(buffer(p.counts));
  a.i32(c.max_pages).i32(c.page_size).i32(hi_count).i32(p.page_budget).i32(p.cap);
  const std::int64_t wg = QuestKernelConfig::select_work_group;
  dev.launch("quest_select", k, cl::NDRange(wg, rows), cl::NDRange(wg, 1));
}

void run_decode(detail::ContextImpl& ctx, const DecodePlan& p) {
  if (!ctx.device) {
    fallback::quest::decode(p);
    return;
  }
  auto& dev = *ctx.device;
  const QuestCache& c = *p.cache;
  const int hi_count = p.share ? c.hkv : p.hq;
  const int rows = p.share ? p.hq / c.hkv : 1;
  const std::int64_t splits = std::max(p.max_splits, 1);
  const std::int64_t nrow = static_cast<std::int64_t>(c.batch) * p.hq;
  cl::Buffer ws_ml =
      dev.allocate(static_cast<std::size_t>(nrow * splits * 2) * 4, "quest workspace");
  cl::Buffer ws_acc =
      dev.allocate(static_cast<std::size_t>(nrow * splits * c.head_dim) * 4, "quest workspace");
  const Tensor& dummy = p.q;
  {
    cl::Kernel k = dev.kernel(QuestKernelConfig::source, QuestKernelConfig::decode_kernel,
                              QuestKernelConfig::defines());
    Args a("sparse_attention_decode", k);
    a.buf(buffer(p.q)).i64(p.q.offset()).i64(p.q_sb).i64(p.q_sh);
    a.rows(c.k, c.k_at).rows(c.v, c.v_at);
    table_args(a, c, dummy);
    a.buf(buffer(c.seq_lens_t)).i64(c.seq_lens_t.offset());
    a.buf(buffer(p.all_pages ? dummy : p.pages)).buf(buffer(p.all_pages ? dummy : p.counts));
    a.i32(p.all_pages).i32(p.cap).buf(ws_ml).buf(ws_acc).i32(splits);
    a.i32(c.paged).i32(c.max_pages).i32(c.page_size).i32(p.pages_per_split).i32(p.hq).i32(c.hkv);
    a.i32(p.share).i32(c.head_dim).f32(p.c);
    const std::int64_t wg = QuestKernelConfig::decode_work_group;
    const std::int64_t row_groups = (rows + QuestKernelConfig::rows - 1) / QuestKernelConfig::rows;
    dev.launch("sparse_attention_decode", k,
               cl::NDRange(wg * row_groups, splits, static_cast<std::size_t>(c.batch) * hi_count),
               cl::NDRange(wg, 1, 1));
  }
  cl::Kernel m = dev.kernel(QuestKernelConfig::source, QuestKernelConfig::merge_kernel,
                            QuestKernelConfig::defines());
  Args a("sparse_attention_decode", m);
  a.buf(ws_ml).buf(ws_acc).i32(splits).buf(buffer(c.seq_lens_t)).i64(c.seq_lens_t.offset());
  a.buf(buffer(p.all_pages ? dummy : p.counts)).i32(p.all_pages).i32(p.pages_per_split);
  a.i32(c.page_size).i32(p.hq).i32(c.hkv).i32(p.share).i32(c.head_dim).buf(buffer(p.out));
  a.buf(buffer(p.lse.defined() ? p.lse : p.out)).i32(p.lse.defined());
  dev.launch("sparse_attention_decode", m, cl::NDRange(round_up(c.head_dim, 64), nrow),
             cl::NDRange(64, 1));
}

}  // namespace sparq::quest_detail
