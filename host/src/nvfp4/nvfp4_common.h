// Helpers shared by the NVFP4 op files: argument checks naming the op and the argument, tensor
// allocation, and the packed attention plan both executors read.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "context_impl.h"
#include "errors.h"
#include "fallback_cpu/nvfp4/nvfp4_fallback.h"
#include "nvfp4_kernels.h"
#include "opencl.hpp.h"
#include "sparq/nvfp4.h"
#include "sparq/sparse.h"

namespace sparq::quant_detail {
class Scratch;  // host/src/quant/quant_ops.h
}

namespace sparq::nvfp4_detail {

template <class... Args>
void require(const char* op, bool ok, fmt::format_string<Args...> f, Args&&... args) {
  if (!ok) rt::fail(ErrorCode::invalid_argument, op, f, std::forward<Args>(args)...);
}

// A whole contiguous tensor (offset 0) of dtype dt and the given shape, owned by ctx.
inline void check_whole(const char* op, const char* arg, const Tensor& t,
                        const detail::ContextImpl& impl, DType dt,
                        const std::vector<std::int64_t>& shape) {
  detail::check_tensor_owner(op, arg, t, impl);
  if (t.dtype() != dt || t.shape() != shape || !t.is_contiguous() || t.offset() != 0)
    rt::fail(ErrorCode::shape_mismatch, op, "{} is {}; expected a whole contiguous {}[{}]", arg,
             t.desc().describe(), dtype_name(dt), fmt::join(shape, ", "));
}

inline Tensor new_tensor(Context& ctx, DType t, std::vector<std::int64_t> shape) {
  const std::uint64_t max_alloc = ctx.impl()->device ? ctx.impl()->info.max_alloc_bytes : 0;
  const std::int64_t n = detail::checked_numel("tensor", shape);
  const std::uint64_t bytes = static_cast<std::uint64_t>(n) * dtype_size(t);
  if (max_alloc && bytes > max_alloc)
    rt::fail(ErrorCode::too_large, "nvfp4", "a {}[{}] tensor needs {} bytes; the device allows {}",
             dtype_name(t), fmt::join(shape, ", "), bytes, max_alloc);
  return detail::make_tensor(*ctx.impl(), ctx.impl(), TensorDesc{t, std::move(shape), {}, 0});
}

// scratch's tensor (a plan's reused temporaries) or a new one.
Tensor scratch_or_new(Context& ctx, quant_detail::Scratch* scratch, DType t,
                      std::vector<std::int64_t> shape);

inline const cl::Buffer& buffer(const Tensor& t) {
  return t.storage()->buffer;
}
template <class T>
const T* host_ptr(const Tensor& t) {
  return reinterpret_cast<const T*>(detail::host_data(t));
}
template <class T>
T* host_mut(const Tensor& t) {
  return reinterpret_cast<T*>(detail::host_data_mut(t));
}

inline std::int64_t round_up(std::int64_t x, std::int64_t m) {
  return (x + m - 1) / m * m;
}

// Quantizers on fp32 [B, H, L, D] contiguous x (already validated). mean: fp32 [B*H, nblk, D]
// subtracted from row i's block i / mean_rows before quantization (smoothing), or undefined.
// scratch (a plan's): where the packed tensors come from (null: new tensors).
Fp4Packed quantize_rows(Context& ctx, const Tensor& x, const Tensor& mean, int mean_rows,
                        quant_detail::Scratch* scratch = nullptr);
Fp4PackedT quantize_tokens(Context& ctx, const Tensor& x, quant_detail::Scratch* scratch = nullptr);

// A validated packed attention call.
struct Fp4Plan {
  const char* op = "fp4_attention";
  int batch = 0, hq = 0, hkv = 0, lq = 0, lk = 0, lk64 = 0, d = 0;
  bool causal = false;
  float c = 0.0f;
  Fp4Packed q, k;
  Fp4PackedT v;
  // delta: fp32 [B, Hq, delta_nblk, Lk] holding the bias rows of query blocks
  // [delta_blk0, delta_blk0 + delta_nblk) (blocks of delta_rows rows), or undefined.
  Tensor delta;
  int delta_rows = 128, delta_blk0 = 0, delta_nblk = 0;
  int row_begin = 0, row_end = 0;  // query rows computed by this run (row_begin % 64 == 0)
  // A validated SparseIndex for this call (fp4_attention_sparse), or null: dense.
  const SparseIndex* index = nullptr;
};

// The checks of fp4_attention_packed (call with the context locked) and its dense plan.
Fp4Plan plan_fp4_packed(const char* op, Context& ctx, const Fp4Packed& q, const Fp4Packed& k,
                        const Fp4PackedT& v, const Tensor* delta, const AttentionOptions& options);

// Runs a plan on the device (path: the integer-dot implementation; default by device quirks)
// or on the fallback, writing rows [row_begin, row_end) of out (fp32 [B, Hq, Lq, D]).
// own: a kernel object of own_fp4_kernel to use instead of the context's.
void run_fp4_attention(Context& ctx, const Fp4Plan& p, const Tensor& out,
                       const Fp4DotPath* path = nullptr, cl::Kernel* own = nullptr);
cl::Kernel own_fp4_kernel(const detail::ContextImpl& impl, int head_dim);

// fp4_decode.cpp: fp4_decode.cl (+ the chunk merge) over all rows of a dense plan with Lq <= 127
// and one delta block (device only; the same bits as run_fp4_attention). The largest Lq that
// run_fp4_attention sends there: 127, or SPARQ_TUNE_FP4="decode=0..127" (0: never).
void run_fp4_decode(Context& ctx, const Fp4Plan& p, const Tensor& out);
int fp4_decode_route_rows();

// SPARQ_TUNE_FP4 (comma-separated items): decode=0..127 (above), exp=0|1, div=0|1, pcode=0|1,
// bias=0|1, sflag=0|1, fold=0|1, ld32=0|1, lut=0|1 (the speed forms of fp4_attention.cl,
// nvfp4_kernels.h; the same bits either way).
struct Fp4Tuning {
  int decode_rows;
  int forms;
};
Fp4Tuning fp4_tuning();

// The checks of fp4_attention_packed (ownership, dtypes, shapes, options) and its plan.
Fp4Plan check_fp4_packed(const char* op, const detail::ContextImpl& impl, const Fp4Packed& q,
                         const Fp4Packed& k, const Fp4PackedT& v, const Tensor* delta,
                         const AttentionOptions& options);

// attention() with precision nvfp4 (fp4_pipeline.cpp): validates, smooths, quantizes, attends.
// Only query rows [row_begin, row_end) (row_end -1: Lq) are computed; the others of the
// returned tensor are unspecified (the bench validates row subsets with this).
// index: attend over a SparseIndex already validated against the call (fp4_sparse.cpp).
// D < 128 other than 64 runs zero-padded (host/src/attention/head_dim_pad.h); scale_dim (0 = D):
// the head dim of the default softmax scale (the real D of a padded call).
// out (undefined: allocated) receives the result, f32 [B, Hq, Lq, D] contiguous; scratch (a
// plan's): where the means, packed Q/K/V and delta slices come from (null: new tensors).
Tensor attention_nvfp4(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, int row_begin = 0, int row_end = -1,
                       const SparseIndex* index = nullptr, std::int64_t scale_dim = 0,
                       Tensor out = {}, quant_detail::Scratch* scratch = nullptr);

// Every check of attention_nvfp4 on descriptors only (supports_attention runs exactly this).
void validate_nvfp4(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                    const TensorDesc& v, const AttentionOptions& options);

// fp4_sparse.cpp: the sparse kernel's extra arguments (from argument `first` on; dummy stands
// in for absent tensors) and the fallback's view of the index (host tensors).
void set_sparse_args(const char* op, cl::Kernel& k, unsigned first, const SparseIndex& x,
                     const cl::Buffer& dummy);
fallback::nvfp4::Fp4SparseSteps sparse_steps(const SparseIndex& x);

// The dot path the device of ctx uses by default: mma on NVIDIA with inline PTX and sm_80+.
Fp4DotPath default_dot_path(const detail::ContextImpl& impl);

}  // namespace sparq::nvfp4_detail
