// sparq::build_index for Grid (MMInference grid head, spec §7.3), no boundary: check the pattern
// -> step 1, the vertical-slash probe's column mass v (vs_probe_device or the fallback) ->
// steps 2, 3, 5 on the host from v (grid_plan.cpp: stride, permutation, line tiles; every value
// there is a function of v's bits, so both executors agree) -> steps 4, 6, 7 as
// sparse_grid_pool / sparse_grid_select (kernels_cl/sparse/grid.cl) or their fallback.
// The boundary heads (§7.4) reuse the same plan + kernels with other permutations
// (grid_boundary.cpp).
#include <algorithm>

#include "builder_common.h"
#include "builder_kernels.h"
#include "fallback_cpu/sparse/grid_fallback.h"
#include "grid_plan.h"
#include "host/src/attention/attention_validate.h"
#include "sparse/grid_build.h"

namespace sparq::sparse_detail {

namespace {

constexpr const char* kOp = "build_index(Grid)";

}  // namespace

std::vector<float> grid_probe_scores(Context& ctx, const Tensor& q, const Tensor& k,
                                     const BuildArgs& a) {
  const BuilderGeometry g = builder_geometry(a);
  const std::int64_t nip = std::int64_t{a.B} * a.Hi;
  std::vector<float> v(static_cast<std::size_t>(nip * a.Lk));
  auto& impl = *ctx.impl();
  if (!impl.device) {
    fallback::sparse::VerticalSlashProblem p;
    p.q = qk_view(q);
    p.k = qk_view(k);
    p.B = a.B;
    p.Hq = a.Hq;
    p.G = g.G;
    p.gi = g.gi;
    p.D = a.D;
    p.Lq = static_cast<int>(a.Lq);
    p.Lk = static_cast<int>(a.Lk);
    p.c = scale_log2e(a.D);
    p.vscore = &v;
    p.scores_only = true;
    fallback::sparse::vertical_slash(p);
    return v;
  }
  auto& dev = *impl.device;
  const std::size_t bytes = v.size() * 4;
  cl::Buffer vsc = dev.allocate(std::max<std::size_t>(bytes, 4), "grid column mass");
  cl::Buffer slc = dev.allocate(std::max<std::size_t>(bytes, 4), "grid slash mass");
  vs_probe_device(dev, q, k, a, 0, 0, vsc, slc);
  dev.read(vsc, 0, bytes, v.data(), kOp);
  return v;
}

SparseIndex grid_select_index(Context& ctx, const Tensor& q, const Tensor& k, const BuildArgs& a,
                              const GridPlan& plan, int top_k) {
  const int nkb = static_cast<int>((a.Lk + kTile - 1) / kTile);
  const int max_tiles =
      static_cast<int>(std::min<std::int64_t>(nkb, std::int64_t{top_k} + plan.max_lines + 65));
  SparseIndex x = new_index(ctx, a, max_tiles, 0);
  const int rows = a.B * a.Hi * a.nqb;
  const bool share = a.sharing == IndexSharing::kv_group;
  auto& impl = *ctx.impl();
  const std::int64_t nq_el = std::int64_t{a.B} * a.Hq * a.nqb * a.D;
  const std::int64_t nk_el = std::int64_t{a.B} * a.Hkv * nkb * a.D;
  const std::uint64_t max_alloc = impl.device ? impl.info.max_alloc_bytes : 0;
  attention_detail::check_alloc(kOp, "pooled K", DType::f32, {nk_el}, max_alloc);
  attention_detail::check_alloc(kOp, "pooled Q", DType::f32, {nq_el}, max_alloc);
  const int wsn = top_k + cl_common::sq_grid_ws_ints(top_k, plan.max_lines);
  attention_detail::check_alloc(kOp, "grid workspace", DType::i32, {rows, wsn + top_k}, max_alloc);
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
    fallback::sparse::grid_pool(in(q), plan.qperm.data(), qbar.data(), a.B, a.Hq,
                                static_cast<int>(a.Lq), a.D);
    fallback::sparse::grid_pool(in(k), plan.kperm.data(), kbar.data(), a.B, a.Hkv,
                                static_cast<int>(a.Lk), a.D);
    fallback::sparse::GridSelectProblem p;
    p.qbar = qbar.data();
    p.kbar = kbar.data();
    p.kbmin = plan.kbmin.data();
    p.qpos = plan.qpos.data();
    p.kpos = plan.kperm.data();
    p.kinv = plan.kinv.data();
    p.lines = plan.lines.data();
    p.nlines = plan.nlines.data();
    p.max_lines = plan.max_lines;
    p.B = a.B;
    p.Hi = a.Hi;
    p.Hq = a.Hq;
    p.Hkv = a.Hkv;
    p.nqb = a.nqb;
    p.nkb = nkb;
    p.D = a.D;
    p.top_k = top_k;
    p.lq = static_cast<int>(a.Lq);
    p.lk = static_cast<int>(a.Lk);
    p.share = share;
    fallback::sparse::IndexOut o{
        reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.tile_count)),
        reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.tile_start)),
        reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.col_count)),
        rows,
        a.nqb,
        max_tiles};
    status = fallback::sparse::grid_select(p, o);
  } else {
    auto& dev = *impl.device;
    auto ints = [&](const std::vector<std::int32_t>& v, const char* what) {
      cl::Buffer b = dev.allocate(std::max<std::size_t>(v.size() * 4, 4), what);
      if (!v.empty()) dev.write(b, 0, v.size() * 4, v.data(), what);
      return b;
    };
    const cl::Buffer qperm = ints(plan.qperm, "grid query permutation");
    const cl::Buffer kperm = ints(plan.kperm, "grid key permutation");
    const cl::Buffer kinv = ints(plan.kinv, "grid inverse key permutation");
    const cl::Buffer kbmin = ints(plan.kbmin, "grid block minima");
    const cl::Buffer qpos = ints(plan.qpos, "grid query positions");
    const cl::Buffer lines = ints(plan.lines, "grid lines");
    const cl::Buffer nlines = ints(plan.nlines, "grid line counts");
    cl::Buffer qbar = dev.allocate(static_cast<std::size_t>(nq_el) * 4, "pooled Q");
    cl::Buffer kbar = dev.allocate(static_cast<std::size_t>(nk_el) * 4, "pooled K");
    cl::Kernel kp =
        dev.kernel(GridKernelConfig::source, GridKernelConfig::pool, GridKernelConfig::defines());
    auto pool = [&](const Tensor& t, const cl::Buffer& perm, const cl::Buffer& out, int H,
                    std::int64_t L, int nblk) {
      const std::int64_t total = std::int64_t{a.B} * H * nblk * a.D;
      rt::set_kernel_args(kOp, kp, t.storage()->buffer, cl_long(t.offset()),
                          cl_long(t.strides()[0]), cl_long(t.strides()[1]), cl_long(t.strides()[2]),
                          cl_int(static_cast<int>(t.dtype())), perm, out, cl_int(H), cl_int(L),
                          cl_int(a.D), cl_int(nblk), cl_long(total));
      const std::size_t local = 64;
      dev.launch(kOp, kp,
                 cl::NDRange((static_cast<std::size_t>(total) + local - 1) / local * local),
                 cl::NDRange(local));
    };
    pool(q, qperm, qbar, a.Hq, a.Lq, a.nqb);
    pool(k, kperm, kbar, a.Hkv, a.Lk, nkb);
    cl::Buffer wsf =
        dev.allocate(static_cast<std::size_t>(rows) * std::max(top_k, 1) * 4, "grid workspace");
    cl::Buffer wsi = dev.allocate(static_cast<std::size_t>(rows) * wsn * 4, "grid workspace");
    cl::Buffer st = dev.allocate(4, "grid status");
    const std::int32_t zero = 0;
    dev.write(st, 0, 4, &zero, kOp);
    cl::Kernel ks =
        dev.kernel(GridKernelConfig::source, GridKernelConfig::select, GridKernelConfig::defines());
    rt::set_kernel_args(kOp, ks, qbar, kbar, kbmin, qpos, kperm, kinv, lines, nlines,
                        cl_int(plan.max_lines), x.tile_count.storage()->buffer,
                        x.tile_start.storage()->buffer, x.col_count.storage()->buffer, wsf, wsi, st,
                        cl_int(rows), cl_int(a.Hi), cl_int(a.Hq), cl_int(a.Hkv), cl_int(share),
                        cl_int(a.nqb), cl_int(nkb), cl_int(a.D), cl_int(max_tiles), cl_int(top_k),
                        cl_int(a.Lq), cl_int(a.Lk));
    const std::size_t local = 64;
    dev.launch(kOp, ks, cl::NDRange((static_cast<std::size_t>(rows) + local - 1) / local * local),
               cl::NDRange(local));
    dev.read(st, 0, 4, &status, kOp);
  }
  check_build_status(kOp, status);
  x.qpos = ctx.upload(plan.qpos, DType::i32, {a.B, a.Lq});
  x.kpos = ctx.upload(plan.kperm, DType::i32, {a.B, a.Lk});
  seal_index(x);
  return x;
}

SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const Grid& pat,
                  const BuildArgs& a) {
  check_grid(pat, a);
  if (pat.boundary != Boundary::none) return build_grid_boundary(ctx, q, k, pat, a);
  GridProbes probes;
  probes.ids = {-1};
  probes.v.push_back(grid_probe_scores(ctx, q, k, a));
  const GridPlan plan = grid_plan(pat, a, probes);
  return grid_select_index(ctx, q, k, a, plan, pat.top_k);
}

}  // namespace sparq::sparse_detail
