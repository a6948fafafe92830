// Precision::int8 attention behind sparq::attention() (sage8_attention.cpp).
#pragma once
#include "sparq/attention.h"
#include "sparq/support.h"

namespace sparq {
struct SparseIndex;
}

namespace sparq::attention_detail {

// With index (validated against the call by the caller): the sparse mode of the same kernels
// (host/src/attention/sage8_sparse.cpp); the quantizers and delta slices are the same.
AttentionResult sage8_attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOptions& options,
                                const SparseIndex* index = nullptr);
Support supports_sage8(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                       const TensorDesc& v, const AttentionOptions& options);

}  // namespace sparq::attention_detail
