// Precision::int8 attention over a SparseIndex (specs/sparse_attention.md §11): the int8 path of
// sage8_attention.cpp (same quantizers, same delta slices) with the kernels' sparse mode; this
// file holds only what the index adds (its kernel arguments and its fallback view).
#include "sage8_sparse.h"

#include "context_impl.h"

namespace sparq::attention_detail {

fallback::Sage8SparseIndex sage8_sparse_fallback_index(const SparseIndex& x) {
  auto i32 = [](const Tensor& t) {
    return t.defined() && t.numel() ? reinterpret_cast<const std::int32_t*>(detail::host_data(t))
                                    : nullptr;
  };
  fallback::Sage8SparseIndex f;
  f.tcount = i32(x.tile_count);
  f.tstart = i32(x.tile_start);
  f.ccount = i32(x.col_count);
  f.cidx = i32(x.col_index);
  f.qpos = i32(x.qpos);
  f.kpos = i32(x.kpos);
  f.hi_rows = x.Hi;
  f.max_tiles = x.max_tiles;
  f.max_cols = x.max_cols;
  f.sink = x.sink_tokens;
  f.window = x.window_tokens;
  f.share = x.sharing == IndexSharing::kv_group;
  return f;
}

void set_sage8_sparse_args(cl::Kernel& kernel, unsigned first, const SparseIndex& x,
                           const cl::Buffer& dummy) {
  auto buf = [&](const Tensor& t) -> const cl::Buffer& {
    return t.defined() && t.numel() ? t.storage()->buffer : dummy;
  };
  unsigned i = first;
  for (const Tensor* t :
       {&x.tile_count, &x.tile_start, &x.col_count, &x.col_index, &x.qpos, &x.kpos})
    kernel.setArg(i++, buf(*t));
  for (int a : {x.qpos.defined() ? 1 : 0, x.Hi, x.sharing == IndexSharing::kv_group ? 1 : 0,
                x.max_tiles, x.max_cols, x.sink_tokens, x.window_tokens})
    kernel.setArg(i++, static_cast<cl_int>(a));
}

}  // namespace sparq::attention_detail
