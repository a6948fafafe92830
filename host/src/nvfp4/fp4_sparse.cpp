// attention(ctx, q, k, v, SparseIndex, {.precision = Precision::nvfp4}): the NVFP4 pipeline of
// fp4_pipeline.cpp (smoothing, quantization, bias rows) over the steps of a SparseIndex
// (kernels_cl/nvfp4/fp4_attention.cl with FP4_SPARSE 1, or its fallback; specs/fp4_attention.md
// §4.1, §4.6 and specs/sparse_attention.md §11). The index is validated against the call by
// sparse_attention.cpp before this runs; every index form works: per query head or kv_group
// sharing, identity or permuted (qpos/kpos) order, the exact A-shape token mask.
#include "fallback_cpu/nvfp4/nvfp4_fallback.h"
#include "nvfp4_common.h"

namespace sparq::nvfp4_detail {

void set_sparse_args(const char* op, cl::Kernel& k, unsigned first, const SparseIndex& x,
                     const cl::Buffer& dummy) {
  auto buf = [&](const Tensor& t) -> const cl::Buffer& {
    return t.defined() && t.numel() ? buffer(t) : dummy;
  };
  unsigned i = first;
  auto arg = [&](const auto& v) {
    int err = CL_SUCCESS;
    try {
      k.setArg(i, v);
    } catch (const cl::Error& e) {
      err = e.err();
    }
    if (err != CL_SUCCESS) rt::set_kernel_args_impl(op, k, i, err);
    ++i;
  };
  arg(buf(x.tile_count));
  arg(buf(x.tile_start));
  arg(buf(x.col_count));
  arg(buf(x.col_index));
  arg(buf(x.qpos));
  arg(buf(x.kpos));
  arg(static_cast<cl_int>(x.qpos.defined()));
  arg(static_cast<cl_int>(x.Hi));
  arg(static_cast<cl_int>(x.sharing == IndexSharing::kv_group));
  arg(static_cast<cl_int>(x.max_tiles));
  arg(static_cast<cl_int>(x.max_cols));
  arg(static_cast<cl_int>(x.sink_tokens));
  arg(static_cast<cl_int>(x.window_tokens));
}

fallback::nvfp4::Fp4SparseSteps sparse_steps(const SparseIndex& x) {
  auto i32 = [](const Tensor& t) {
    return t.defined() && t.numel() ? host_ptr<std::int32_t>(t) : nullptr;
  };
  fallback::nvfp4::Fp4SparseSteps s;
  s.tcount = i32(x.tile_count);
  s.tstart = i32(x.tile_start);
  s.ccount = i32(x.col_count);
  s.cidx = i32(x.col_index);
  s.qpos = i32(x.qpos);
  s.kpos = i32(x.kpos);
  s.hi_n = x.Hi;
  s.max_tiles = x.max_tiles;
  s.max_cols = x.max_cols;
  s.share = x.sharing == IndexSharing::kv_group;
  s.off = static_cast<int>(x.Lk - x.Lq);
  s.sink = x.sink_tokens;
  s.window = x.window_tokens;
  return s;
}

}  // namespace sparq::nvfp4_detail
