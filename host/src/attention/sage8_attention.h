// Precision::int8 attention behind sparq::attention() (sage8_attention.cpp), and its stages as
// sparq::Plan runs them (quant_plans.cpp).
#pragma once
#include <cstdint>

#include "device_runtime.h"
#include "opencl.hpp.h"
#include "sparq/attention.h"
#include "sparq/int8_attention.h"
#include "sparq/support.h"

namespace sparq {
struct SparseIndex;
struct Sage8Packed;
namespace detail {
struct ContextImpl;
}
}  // namespace sparq
namespace sparq::quant_detail {
class Scratch;
}

namespace sparq::attention_detail {

// With index (validated against the call by the caller): the sparse mode of the same kernels
// (host/src/attention/sage8_sparse.cpp); the quantizers and delta slices are the same. A head
// dim the kernels lack (D < 128, not 64) runs zero-padded (head_dim_pad.h); scale_dim (0 = D):
// the head dim of the default softmax scale (the real D of a padded call).
// out (undefined: allocated) receives the f32 [B, Hq, Lq, D] result; scratch (a plan's): where
// the quantized Q/K/V, means and delta slices come from (null: new tensors).
AttentionResult sage8_attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOptions& options, const SparseIndex* index = nullptr,
                                std::int64_t scale_dim = 0, Tensor out = {},
                                quant_detail::Scratch* scratch = nullptr);
struct Sage8Dims {
  std::int64_t batch, hq, hkv, lq, lk, d;
};

// Everything attention() checks for int8 precision, on descriptors only (pad: D < 128 other than
// 64 is taken, by zero-padding; else D must be 64 or 128).
Sage8Dims validate_sage8(const char* op, const TensorDesc& q, const TensorDesc& k,
                         const TensorDesc& v, const AttentionOptions& options,
                         std::uint64_t max_alloc, bool pad = false);

// Output rows [row0, row1) (row0 a multiple of 128) with delta blocks [blk0, blk0 + nblk) of
// delta_rows rows each (delta undefined: no Q smoothing).
struct Sage8Slice {
  std::int64_t row0, row1;
  Tensor delta;
  std::int64_t delta_rows = 128, blk0 = 0, nblk = 1;
};

// A sage8_attention_packed call after its checks (ownership, dtypes, shapes, options).
struct Sage8PackedCall {
  Sage8Dims d;
  Sage8Slice slice;
  float c;
};
Sage8PackedCall check_sage8_packed(const char* op, const Sage8Packed& p,
                                   const AttentionOptions& options,
                                   const detail::ContextImpl& impl);

// The attention kernel (or fallback) over a slice of packed inputs, into out. own: a kernel
// object of own_sage8_kernel (dense mode) to use instead of the context's. A dense slice of all
// Lq <= 127 rows goes to run_sage8_decode (the same bits) unless SPARQ_TUNE_SAGE8 says decode=0.
void run_sage8_slice(Context& ctx, const Sage8Packed& p, const Sage8Dims& d, const Sage8Slice& s,
                     bool causal, float c, const Tensor& out, const SparseIndex* index = nullptr,
                     cl::Kernel* own = nullptr);
cl::Kernel own_sage8_kernel(rt::DeviceRuntime& dev, std::int64_t head_dim);
// sage8_decode.cl (or its fallback) over all rows (Lq <= 127; delta [B, Hq, 1, Lk] or undefined)
// into out (f32 [B, Hq, Lq, D], contiguous); no checks (call with the context locked). op: the
// name in errors (the split workspace's allocation).
void run_sage8_decode(Context& ctx, const Sage8Packed& p, const Sage8Dims& d, const Tensor& delta,
                      bool causal, float c, const Tensor& out,
                      const char* op = "sage8_decode_packed");
// The checks of sage8_attention_packed as the decode entry uses them (call with the context
// locked). delta_nblk: delta's block count (0: no delta).
struct Sage8PackedShape {
  std::int64_t batch, hq, hkv, lq, lk, d;
  float c;
  std::int64_t delta_nblk;
};
Sage8PackedShape validate_sage8_packed(const char* op, const detail::ContextImpl& impl,
                                       const Sage8Packed& p, const AttentionOptions& options);

Support supports_sage8(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                       const TensorDesc& v, const AttentionOptions& options);

}  // namespace sparq::attention_detail
