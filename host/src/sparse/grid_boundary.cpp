// MMInference boundary heads (spec §7.4) on the grid builder: one probe per query modality (the
// modality's last min(64, n) query rows), then the grid plan with modality-grouped permutations
// (grid_plan.cpp) and the grid selection kernels (grid.cpp). A modality's probe rows are made
// contiguous with a stable gather (permute_rows) and probed against the keys up to its last row,
// with vertical-slash's probe (positions taken as the last rows of that prefix: exact when the
// modality's last rows are consecutive tokens, as at the end of a video or a question).
#include <algorithm>

#include "grid_plan.h"
#include "host/src/attention/attention_access.h"
#include "sparq/mminference.h"

namespace sparq::sparse_detail {

SparseIndex build_grid_boundary(Context& ctx, const Tensor& q, const Tensor& k, const Grid& pat,
                                const BuildArgs& a) {
  const std::int64_t Lq = a.Lq, Lk = a.Lk, off = a.off;
  std::vector<std::int32_t> qmod(static_cast<std::size_t>(Lq));
  for (std::int64_t i = 0; i < Lq; ++i)
    qmod[static_cast<std::size_t>(i)] = pat.modality[static_cast<std::size_t>(off + i)];
  const std::vector<std::int32_t> order = modality_permutation(qmod);
  std::vector<std::int32_t> perm;
  for (int b = 0; b < a.B; ++b) perm.insert(perm.end(), order.begin(), order.end());
  const Tensor qm = permute_rows(ctx, q, ctx.upload(perm, DType::i32, {a.B, Lq}));
  GridProbes probes;
  const std::int64_t nip = std::int64_t{a.B} * a.Hi;
  for (std::int64_t s = 0; s < Lq;) {
    const std::int32_t id = qmod[static_cast<std::size_t>(order[static_cast<std::size_t>(s)])];
    std::int64_t e = s;
    while (e < Lq && qmod[static_cast<std::size_t>(order[static_cast<std::size_t>(e)])] == id) ++e;
    const std::int64_t nl = std::min<std::int64_t>(64, e - s);
    const std::int64_t lk = off + order[static_cast<std::size_t>(e - 1)] + 1;
    const Tensor qv =
        qm.view({a.B, a.Hq, nl, a.D}, qm.strides(), qm.offset() + (e - nl) * qm.strides()[2]);
    const Tensor kv = k.view({a.B, a.Hkv, lk, a.D}, k.strides(), k.offset());
    BuildArgs pa = a;
    pa.Lq = nl;
    pa.Lk = lk;
    pa.off = lk - nl;
    pa.nqb = num_qblocks(nl);
    const std::vector<float> vp = grid_probe_scores(ctx, qv, kv, pa);
    std::vector<float> v(static_cast<std::size_t>(nip * Lk), 0.0f);
    for (std::int64_t r = 0; r < nip; ++r)
      std::copy(vp.begin() + r * lk, vp.begin() + (r + 1) * lk, v.begin() + r * Lk);
    probes.ids.push_back(id);
    probes.v.push_back(std::move(v));
    s = e;
  }
  const GridPlan plan = grid_plan(pat, a, probes);
  return grid_select_index(ctx, q, k, a, plan, pat.top_k);
}

}  // namespace sparq::sparse_detail
