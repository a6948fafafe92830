// sparq::permuted_attention and sparq::index_permutation: run an index built in a permuted order
// (MMInference grid / boundary heads, spec §7.1) on Q/K/V in their original order. Design: the
// index alone carries the permutations (kpos = the key permutation, qpos - off = the query
// permutation), so no second object has to travel with it; this helper is the end-to-end path
// permute -> sparse kernel -> unpermute, and index_permutation() hands the permutations to a
// caller who keeps Q/K/V permuted across layers (permute once, unpermute once).
#include <mutex>

#include "host/src/attention/attention_access.h"
#include "sparq/mminference.h"
#include "sparse_common.h"

namespace sparq {

IndexPermutation index_permutation(Context& ctx, const SparseIndex& index) {
  constexpr const char* op = "index_permutation";
  std::lock_guard lock(ctx.impl()->mutex);
  if (!index.qpos.defined() || !index.kpos.defined())
    rt::fail(ErrorCode::invalid_argument, op,
             "the index has no qpos/kpos (it is in the identity order: no permutation)");
  auto qp = index.qpos.download<std::int32_t>();
  for (auto& x : qp) x = static_cast<std::int32_t>(x - index.off);
  IndexPermutation p;
  p.q = ctx.upload(qp, DType::i32, {index.B, index.Lq});
  p.k = ctx.upload(index.kpos.download<std::int32_t>(), DType::i32, {index.B, index.Lk});
  return p;
}

AttentionResult permuted_attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                   const SparseIndex& index, const AttentionOptions& options) {
  if (!index.qpos.defined()) return attention(ctx, q, k, v, index, options);
  std::lock_guard lock(ctx.impl()->mutex);
  const IndexPermutation p = index_permutation(ctx, index);
  AttentionResult r = attention(ctx, permute_rows(ctx, q, p.q), permute_rows(ctx, k, p.k),
                                permute_rows(ctx, v, p.k), index, options);
  r.out = unpermute_rows(ctx, r.out, p.q);
  if (r.lse.defined()) {
    const std::int64_t B = r.lse.dim(0), H = r.lse.dim(1), L = r.lse.dim(2);
    const Tensor l4 = r.lse.view({B, H, L, 1}, {H * L, L, 1, 1}, r.lse.offset());
    const Tensor back = unpermute_rows(ctx, l4, p.q);
    r.lse = back.view({B, H, L}, {H * L, L, 1}, back.offset());
  }
  return r;
}

}  // namespace sparq
