// Validation shared by the attention ops. Every failure throws sparq::Error whose message names
// the op, the argument and what was expected vs what came, e.g.
//   "attention: K has 8 heads, Q has 30; Q heads must be a multiple of K heads (GQA)".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sparq/attention.h"
#include "sparq/context.h"
#include "sparq/error.h"

namespace sparq::attention_detail {

inline constexpr int kMaxHeadDim = 256;
// Lengths, row counts and positions are int32 in the kernels; the margin keeps "start of the
// next tile / chunk" arithmetic below INT32_MAX.
inline constexpr std::int64_t kMaxLength = (std::int64_t{1} << 31) - 8192;

// Q/K/V dims of a dense or paged call, after validation.
struct AttentionDims {
  std::int64_t batch = 0, hq = 0, hkv = 0, lq = 0, lk = 0, d = 0;
};

// A float storage tensor of `rank` dims: dtype f32/f16/bf16, every dim > 0, innermost stride 1.
void check_float_tensor(const char* op, const char* arg, const TensorDesc& t, int rank,
                        const char* layout);
// An int32 index tensor of `rank` dims (dims may not be 0 unless allow_empty).
void check_index_tensor(const char* op, const char* arg, const TensorDesc& t, int rank,
                        const char* layout);
void check_heads(const char* op, std::int64_t hq, std::int64_t hkv);
void check_head_dim(const char* op, const char* arg, std::int64_t d);
void check_length(const char* op, const char* what, std::int64_t n);
void check_out_dtype(const char* op, DType t);

// c = fp32(scale * log2(e)), formed in double (scale 0 = 1/sqrt(d)); scale must be finite > 0.
float scale_constant(const char* op, float scale, std::int64_t d);

// Bytes of a new contiguous tensor; sparq::Error(too_large) naming `what` when over the
// device's max allocation (max_alloc 0 = no limit: the fallback).
std::uint64_t check_alloc(const char* op, const char* what, DType t,
                          const std::vector<std::int64_t>& shape, std::uint64_t max_alloc);

// Ops without quantized paths (yet) refuse options.precision other than fp32 (unsupported).
void check_fp32_precision(const char* op, const AttentionOptions& options);

// Every check of attention() on descriptors only (supports_attention runs exactly this).
AttentionDims validate_dense(const char* op, const TensorDesc& q, const TensorDesc& k,
                             const TensorDesc& v, const AttentionOptions& options,
                             std::uint64_t max_alloc);

// Host copy of an int32 tensor's elements (row-major order of its view).
std::vector<std::int32_t> download_index(const Tensor& t);

// The same message the op would throw, as a Support.
template <class F>
Support support_of(F&& check) {
  try {
    check();
    return {};
  } catch (const Error& e) {
    return {false, e.what()};
  }
}

}  // namespace sparq::attention_detail
