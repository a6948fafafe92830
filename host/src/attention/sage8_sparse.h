// Precision::int8 attention over a SparseIndex: the sparse mode of kernels_cl/attention/sage8.cl
// and sage8_mma.cl (SAGE8_SPARSE=1, definition in kernels_cl/attention/sage8_sparse.h) and of the
// fallback, behind sparq::attention(ctx, q, k, v, index, {.precision = Precision::int8}).
#pragma once
#include "fallback_cpu/attention/sage8_fallback.h"
#include "opencl.hpp.h"
#include "sparq/sparse.h"

namespace sparq::attention_detail {

// The int8 path over an index already validated against the call (shapes, causal, lengths,
// sharing, invariants 1-8: sparse_attention.cpp) is sage8_attention(..., &index): quantizers and
// delta slices as dense int8.

// The index as the fallback executor takes it (host data of a fallback Context).
fallback::Sage8SparseIndex sage8_sparse_fallback_index(const SparseIndex& index);

// The kernel's SAGE8_SPARSE_ARGS from argument number `first`; `dummy` stands in for an empty or
// absent tensor (never read).
void set_sage8_sparse_args(cl::Kernel& kernel, unsigned first, const SparseIndex& index,
                           const cl::Buffer& dummy);

}  // namespace sparq::attention_detail
