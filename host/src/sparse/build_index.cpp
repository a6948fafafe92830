// sparq::build_index and the pattern overload of sparq::attention: validate, pick the dense
// index for a dense layer, else dispatch to the pattern's builder. Builders A-shape (§5.1),
// block-sparse (§5.3) and the dense index live here (kernels_cl/sparse/sparse_build.cl).
#include <algorithm>
#include <mutex>

#include "fallback_cpu/sparse/sparse_fallback.h"
#include "host/src/attention/attention_access.h"
#include "host/src/attention/attention_validate.h"
#include "sparse/sparse_build.h"
#include "sparse_builders.h"
#include "sparse_kernels.h"

namespace sparq {

using namespace sparse_detail;

namespace sparse_detail {

namespace {

std::int32_t* host_i32(const Tensor& t) {
  return reinterpret_cast<std::int32_t*>(detail::host_data_mut(t));
}

// Runs a one-dimensional builder kernel over `rows` work-items and returns its status word.
class Launcher {
 public:
  Launcher(rt::DeviceRuntime& dev, cl::Kernel k) : dev_(dev), k_(std::move(k)) {}
  template <class T>
  Launcher& arg(const T& x) {
    k_.setArg(n_++, x);
    return *this;
  }
  Launcher& i32(std::int64_t x) { return arg(static_cast<cl_int>(x)); }
  void run(const char* op, std::int64_t items) {
    const std::size_t local = 64;
    const std::size_t global = (static_cast<std::size_t>(items) + local - 1) / local * local;
    dev_.launch(op, k_, cl::NDRange(global), cl::NDRange(local));
  }

 private:
  rt::DeviceRuntime& dev_;
  cl::Kernel k_;
  cl_uint n_ = 0;
};

cl::Buffer status_buffer(rt::DeviceRuntime& dev) {
  cl::Buffer b = dev.allocate(4, "build_index status");
  const std::int32_t zero = 0;
  dev.write(b, 0, 4, &zero, "build_index status");
  return b;
}

int read_status(rt::DeviceRuntime& dev, const cl::Buffer& b) {
  std::int32_t s = 0;
  dev.read(b, 0, 4, &s, "build_index status");
  return s;
}

// reads_qk: the pattern reads Q/K values (the builders' kernels take D = 64, 128); Dense and
// AShape read only shapes, so they take any D (the attention call checks its own D).
BuildArgs check_build(Context& ctx, const Tensor& q, const Tensor& k, const IndexOptions& options,
                      bool reads_qk) {
  using namespace attention_detail;
  BuildArgs a;
  const char* op = a.op;
  auto& impl = *ctx.impl();
  detail::check_tensor_owner(op, "Q", q, impl);
  detail::check_tensor_owner(op, "K", k, impl);
  check_float_tensor(op, "Q", q.desc(), 4, "[B, Hq, Lq, D]");
  check_float_tensor(op, "K", k.desc(), 4, "[B, Hkv, Lk, D]");
  if (k.dim(0) != q.dim(0) || k.dim(3) != q.dim(3))
    rt::fail(ErrorCode::shape_mismatch, op, "K is {}, Q is {}: batch and D must match",
             k.desc().describe(), q.desc().describe());
  check_heads(op, q.dim(1), k.dim(1));
  if (reads_qk && q.dim(3) != 64 && q.dim(3) != 128)
    rt::fail(ErrorCode::unsupported, op,
             "head dim D = {}; this pattern's builder supports 64, 128 (Dense and AShape take any "
             "D)",
             q.dim(3));
  check_length(op, "Lk", k.dim(2));
  require(op, q.dim(2) <= k.dim(2), "Lq = {} > Lk = {}; sparse prefill needs Lq <= Lk", q.dim(2),
          k.dim(2));
  require(op,
          options.sharing == IndexSharing::per_q_head || options.sharing == IndexSharing::kv_group,
          "options.sharing has an unknown value {}", static_cast<int>(options.sharing));
  check_length(op, "B * Hq", q.dim(0) * q.dim(1));
  a.B = static_cast<int>(q.dim(0));
  a.Hq = static_cast<int>(q.dim(1));
  a.Hkv = static_cast<int>(k.dim(1));
  a.D = static_cast<int>(q.dim(3));
  a.Lq = q.dim(2);
  a.Lk = k.dim(2);
  a.off = a.Lk - a.Lq;
  a.nqb = num_qblocks(a.Lq);
  a.causal = options.causal;
  a.sharing = options.sharing;
  a.layer = options.layer;
  a.Hi = options.sharing == IndexSharing::kv_group ? a.Hkv : a.Hq;
  return a;
}

}  // namespace

SparseIndex new_index(Context& ctx, const BuildArgs& a, int max_tiles, int max_cols) {
  const std::int64_t B = a.B, Hi = a.Hi, n = a.nqb;
  const std::uint64_t max_alloc = ctx.impl()->device ? ctx.impl()->info.max_alloc_bytes : 0;
  attention_detail::check_alloc(a.op, "index tile_start", DType::i32, {B, Hi, n, max_tiles},
                                max_alloc);
  attention_detail::check_alloc(a.op, "index col_index", DType::i32, {B, Hi, n, max_cols},
                                max_alloc);
  SparseIndex x;
  x.tile_count = ctx.empty(DType::i32, {B, Hi, n});
  x.tile_start = ctx.empty(DType::i32, {B, Hi, n, max_tiles});
  x.col_count = ctx.empty(DType::i32, {B, Hi, n});
  x.col_index = ctx.empty(DType::i32, {B, Hi, n, max_cols});
  x.B = a.B;
  x.Hi = a.Hi;
  x.nqb = a.nqb;
  x.max_tiles = max_tiles;
  x.max_cols = max_cols;
  x.causal = a.causal;
  x.Lq = a.Lq;
  x.Lk = a.Lk;
  x.off = a.off;
  x.sharing = a.sharing;
  return x;
}

void check_build_status(const char* op, int code) {
  if (code != SQ_NORM_OK)
    rt::fail(ErrorCode::internal, op, "index capacity overflow ({}): a builder bug",
             code & SQ_NORM_TILE_OVERFLOW ? "tiles" : "columns");
}

SparseIndex build(Context& ctx, const Tensor&, const Tensor&, const Dense&, const BuildArgs& a) {
  return dense_index(ctx, a.B, a.Hi, a.Lq, a.Lk, a.causal, a.sharing);
}

SparseIndex build(Context& ctx, const Tensor&, const Tensor&, const AShape& p, const BuildArgs& a) {
  require(a.op, p.n_init >= 0 && p.n_local >= 0, "AShape n_init = {}, n_local = {} must be >= 0",
          p.n_init, p.n_local);
  require(a.op, !p.exact || p.n_local >= 1, "AShape.exact needs n_local >= 1, got {}", p.n_local);
  const std::int64_t nkt = (a.Lk + kTile - 1) / kTile;
  const std::int64_t cap = (std::int64_t{p.n_init} + kTile - 1) / kTile +
                           (std::int64_t{p.n_local} + kTile - 1) / kTile + 2;
  const int max_tiles = static_cast<int>(std::min(cap, nkt));  // never more than ceil(Lk/64)
  SparseIndex x = new_index(ctx, a, max_tiles, 0);
  if (p.exact) {
    x.sink_tokens = p.n_init;
    x.window_tokens = p.n_local;
  }
  const int rows = a.B * a.Hi * a.nqb;
  auto& impl = *ctx.impl();
  int status = 0;
  if (!impl.device) {
    fallback::sparse::IndexOut o{host_i32(x.tile_count),
                                 host_i32(x.tile_start),
                                 host_i32(x.col_count),
                                 rows,
                                 a.nqb,
                                 max_tiles};
    status = fallback::sparse::build_ashape(o, static_cast<int>(a.Lq), static_cast<int>(a.Lk),
                                            static_cast<int>(a.off), a.causal, p.n_init, p.n_local);
  } else {
    auto& dev = *impl.device;
    cl::Buffer ws = dev.allocate(static_cast<std::size_t>(rows) * 16, "A-shape workspace");
    cl::Buffer st = status_buffer(dev);
    Launcher l(dev, dev.kernel(BuildKernelConfig::source, BuildKernelConfig::ashape,
                               BuildKernelConfig::defines()));
    l.arg(x.tile_count.storage()->buffer)
        .arg(x.tile_start.storage()->buffer)
        .arg(x.col_count.storage()->buffer)
        .arg(ws)
        .arg(st)
        .i32(rows)
        .i32(a.nqb)
        .i32(max_tiles)
        .i32(a.Lq)
        .i32(a.Lk)
        .i32(a.off)
        .i32(a.causal)
        .i32(p.n_init)
        .i32(p.n_local);
    l.run(a.op, rows);
    status = read_status(dev, st);
  }
  check_build_status(a.op, status);
  seal_index(x);
  return x;
}

SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const BlockSparse& p,
                  const BuildArgs& a) {
  require(a.op, p.top_k >= 0 && p.top_k <= (1 << 20), "BlockSparse top_k = {} must be in [0, 2^20]",
          p.top_k);
  const int nkb = static_cast<int>((a.Lk + kTile - 1) / kTile);
  const int max_tiles = std::min(p.top_k + 3, nkb);
  SparseIndex x = new_index(ctx, a, max_tiles, 0);
  const int rows = a.B * a.Hi * a.nqb;
  const bool share = a.sharing == IndexSharing::kv_group;
  auto& impl = *ctx.impl();
  const std::int64_t nq_el = std::int64_t{a.B} * a.Hq * a.nqb * a.D;
  const std::int64_t nk_el = std::int64_t{a.B} * a.Hkv * nkb * a.D;
  const std::uint64_t max_alloc = impl.device ? impl.info.max_alloc_bytes : 0;
  attention_detail::check_alloc(a.op, "pooled K", DType::f32, {nk_el}, max_alloc);
  attention_detail::check_alloc(a.op, "pooled Q", DType::f32, {nq_el}, max_alloc);
  const int wsi_per = cl_common::sq_block_sparse_ws_ints(p.top_k);
  attention_detail::check_alloc(a.op, "block-sparse workspace", DType::i32,
                                {rows, wsi_per + p.top_k}, max_alloc);
  int status = 0;
  if (!impl.device) {
    auto in = [](const Tensor& t) {
      fallback::sparse::In v;
      v.p = detail::host_data(t);
      v.dtype = static_cast<int>(t.dtype());
      v.sb = t.strides()[0];
      v.sh = t.strides()[1];
      v.sr = t.strides()[2];
      return v;
    };
    std::vector<float> qbar(static_cast<std::size_t>(nq_el)), kbar(static_cast<std::size_t>(nk_el));
    fallback::sparse::pool(in(q), qbar.data(), a.B, a.Hq, static_cast<int>(a.Lq), a.D);
    fallback::sparse::pool(in(k), kbar.data(), a.B, a.Hkv, static_cast<int>(a.Lk), a.D);
    fallback::sparse::IndexOut o{host_i32(x.tile_count),
                                 host_i32(x.tile_start),
                                 host_i32(x.col_count),
                                 rows,
                                 a.nqb,
                                 max_tiles};
    status = fallback::sparse::build_block_sparse(
        o, qbar.data(), kbar.data(), a.Hi, a.Hq, a.Hkv, share, nkb, a.D, p.top_k,
        static_cast<int>(a.Lq), static_cast<int>(a.Lk), static_cast<int>(a.off), a.causal);
  } else {
    auto& dev = *impl.device;
    cl::Buffer qbar = dev.allocate(static_cast<std::size_t>(nq_el) * 4, "pooled Q");
    cl::Buffer kbar = dev.allocate(static_cast<std::size_t>(nk_el) * 4, "pooled K");
    auto pool = [&](const Tensor& t, const cl::Buffer& out, int H, std::int64_t L, int nblk) {
      Launcher l(dev, dev.kernel(BuildKernelConfig::source, BuildKernelConfig::pool,
                                 BuildKernelConfig::defines()));
      const std::int64_t total = std::int64_t{a.B} * H * nblk * a.D;
      l.arg(t.storage()->buffer)
          .arg(static_cast<cl_long>(t.offset()))
          .arg(static_cast<cl_long>(t.strides()[0]))
          .arg(static_cast<cl_long>(t.strides()[1]))
          .arg(static_cast<cl_long>(t.strides()[2]))
          .i32(static_cast<int>(t.dtype()))
          .arg(out)
          .i32(H)
          .i32(L)
          .i32(a.D)
          .i32(nblk)
          .arg(static_cast<cl_long>(total));
      l.run(a.op, total);
    };
    pool(q, qbar, a.Hq, a.Lq, a.nqb);
    pool(k, kbar, a.Hkv, a.Lk, nkb);
    cl::Buffer wsf = dev.allocate(static_cast<std::size_t>(rows) * std::max(p.top_k, 1) * 4,
                                  "block-sparse workspace");
    cl::Buffer wsi =
        dev.allocate(static_cast<std::size_t>(rows) * wsi_per * 4, "block-sparse workspace");
    cl::Buffer st = status_buffer(dev);
    Launcher l(dev, dev.kernel(BuildKernelConfig::source, BuildKernelConfig::block_sparse,
                               BuildKernelConfig::defines()));
    l.arg(qbar)
        .arg(kbar)
        .arg(x.tile_count.storage()->buffer)
        .arg(x.tile_start.storage()->buffer)
        .arg(x.col_count.storage()->buffer)
        .arg(wsf)
        .arg(wsi)
        .arg(st)
        .i32(rows)
        .i32(a.Hi)
        .i32(a.Hq)
        .i32(a.Hkv)
        .i32(share)
        .i32(a.nqb)
        .i32(nkb)
        .i32(a.D)
        .i32(max_tiles)
        .i32(p.top_k)
        .i32(a.Lq)
        .i32(a.Lk)
        .i32(a.off)
        .i32(a.causal);
    l.run(a.op, rows);
    status = read_status(dev, st);
  }
  check_build_status(a.op, status);
  seal_index(x);
  return x;
}

}  // namespace sparse_detail

SparseIndex build_index(Context& ctx, const Tensor& q, const Tensor& k, const Pattern& pattern,
                        const IndexOptions& options) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const bool dense_layer =
      options.layer >= 0 && std::find(options.dense_layers.begin(), options.dense_layers.end(),
                                      options.layer) != options.dense_layers.end();
  const bool reads_qk = !dense_layer && !std::holds_alternative<Dense>(pattern) &&
                        !std::holds_alternative<AShape>(pattern);
  const BuildArgs a = check_build(ctx, q, k, options, reads_qk);
  if (dense_layer) return build(ctx, q, k, Dense{}, a);
  return std::visit([&](const auto& p) { return build(ctx, q, k, p, a); }, pattern);
}

AttentionResult attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Pattern& pattern, const AttentionOptions& options,
                          const IndexOptions& index_options) {
  IndexOptions io = index_options;
  io.causal = options.causal;
  const SparseIndex x = build_index(ctx, q, k, pattern, io);
  if (x.qpos.defined()) return permuted_attention(ctx, q, k, v, x, options);  // Grid (§7)
  return run_sparse_prefill(ctx, q, k, v, x, options);
}

}  // namespace sparq
