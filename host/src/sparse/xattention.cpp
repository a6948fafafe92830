// sparq::build_index for XAttention (spec §6): check the pattern and thresholds -> allocate the
// index -> launch sparse_xattn_scores / _softmax / _blocksum in passes of (head, 64-group row
// tiles) that bound the score scratch, then _group (kv_group) and _select
// (kernels_cl/sparse/xattention.cl), or run the fallback (fallback_cpu/sparse/xattention.cpp).
// Also the JSON threshold table loader (§6.3).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "builder_common.h"
#include "builder_kernels.h"

namespace sparq {

std::vector<std::vector<float>> load_xattention_thresholds(const std::string& path) {
  constexpr const char* op = "load_xattention_thresholds";
  std::ifstream in(path);
  if (!in) rt::fail(ErrorCode::io_error, op, "cannot open '{}'", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    rt::fail(ErrorCode::invalid_argument, op, "'{}' is not valid JSON: {}", path, e.what());
  }
  std::vector<std::vector<float>> table;
  if (!j.is_array())
    rt::fail(ErrorCode::invalid_argument, op, "'{}': expected [layer][head] -> tau", path);
  for (std::size_t l = 0; l < j.size(); ++l) {
    if (!j[l].is_array())
      rt::fail(ErrorCode::invalid_argument, op, "'{}': layer {} is not a list of thresholds", path,
               l);
    std::vector<float> row;
    for (std::size_t h = 0; h < j[l].size(); ++h) {
      if (!j[l][h].is_number())
        rt::fail(ErrorCode::invalid_argument, op, "'{}': [{}][{}] is not a number", path, l, h);
      const float t = j[l][h].get<float>();
      if (!(t > 0.0f && t <= 1.0f))
        rt::fail(ErrorCode::invalid_argument, op, "'{}': [{}][{}] = {}; tau must be in (0, 1]",
                 path, l, h, t);
      row.push_back(t);
    }
    table.push_back(std::move(row));
  }
  return table;
}

namespace sparse_detail {

namespace {
constexpr const char* kOp = "build_index(XAttention)";
constexpr std::int64_t kScoreScratchBytes = std::int64_t{256} << 20;

void check_tau(float t, const char* what, int h) {
  require(kOp, t > 0.0f && t <= 1.0f, "{} of head {} is {}; tau must be in (0, 1] (NaN rejected)",
          what, h, t);
}
}  // namespace

// Threshold per index head (§6.2b: the largest of the group's heads under kv_group).
std::vector<float> xattn_index_thresholds(const XAttention& pat, int layer, int hq, int gi) {
  std::vector<float> tq(static_cast<std::size_t>(hq), pat.threshold);
  require(kOp, !(pat.per_head_threshold && !pat.threshold_table.empty()),
          "per_head_threshold and threshold_table are both set; give one");
  if (pat.per_head_threshold) {
    require(kOp, static_cast<int>(pat.per_head_threshold->size()) == hq,
            "per_head_threshold has {} entries; expected one per query head ({})",
            pat.per_head_threshold->size(), hq);
    tq = *pat.per_head_threshold;
  } else if (!pat.threshold_table.empty()) {
    require(kOp, layer >= 0 && layer < static_cast<int>(pat.threshold_table.size()),
            "threshold_table has {} layers; options.layer = {} is not one of them",
            pat.threshold_table.size(), layer);
    const auto& row = pat.threshold_table[static_cast<std::size_t>(layer)];
    require(kOp, static_cast<int>(row.size()) == hq,
            "threshold_table[{}] has {} entries; expected one per query head ({})", layer,
            row.size(), hq);
    tq = row;
  }
  for (int h = 0; h < hq; ++h) check_tau(tq[static_cast<std::size_t>(h)], "threshold", h);
  std::vector<float> ti(static_cast<std::size_t>(hq / gi));
  for (int hi = 0; hi < hq / gi; ++hi) {
    float t = tq[static_cast<std::size_t>(hi * gi)];
    for (int g = 1; g < gi; ++g) t = std::max(t, tq[static_cast<std::size_t>(hi * gi + g)]);
    ti[static_cast<std::size_t>(hi)] = t;
  }
  return ti;
}

SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const XAttention& pat,
                  const BuildArgs& ba) {
  require(kOp, pat.stride == 4 || pat.stride == 8 || pat.stride == 16,
          "stride = {}; expected 4, 8 or 16", pat.stride);
  check_tau(pat.threshold, "threshold", -1);
  const BuilderGeometry g = builder_geometry(ba);
  require(kOp, ba.off % 128 == 0,
          "off = Lk - Lq = {} is not a multiple of 128 (XAttention aligns query blocks to the "
          "end of K in 128-blocks)",
          ba.off);
  const std::vector<float> tau = xattn_index_thresholds(pat, ba.layer, ba.Hq, g.gi);
  const int S = pat.stride;
  const int Lq = static_cast<int>(ba.Lq), Lk = static_cast<int>(ba.Lk);
  const int nkb = (Lk + 127) / 128, nqb128 = (Lq + 127) / 128;
  const int max_tiles = 2 * nkb;
  SparseIndex idx = new_index(ctx, ba, max_tiles, 0);
  const float cx = scale_log2e(ba.D) / static_cast<float>(S);  // exact: S is a power of 2
  auto& impl = *ctx.impl();

  if (!impl.device) {
    fallback::sparse::XAttentionProblem p;
    p.q = qk_view(q);
    p.k = qk_view(k);
    p.B = ba.B;
    p.Hq = ba.Hq;
    p.G = g.G;
    p.gi = g.gi;
    p.D = ba.D;
    p.Lq = Lq;
    p.Lk = Lk;
    p.stride = S;
    p.causal = ba.causal;
    p.cx = cx;
    p.tau = tau.data();
    p.out = index_out(idx);
    fallback::sparse::xattention(p);
    seal_index(idx);
    return idx;
  }

  auto& dev = *impl.device;
  const std::string defs = XAttentionKernelConfig::defines(ba.D, S);
  const char* src = XAttentionKernelConfig::source;
  const int ngi = (Lq + S - 1) / S, ngj = (Lk + S - 1) / S;
  const int ngt = (ngi + 63) / 64, ngjt = (ngj + 63) / 64;
  const std::int64_t as = std::int64_t{ngjt} * 64;
  const std::int64_t npairs = std::int64_t{ba.B} * ba.Hq, nunits = npairs * ngt;
  const std::int64_t per_unit = 64 * (as + 2 * ngjt + nkb) * 4;
  const std::int64_t upass =
      std::max<std::int64_t>(1, std::min(nunits, kScoreScratchBytes / per_unit));
  cl::Buffer a = dev.allocate(static_cast<std::size_t>(upass * 64 * as * 4), "xattn scores");
  cl::Buffer tmax = dev.allocate(static_cast<std::size_t>(upass * 64 * ngjt * 4), "tile maxima");
  cl::Buffer part = dev.allocate(static_cast<std::size_t>(upass * 64 * ngjt * 4), "partials");
  cl::Buffer rb = dev.allocate(static_cast<std::size_t>(upass * 64 * nkb * 4), "row block sums");
  const std::size_t sb_bytes = static_cast<std::size_t>(npairs * nqb128 * nkb * 4);
  cl::Buffer sb = dev.allocate(sb_bytes, "block scores");
  cl::Kernel ks = dev.kernel(src, "sparse_xattn_scores", defs);
  cl::Kernel kx = dev.kernel(src, "sparse_xattn_softmax", defs);
  cl::Kernel kb = dev.kernel(src, "sparse_xattn_blocksum", defs);
  const int qb_per_tile = 64 / (128 / S);
  for (std::int64_t u0 = 0; u0 < nunits; u0 += upass) {
    const std::int64_t nu = std::min(upass, nunits - u0);
    cl_uint i = 0;
    set_qk_args(ks, i, q);
    set_qk_args(ks, i, k);
    ks.setArg(i++, static_cast<cl_int>(ba.Hq));
    ks.setArg(i++, static_cast<cl_int>(g.G));
    ks.setArg(i++, static_cast<cl_int>(Lq));
    ks.setArg(i++, static_cast<cl_int>(Lk));
    ks.setArg(i++, static_cast<cl_int>(ba.causal));
    ks.setArg(i++, static_cast<cl_long>(u0));
    ks.setArg(i++, static_cast<cl_int>(ngt));
    ks.setArg(i++, cx);
    ks.setArg(i++, a);
    ks.setArg(i++, static_cast<cl_long>(as));
    ks.setArg(i++, tmax);
    ks.setArg(i++, static_cast<cl_int>(ngjt));
    dev.launch(kOp, ks,
               cl::NDRange(256 * static_cast<std::size_t>(ngjt), static_cast<std::size_t>(nu)),
               cl::NDRange(256, 1));
    i = 0;
    kx.setArg(i++, a);
    kx.setArg(i++, static_cast<cl_long>(as));
    kx.setArg(i++, tmax);
    kx.setArg(i++, static_cast<cl_int>(ngjt));
    kx.setArg(i++, static_cast<cl_int>(Lq));
    kx.setArg(i++, static_cast<cl_int>(Lk));
    kx.setArg(i++, static_cast<cl_int>(ba.causal));
    kx.setArg(i++, static_cast<cl_long>(u0));
    kx.setArg(i++, static_cast<cl_int>(ngt));
    kx.setArg(i++, part);
    kx.setArg(i++, rb);
    kx.setArg(i++, static_cast<cl_int>(nkb));
    dev.launch(kOp, kx, cl::NDRange(64 * 64, static_cast<std::size_t>(nu)), cl::NDRange(64, 1));
    i = 0;
    kb.setArg(i++, rb);
    kb.setArg(i++, static_cast<cl_int>(nkb));
    kb.setArg(i++, static_cast<cl_int>(Lq));
    kb.setArg(i++, static_cast<cl_long>(u0));
    kb.setArg(i++, static_cast<cl_int>(ngt));
    kb.setArg(i++, static_cast<cl_int>(nqb128));
    kb.setArg(i++, sb);
    dev.launch(kOp, kb,
               cl::NDRange(static_cast<std::size_t>(nkb), static_cast<std::size_t>(qb_per_tile),
                           static_cast<std::size_t>(nu)),
               cl::NullRange);
  }
  const std::int64_t nip = std::int64_t{ba.B} * ba.Hi;
  cl::Buffer sbi = sb;
  if (g.gi > 1) {
    sbi = dev.allocate(static_cast<std::size_t>(nip * nqb128 * nkb * 4), "group block scores");
    cl::Kernel kg = dev.kernel(src, "sparse_xattn_group", defs);
    cl_uint i = 0;
    kg.setArg(i++, sb);
    kg.setArg(i++, static_cast<cl_int>(nkb));
    kg.setArg(i++, static_cast<cl_int>(nqb128));
    kg.setArg(i++, static_cast<cl_int>(g.gi));
    kg.setArg(i++, sbi);
    dev.launch(kOp, kg,
               cl::NDRange(static_cast<std::size_t>(nkb), static_cast<std::size_t>(nqb128),
                           static_cast<std::size_t>(nip)),
               cl::NullRange);
  }
  cl::Buffer taub = dev.allocate(tau.size() * 4, "thresholds");
  dev.write(taub, 0, tau.size() * 4, tau.data(), "thresholds");
  cl::Kernel kc = dev.kernel(src, "sparse_xattn_select", defs);
  cl_uint i = 0;
  kc.setArg(i++, sbi);
  kc.setArg(i++, static_cast<cl_int>(nkb));
  kc.setArg(i++, static_cast<cl_int>(nqb128));
  kc.setArg(i++, static_cast<cl_int>(ba.nqb));
  kc.setArg(i++, static_cast<cl_int>(Lq));
  kc.setArg(i++, static_cast<cl_int>(Lk));
  kc.setArg(i++, static_cast<cl_int>(ba.causal));
  kc.setArg(i++, taub);
  kc.setArg(i++, static_cast<cl_int>(ba.Hi));
  kc.setArg(i++, idx.tile_start.storage()->buffer);
  kc.setArg(i++, static_cast<cl_int>(max_tiles));
  kc.setArg(i++, idx.tile_count.storage()->buffer);
  kc.setArg(i++, idx.col_count.storage()->buffer);
  const std::size_t nq_r = (static_cast<std::size_t>(nqb128) + 63) / 64 * 64;
  dev.launch(kOp, kc, cl::NDRange(nq_r, static_cast<std::size_t>(nip)), cl::NDRange(64, 1));
  seal_index(idx);
  return idx;
}

}  // namespace sparse_detail
}  // namespace sparq
