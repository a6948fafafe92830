// sparq::build_index for VerticalSlash (spec §5.2): check the pattern -> allocate the index ->
// launch sparse_vs_probe / _softmax / _sums / _topk / _convert
// (kernels_cl/sparse/vertical_slash.cl) in passes of index heads that bound the probe scratch, or
// run the fallback executor (fallback_cpu/sparse/vertical_slash.cpp).
#include <algorithm>
#include <cmath>

#include "builder_common.h"
#include "builder_kernels.h"

namespace sparq::sparse_detail {

namespace {
constexpr const char* kOp = "build_index(VerticalSlash)";
// Probe scratch per pass (scores of 64 rows x Lk per query head); at least one index head.
constexpr std::int64_t kProbeScratchBytes = std::int64_t{256} << 20;
}  // namespace

VsBudgets vs_budgets(const VerticalSlash& p, std::int64_t lk) {
  const auto scaled = [&](int n) {
    return static_cast<std::int64_t>(std::floor(static_cast<double>(n) * p.ratio));
  };
  const std::int64_t v = scaled(p.vertical), s = scaled(p.slash);
  VsBudgets b;
  // MInference: min(q_len, max(size, 30 / 50)); an explicit 0 keeps only the forced diagonal.
  b.V = static_cast<int>(v == 0 ? 0 : std::min<std::int64_t>(lk, std::max<std::int64_t>(v, 30)));
  b.S = static_cast<int>(s == 0 ? 0 : std::min<std::int64_t>(lk, std::max<std::int64_t>(s, 50)));
  return b;
}

void vs_probe_device(rt::DeviceRuntime& dev, const Tensor& q, const Tensor& k, const BuildArgs& a,
                     int forced_cols, int forced_diags, const cl::Buffer& vsc,
                     const cl::Buffer& slc) {
  const BuilderGeometry g = builder_geometry(a);
  const int nkt = static_cast<int>((a.Lk + kTile - 1) / kTile);
  const int nl = static_cast<int>(std::min<std::int64_t>(64, a.Lq));
  const float c = scale_log2e(a.D);
  const std::string defs = VerticalSlashKernelConfig::defines(a.D);
  const char* src = VerticalSlashKernelConfig::source;
  const std::int64_t Lk = a.Lk;
  const std::int64_t xs = (Lk + kTile - 1) / kTile * kTile;
  const std::int64_t nip = std::int64_t{a.B} * a.Hi;
  const std::int64_t per_ip = std::int64_t{g.gi} * 64 * xs * 4;
  const std::int64_t ip_pass =
      std::max<std::int64_t>(1, std::min(nip, kProbeScratchBytes / per_ip));
  const std::int64_t qp_pass = ip_pass * g.gi;
  cl::Buffer x = dev.allocate(static_cast<std::size_t>(qp_pass * 64 * xs * 4), "probe scores");
  cl::Buffer tmax = dev.allocate(static_cast<std::size_t>(qp_pass * 64 * nkt * 4), "tile maxima");
  cl::Buffer part = dev.allocate(static_cast<std::size_t>(qp_pass * 64 * nkt * 4), "partials");
  cl::Buffer mz = dev.allocate(static_cast<std::size_t>(qp_pass * 64 * 2 * 4), "row max/sum");

  cl::Kernel kp = dev.kernel(src, "sparse_vs_probe", defs);
  cl::Kernel ks = dev.kernel(src, "sparse_vs_softmax", defs);
  cl::Kernel ksum = dev.kernel(src, "sparse_vs_sums", defs);
  for (std::int64_t ip0 = 0; ip0 < nip; ip0 += ip_pass) {
    const std::int64_t nipp = std::min(ip_pass, nip - ip0);
    const std::int64_t nqp = nipp * g.gi;
    cl_uint i = 0;
    set_qk_args(kp, i, q);
    set_qk_args(kp, i, k);
    kp.setArg(i++, static_cast<cl_int>(a.Hq));
    kp.setArg(i++, static_cast<cl_int>(g.G));
    kp.setArg(i++, static_cast<cl_int>(a.Lq));
    kp.setArg(i++, static_cast<cl_int>(Lk));
    kp.setArg(i++, static_cast<cl_int>(nl));
    kp.setArg(i++, static_cast<cl_long>(ip0 * g.gi));
    kp.setArg(i++, c);
    kp.setArg(i++, x);
    kp.setArg(i++, static_cast<cl_long>(xs));
    kp.setArg(i++, tmax);
    kp.setArg(i++, static_cast<cl_int>(nkt));
    dev.launch(kOp, kp,
               cl::NDRange(256 * static_cast<std::size_t>(nkt), static_cast<std::size_t>(nqp)),
               cl::NDRange(256, 1));
    i = 0;
    ks.setArg(i++, x);
    ks.setArg(i++, static_cast<cl_long>(xs));
    ks.setArg(i++, tmax);
    ks.setArg(i++, static_cast<cl_int>(nkt));
    ks.setArg(i++, static_cast<cl_int>(Lk));
    ks.setArg(i++, part);
    ks.setArg(i++, mz);
    dev.launch(kOp, ks,
               cl::NDRange(64 * static_cast<std::size_t>(nl), static_cast<std::size_t>(nqp)),
               cl::NDRange(64, 1));
    i = 0;
    ksum.setArg(i++, x);
    ksum.setArg(i++, static_cast<cl_long>(xs));
    ksum.setArg(i++, mz);
    ksum.setArg(i++, static_cast<cl_int>(g.gi));
    ksum.setArg(i++, static_cast<cl_int>(Lk));
    ksum.setArg(i++, static_cast<cl_int>(nl));
    ksum.setArg(i++, static_cast<cl_int>(forced_cols));
    ksum.setArg(i++, static_cast<cl_int>(forced_diags));
    ksum.setArg(i++, static_cast<cl_long>(ip0));
    ksum.setArg(i++, vsc);
    ksum.setArg(i++, slc);
    dev.launch(kOp, ksum, cl::NDRange(static_cast<std::size_t>(xs), static_cast<std::size_t>(nipp)),
               cl::NullRange);
  }
}

SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const VerticalSlash& pat,
                  const BuildArgs& a) {
  require(kOp, a.causal, "vertical-slash is causal only (MInference); options.causal is false");
  require(kOp, pat.vertical >= 0 && pat.slash >= 0, "vertical = {}, slash = {}: must be >= 0",
          pat.vertical, pat.slash);
  require(kOp, std::isfinite(pat.ratio) && pat.ratio > 0.0f && pat.ratio <= 1e6f,
          "ratio = {}; expected finite, > 0", pat.ratio);
  require(kOp, pat.last_q == 64, "last_q = {}; only 64 (MInference's value) is supported",
          pat.last_q);
  require(kOp, pat.forced_cols >= 0 && pat.forced_diags >= 0,
          "forced_cols = {}, forced_diags = {}: must be >= 0", pat.forced_cols, pat.forced_diags);
  const BuilderGeometry g = builder_geometry(a);
  const VsBudgets bud = vs_budgets(pat, a.Lk);
  const int nkt = static_cast<int>((a.Lk + kTile - 1) / kTile);
  const int max_tiles =
      static_cast<int>(std::min<std::int64_t>(2 * (std::int64_t{bud.S} + 1), nkt));
  const int max_cols = bud.V;
  SparseIndex idx = new_index(ctx, a, max_tiles, max_cols);
  const float c = scale_log2e(a.D);
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
    p.c = c;
    p.V = bud.V;
    p.S = bud.S;
    p.forced_cols = pat.forced_cols;
    p.forced_diags = pat.forced_diags;
    p.out = index_out(idx);
    fallback::sparse::vertical_slash(p);
    seal_index(idx);
    return idx;
  }

  auto& dev = *impl.device;
  const std::string defs = VerticalSlashKernelConfig::defines(a.D);
  const char* src = VerticalSlashKernelConfig::source;
  const std::int64_t Lk = a.Lk;
  const std::int64_t nip = std::int64_t{a.B} * a.Hi;
  cl::Buffer vsc = dev.allocate(static_cast<std::size_t>(nip * Lk * 4), "vertical scores");
  cl::Buffer slc = dev.allocate(static_cast<std::size_t>(nip * Lk * 4), "slash scores");
  cl::Buffer vlist = dev.allocate(static_cast<std::size_t>(nip * std::max(bud.V, 1) * 4), "vlist");
  cl::Buffer slist = dev.allocate(static_cast<std::size_t>(nip * std::max(bud.S, 1) * 4), "slist");
  vs_probe_device(dev, q, k, a, pat.forced_cols, pat.forced_diags, vsc, slc);
  cl::Kernel kt = dev.kernel(src, "sparse_vs_topk", defs);
  for (int list = 0; list < 2; ++list) {
    const int kk = list == 0 ? bud.V : bud.S;
    if (kk == 0) continue;
    cl_uint i = 0;
    kt.setArg(i++, list == 0 ? vsc : slc);
    kt.setArg(i++, static_cast<cl_int>(Lk));
    kt.setArg(i++, static_cast<cl_int>(kk));
    kt.setArg(i++, list == 0 ? vlist : slist);
    kt.setArg(i++, static_cast<cl_int>(kk));
    dev.launch(kOp, kt, cl::NDRange(256 * static_cast<std::size_t>(nip)), cl::NDRange(256));
  }
  cl::Kernel kc = dev.kernel(src, "sparse_vs_convert", defs);
  cl_uint i = 0;
  kc.setArg(i++, vlist);
  kc.setArg(i++, static_cast<cl_int>(bud.V));
  kc.setArg(i++, slist);
  kc.setArg(i++, static_cast<cl_int>(bud.S));
  kc.setArg(i++, static_cast<cl_int>(a.nqb));
  kc.setArg(i++, static_cast<cl_int>(a.Lq));
  kc.setArg(i++, static_cast<cl_int>(Lk));
  set_index_args(kc, i, idx);
  const std::size_t nqb_r = (static_cast<std::size_t>(a.nqb) + 63) / 64 * 64;
  dev.launch(kOp, kc, cl::NDRange(nqb_r, static_cast<std::size_t>(nip)), cl::NDRange(64, 1));
  seal_index(idx);
  return idx;
}

}  // namespace sparq::sparse_detail
