// sparq::check_finite — the opt-in finiteness check of specs/mamba_scan.md §2.2 as a helper:
// sparq's ops never reject NaN/inf (non-finite values propagate, ARCHITECTURE §2); a caller that
// wants an error instead checks the inputs first.
#pragma once
#include "sparq/context.h"
#include "sparq/export.h"
#include "sparq/tensor.h"

namespace sparq {

// Throws sparq::Error(invalid_argument) naming `name` and the first row-major index of a NaN or
// ±inf element of t; returns normally when every element is finite. t: f32, f16 or bf16, rank
// 0..4, any strides (views such as one half of mamba's xz). One pass over t on the Context's
// executor (a device kernel or the fallback); waits for the result.
SPARQ_API void check_finite(Context& ctx, const Tensor& t, const char* name);

}  // namespace sparq
