// Precision::int8 attention behind sparq::attention() (sage8_attention.cpp).
#pragma once
#include "sparq/attention.h"
#include "sparq/support.h"

namespace sparq::attention_detail {

AttentionResult sage8_attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOptions& options);
Support supports_sage8(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                       const TensorDesc& v, const AttentionOptions& options);

}  // namespace sparq::attention_detail
