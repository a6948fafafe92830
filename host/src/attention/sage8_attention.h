// Precision::int8 attention behind sparq::attention() (sage8_attention.cpp).
#pragma once
#include "sparq/attention.h"
#include "sparq/support.h"

namespace sparq {
struct SparseIndex;
struct Sage8Packed;
namespace detail {
struct ContextImpl;
}
}  // namespace sparq

namespace sparq::attention_detail {

// With index (validated against the call by the caller): the sparse mode of the same kernels
// (host/src/attention/sage8_sparse.cpp); the quantizers and delta slices are the same. A head
// dim the kernels lack (D < 128, not 64) runs zero-padded (head_dim_pad.h); scale_dim (0 = D):
// the head dim of the default softmax scale (the real D of a padded call).
AttentionResult sage8_attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOptions& options, const SparseIndex* index = nullptr,
                                std::int64_t scale_dim = 0);
// The checks of sage8_attention_packed (owners, shapes, dtypes, options; call with the context
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
