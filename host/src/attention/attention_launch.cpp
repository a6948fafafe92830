// Executes a validated AttentionPlan: picks the kernel (dense.cl fast path, paged K/V included;
// decode.cl general / split path + merge.cl, or decode_stream.cl / decode_bw.cl / decode_flat.cl
// for decode shapes they fit), sets arguments and launches; or runs the fallback. The choice never
// changes a bit (all paths compute attention_common.h's definition); it only picks the fastest.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "attention_kernels.h"
#include "attention_plan.h"
#include "context_impl.h"
#include "errors.h"
#include "fallback_cpu/attention/attention_fallback.h"

namespace sparq::attention_detail {

namespace {

static_assert(static_cast<int>(DType::f32) == 0 && static_cast<int>(DType::f16) == 1 &&
              static_cast<int>(DType::bf16) == 2 && static_cast<int>(DType::i8) == 3 &&
              static_cast<int>(DType::u8) == 4);  // SQ_DT_* codes in attention_common.h

constexpr std::uint64_t kMaxWorkspaceBytes = std::uint64_t{1} << 30;
// The dense kernel's 64-row blocks waste work below this many query rows.
constexpr std::int64_t kDenseMinRows = 32;

const cl::Buffer& buffer(const Tensor& t) {
  return t.storage()->buffer;
}

// Sets kernel arguments in order; with buffers_only, scalars keep the values an earlier launch of
// the same kernel object set (DeviceResources::reuse_scalars) and only buffers are set.
class Args {
 public:
  Args(cl::Kernel& k, bool buffers_only) : k_(k), buffers_only_(buffers_only) {}
  Args& buf(const cl::Buffer& b) {
    k_.setArg(n_++, b);
    return *this;
  }
  Args& i64(std::int64_t x) { return set(static_cast<cl_long>(x)); }
  Args& i32(std::int64_t x) { return set(static_cast<cl_int>(x)); }
  Args& f32(float x) { return set(static_cast<cl_float>(x)); }
  Args& tensor(const Tensor& t, const Access& a, bool with_dtype = true) {
    buf(buffer(t)).i64(a.base).i64(a.seq).i64(a.row).i64(a.head);
    if (with_dtype) i32(static_cast<int>(a.dtype));
    return *this;
  }
  // The hook arguments (attention_hooks.h), after the kernel's own.
  Args& hooks(const HookPlan& h, const cl::Buffer& dummy) {
    n_ = set_hook_args(k_, n_, h, dummy);
    return *this;
  }
  // The int8 row scales (dummy when absent), then the page table and page size (0: not paged):
  // the K/V arguments after K and V of prefill_body.h and decode.cl.
  Args& scales(const AttentionPlan& p, const cl::Buffer& dummy) {
    for (auto [t, a] : {std::pair{&p.k_scales, &p.ks_at}, std::pair{&p.v_scales, &p.vs_at}}) {
      if (t->defined())
        tensor(*t, *a, false);
      else
        buf(dummy).i64(0).i64(0).i64(0).i64(0);
    }
    return *this;
  }
  Args& pages(const AttentionPlan& p, const cl::Buffer& dummy) {
    if (p.mode != KvMode::paged) return buf(dummy).i64(0).i64(0);
    return buf(buffer(p.page_table_t))
        .i64(p.page_table_t.offset())
        .i64(p.page_table_t.strides()[0]);
  }
  // An int32 index vector: buffer, element offset, stride (a dummy buffer when absent).
  Args& index(const Tensor& t, const cl::Buffer& dummy) {
    if (!t.defined()) return buf(dummy).i64(0).i64(0);
    return buf(buffer(t)).i64(t.offset()).i64(t.strides()[0]);
  }

 private:
  template <class T>
  Args& set(const T& x) {
    if (!buffers_only_) k_.setArg(n_, x);
    ++n_;
    return *this;
  }
  cl::Kernel& k_;
  bool buffers_only_ = false;
  cl_uint n_ = 0;
};

std::int64_t round_up(std::int64_t x, std::int64_t m) {
  return (x + m - 1) / m * m;
}

void run_dense(rt::DeviceRuntime& dev, const AttentionPlan& p, const DeviceResources* res) {
  const DenseKernelConfig cfg =
      DenseKernelConfig::for_device(p.head_dim, dev.info().is_gpu, dev.quirks().is_nvidia);
  cl::Kernel kernel = res && res->main()
                          ? res->main
                          : dev.kernel(cfg.source, cfg.kernel, cfg.defines() + p.hooks.defines());
  // Between chunks the merged state is kept in fp32: in the output itself when it is fp32.
  cl::Buffer scratch = buffer(p.out);
  if (p.num_chunks() > 1 && p.out_dtype != DType::f32)
    scratch = res && res->scratch()
                  ? res->scratch
                  : dev.allocate(static_cast<std::size_t>(p.out.numel()) * 4, "attention scratch");
  const cl::Buffer& dummy = buffer(p.q);
  Args a(kernel, res && res->main() && res->reuse_scalars);
  a.tensor(p.q, p.q_at).tensor(p.k, p.k_at).tensor(p.v, p.v_at).scales(p, dummy).pages(p, dummy);
  a.i32(p.mode == KvMode::paged ? p.page_size : 0).tensor(p.out, p.out_at);
  a.buf(scratch).i64(p.out_at.base).i64(p.out_at.seq).i64(p.out_at.row).i64(p.out_at.head);
  if (p.lse.defined())
    a.tensor(p.lse, p.lse_at, false).i32(1);
  else
    a.buf(dummy).i64(0).i64(0).i64(0).i64(0).i32(0);
  // paged: seq_lens in place of cu_k (kv_mode 2)
  a.index(p.cu_q_t, dummy).index(p.mode == KvMode::paged ? p.seq_lens_t : p.cu_k_t, dummy);
  a.i32(static_cast<int>(p.mode)).i32(p.hq / p.hkv).i32(p.lq).i32(p.lk).i32(p.causal).f32(p.c);
  if (p.hooks.on) a.hooks(p.hooks, dummy);
  const std::int64_t nqb = (p.lq + cfg.rows_per_group - 1) / cfg.rows_per_group;
  dev.launch(p.op, kernel, cl::NDRange(cfg.work_group * p.hq, nqb, p.batch),
             cl::NDRange(cfg.work_group, 1, 1));
}

// The row kernel of a call: decode.cl, or a bandwidth kernel (decode_stream.cl / decode_bw.cl /
// decode_flat.cl, SPARQ_TUNE_DECODE; route_decode decides) when the call fits one
// (SPARQ_DECODE=general forces decode.cl, for A/B checks).
struct RowKernel {
  const char* source = DecodeKernelConfig::source;
  const char* name = DecodeKernelConfig::kernel;
  std::string defines;
  std::int64_t work_group = DecodeKernelConfig::work_group;
  std::int64_t rows = DecodeKernelConfig::max_rows;
  std::string key() const { return std::string(source) + " " + defines; }
};

bool fits_stream(const AttentionPlan& p) {
  if (const char* env = std::getenv("SPARQ_DECODE");
      env != nullptr && std::string(env) == "general")
    return false;
  const DType dt = p.k_at.dtype;
  if (p.hooks.on || (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) ||
      p.v_at.dtype != dt ||
      !(dt == DType::f32 || dt == DType::f16 || dt == DType::bf16 || dt == DType::i8))
    return false;
  const std::int64_t vec = 16 / static_cast<std::int64_t>(dtype_size(dt));
  for (const Access* a : {&p.k_at, &p.v_at})
    for (std::int64_t x : {a->base, a->seq, a->row, a->head})
      if (x % vec != 0) return false;
  return true;
}

RowKernel row_kernel(const rt::DeviceRuntime& dev, const AttentionPlan& p) {
  RowKernel k;
  k.defines = DecodeKernelConfig{}.defines() + p.hooks.defines();
  if (!fits_stream(p)) return k;
  const int es = static_cast<int>(dtype_size(p.k_at.dtype));
  const bool ptx_async =
      dev.quirks().is_nvidia && dev.quirks().inline_ptx && dev.quirks().cc_major >= 8;
  const DecodeRoute r =
      route_decode(DecodeTuning::from_env(dev.quirks().is_nvidia, dev.quirks().inline_ptx),
                   p.head_dim, es, (p.hq / p.hkv) * p.lq, dev.info().is_gpu, ptx_async,
                   static_cast<std::int64_t>(dev.quirks().local_mem_bytes));
  if (r.kernel == 0) {
    const DecodeStreamConfig cfg{p.head_dim, es};
    k.source = DecodeStreamConfig::source;
    k.name = DecodeStreamConfig::kernel;
    k.defines = cfg.defines() + r.tuning.stream_options();
    k.work_group = DecodeStreamConfig::work_group;
    k.rows = DecodeStreamConfig::max_rows;
  } else if (r.kernel == 2) {
    k.source = DecodeFlatConfig::source;
    k.name = DecodeFlatConfig::kernel;
    k.defines = r.flat.defines();
    k.work_group = r.flat.bw.threads;
    k.rows = r.flat.bw.rows;
  } else if (r.kernel == 1) {
    k.source = DecodeBwConfig::source;
    k.name = DecodeBwConfig::kernel;
    k.defines = r.bw.defines();
    k.work_group = r.bw.threads;
    k.rows = r.bw.rows;
  }
  return k;
}

void run_rows(rt::DeviceRuntime& dev, const AttentionPlan& p, const DeviceResources* res) {
  const RowKernel rk = row_kernel(dev, p);
  const std::int64_t group = p.hq / p.hkv;
  const std::int64_t nchunks = p.num_chunks();
  const bool split = splits(p, nchunks, dev.info().max_alloc_bytes);
  cl::Buffer ws_o = buffer(p.out), ws_lse = buffer(p.out);
  if (split && res && res->ws_o()) {
    ws_o = res->ws_o;
    ws_lse = res->ws_lse;
  } else if (split) {
    const Temporaries t = split_temporaries(p, nchunks);
    ws_o = dev.allocate(static_cast<std::size_t>(t.ws_o), "attention workspace");
    ws_lse = dev.allocate(static_cast<std::size_t>(t.ws_lse), "attention workspace");
  }
  const cl::Buffer& dummy = buffer(p.q);
  const Tensor& seq_a = p.mode == KvMode::paged ? p.seq_lens_t : p.cu_q_t;
  // A plan's own kernel object, when it is the program this call picks (alignment may differ per
  // run: offsets are per-call data).
  const bool own = res && res->main() && res->main_key == rk.key();
  cl::Kernel kernel = own ? res->main : dev.kernel(rk.source, rk.name, rk.defines);
  Args b(kernel, own && res->reuse_scalars);
  b.tensor(p.q, p.q_at).tensor(p.k, p.k_at).tensor(p.v, p.v_at).scales(p, dummy);
  b.tensor(p.out, p.out_at);
  if (p.lse.defined())
    b.tensor(p.lse, p.lse_at, false).i32(1);
  else
    b.buf(dummy).i64(0).i64(0).i64(0).i64(0).i32(0);
  b.buf(ws_o).buf(ws_lse).i32(split).i32(nchunks);
  b.index(seq_a, dummy).index(p.cu_k_t, dummy);
  b.pages(p, dummy)
      .i32(std::max(p.page_size, 1))
      .i32(static_cast<int>(p.mode))
      .i32(p.hq)
      .i32(group);
  b.i32(p.head_dim).i32(p.lq).i32(p.lk).i32(p.causal).f32(p.c);
  if (p.hooks.on) b.hooks(p.hooks, dummy);
  const std::int64_t row_groups = (group * p.lq + rk.rows - 1) / rk.rows;
  dev.launch(p.op, kernel,
             cl::NDRange(rk.work_group * row_groups, split ? nchunks : 1, p.batch * p.hkv),
             cl::NDRange(rk.work_group, 1, 1));
  if (!split) return;

  const MergeKernelConfig mcfg;
  cl::Kernel merge = res && res->merge() ? res->merge
                                         : dev.kernel(mcfg.source, mcfg.chunks_kernel,
                                                      mcfg.defines() + p.hooks.defines());
  Args m(merge, res && res->merge() && res->reuse_scalars);
  m.buf(ws_o).buf(ws_lse).i32(nchunks).tensor(p.out, p.out_at);
  if (p.lse.defined())
    m.tensor(p.lse, p.lse_at, false).i32(1);
  else
    m.buf(dummy).i64(0).i64(0).i64(0).i64(0).i32(0);
  m.index(seq_a, dummy).index(p.cu_k_t, dummy);
  m.i32(static_cast<int>(p.mode)).i32(p.hq).i32(p.head_dim).i32(p.lq).i32(p.lk);
  if (p.hooks.on) m.buf(buffer(p.hooks.head_t));
  dev.launch(p.op, merge, cl::NDRange(round_up(p.head_dim, 64), p.hq * p.lq, p.batch),
             cl::NDRange(64, 1, 1));
}

}  // namespace

std::int64_t AttentionPlan::num_chunks() const {
  std::int64_t longest = lk;
  if (mode != KvMode::contiguous)
    for (int b = 0; b < batch; ++b) longest = std::max<std::int64_t>(longest, seq_lk(b));
  return (longest + kChunkKeys - 1) / kChunkKeys;
}

bool uses_dense_kernel(const AttentionPlan& p) {
  // Paged calls with many query rows (chunked prefill) take the dense kernel's paged mode.
  return DenseKernelConfig::fits(p.head_dim) && p.lq >= kDenseMinRows;
}

Temporaries split_temporaries(const AttentionPlan& p, std::int64_t nchunks) {
  const std::int64_t ws_rows =
      (p.mode == KvMode::varlen ? p.cu_q.back() : p.batch * p.lq) * static_cast<std::int64_t>(p.hq);
  Temporaries t;
  t.ws_o = static_cast<std::uint64_t>(ws_rows) * nchunks * p.head_dim * 4;
  t.ws_lse = static_cast<std::uint64_t>(ws_rows) * nchunks * 4;
  return t;
}

bool splits(const AttentionPlan& p, std::int64_t nchunks, std::uint64_t max_alloc) {
  // Split decode (chunk states through a workspace) pays when few query rows meet many keys.
  const Temporaries t = split_temporaries(p, nchunks);
  const std::uint64_t ws_bytes = t.ws_o + t.ws_lse;
  return nchunks > 1 && p.lq <= kSplitMaxRows && ws_bytes <= kMaxWorkspaceBytes &&
         ws_bytes <= max_alloc;
}

Temporaries device_temporaries(const AttentionPlan& p, std::int64_t max_chunks,
                               std::uint64_t max_alloc) {
  Temporaries t;
  if (uses_dense_kernel(p)) {
    if (max_chunks > 1 && p.out_dtype != DType::f32)
      t.scratch = static_cast<std::uint64_t>(p.batch) * p.hq * p.lq * p.head_dim * 4;
    return t;
  }
  // The most chunks that still split (split workspace grows with the chunk count).
  for (std::int64_t n = max_chunks; n > 1; --n)
    if (splits(p, n, max_alloc)) return split_temporaries(p, n);
  return t;
}

void make_own_kernels(rt::DeviceRuntime& dev, const AttentionPlan& p, bool split,
                      DeviceResources& res) {
  if (uses_dense_kernel(p)) {
    const DenseKernelConfig cfg =
        DenseKernelConfig::for_device(p.head_dim, dev.info().is_gpu, dev.quirks().is_nvidia);
    res.main = dev.own_kernel(cfg.source, cfg.kernel, cfg.defines() + p.hooks.defines());
    return;
  }
  const RowKernel rk = row_kernel(dev, p);
  res.main_key = rk.key();
  res.main = dev.own_kernel(rk.source, rk.name, rk.defines);
  if (!split) return;
  const MergeKernelConfig mcfg;
  res.merge = dev.own_kernel(mcfg.source, mcfg.chunks_kernel, mcfg.defines() + p.hooks.defines());
}

void run_attention(ContextImpl& ctx, const AttentionPlan& p, const DeviceResources* res) {
  if (!ctx.device) {
    fallback::attention(p);
    return;
  }
  if (uses_dense_kernel(p))
    run_dense(*ctx.device, p, res);
  else
    run_rows(*ctx.device, p, res);
}

}  // namespace sparq::attention_detail
