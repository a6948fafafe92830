// Helpers shared by the dynamic index builders (vertical-slash, XAttention): Q/K geometry, the
// executors' views of Q/K, allocation of an index, kernel arguments.
#pragma once
#include <cmath>
#include <cstdint>

#include "fallback_cpu/sparse/builders_fallback.h"
#include "sparse_builders.h"

namespace sparq::sparse_detail {

// The GQA geometry of a validated build_index call: G = Hq / Hkv, gi = query heads per index
// head (G with kv_group sharing, else 1).
struct BuilderGeometry {
  int G = 1, gi = 1;
};
inline BuilderGeometry builder_geometry(const BuildArgs& a) {
  BuilderGeometry g;
  g.G = a.Hq / a.Hkv;
  g.gi = a.sharing == IndexSharing::kv_group ? g.G : 1;
  return g;
}

// c = fp32(sm_scale * log2 e) with sm_scale = 1/sqrt(D), formed in double, rounded once (§1).
inline float scale_log2e(int d) {
  return static_cast<float>((1.0 / std::sqrt(static_cast<double>(d))) * 1.4426950408889634);
}

inline fallback::sparse::QKView qk_view(const Tensor& t) {
  fallback::sparse::QKView v;
  v.p = detail::host_data(t);
  v.dtype = static_cast<int>(t.dtype());
  v.sb = t.strides()[0];
  v.sh = t.strides()[1];
  v.sl = t.strides()[2];
  return v;
}

// Kernel arguments of a Q/K tensor: buffer, offset, strides of b, h, l, dtype code.
inline void set_qk_args(cl::Kernel& kn, cl_uint& i, const Tensor& t) {
  kn.setArg(i++, t.storage()->buffer);
  kn.setArg(i++, static_cast<cl_long>(t.offset()));
  kn.setArg(i++, static_cast<cl_long>(t.strides()[0]));
  kn.setArg(i++, static_cast<cl_long>(t.strides()[1]));
  kn.setArg(i++, static_cast<cl_long>(t.strides()[2]));
  kn.setArg(i++, static_cast<cl_int>(t.dtype()));
}

inline fallback::sparse::BuilderIndexOut index_out(const SparseIndex& x) {
  fallback::sparse::BuilderIndexOut o;
  o.tile_count = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.tile_count));
  o.tile_start = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.tile_start));
  o.col_count = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.col_count));
  o.col_index = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.col_index));
  o.max_tiles = x.max_tiles;
  o.max_cols = x.max_cols;
  return o;
}

// tile_start, max_tiles, tile_count, col_index, max_cols, col_count (a zero-size tensor still
// has a buffer: OpenCL allocations are at least one byte).
inline void set_index_args(cl::Kernel& kn, cl_uint& i, const SparseIndex& x) {
  kn.setArg(i++, x.tile_start.storage()->buffer);
  kn.setArg(i++, static_cast<cl_int>(x.max_tiles));
  kn.setArg(i++, x.tile_count.storage()->buffer);
  kn.setArg(i++, x.col_index.storage()->buffer);
  kn.setArg(i++, static_cast<cl_int>(x.max_cols));
  kn.setArg(i++, x.col_count.storage()->buffer);
}

// Vertical-slash budgets after ratio and MInference's clamps (spec §5.2).
struct VsBudgets {
  int V = 0, S = 0;
};
VsBudgets vs_budgets(const VerticalSlash& p, std::int64_t lk);

// The vertical-slash probe on the device (§5.2 steps 1-4 without selection): vertical scores
// vsc and slash scores slc, each [B * Hi][Lk] floats (vertical_slash.cpp; also the grid builder's
// step 1).
void vs_probe_device(rt::DeviceRuntime& dev, const Tensor& q, const Tensor& k, const BuildArgs& a,
                     int forced_cols, int forced_diags, const cl::Buffer& vsc,
                     const cl::Buffer& slc);

}  // namespace sparq::sparse_detail
