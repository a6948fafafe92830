// Validation shared by the attention ops (see attention_validate.h).
#include "attention_validate.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "attention_hooks.h"
#include "context_impl.h"
#include "errors.h"

namespace sparq::attention_detail {

namespace {

std::vector<std::int64_t> strides_of(const TensorDesc& t) {
  return t.strides.empty() ? detail::contiguous_strides(t.shape) : t.strides;
}

bool is_float_storage(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

void check_rank_and_dims(const char* op, const char* arg, const TensorDesc& t, int rank,
                         const char* layout, bool allow_zero) {
  if (static_cast<int>(t.shape.size()) != rank)
    rt::fail(ErrorCode::shape_mismatch, op, "{} must have {} dims {}, got {}", arg, rank, layout,
             t.describe());
  if (!t.strides.empty() && t.strides.size() != t.shape.size())
    rt::fail(ErrorCode::shape_mismatch, op, "{} has {} strides for {} dims ({})", arg,
             t.strides.size(), t.shape.size(), t.describe());
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] < 0 || (t.shape[i] == 0 && !allow_zero))
      rt::fail(ErrorCode::shape_mismatch, op, "{} {} has a {} dimension {} (every dim must be > 0)",
               arg, layout, t.shape[i] == 0 ? "zero-sized" : "negative", t.describe());
  }
  const auto s = strides_of(t);
  for (auto x : s)
    if (x < 0)
      rt::fail(ErrorCode::shape_mismatch, op, "{} has a negative stride ({})", arg, t.describe());
}

}  // namespace

void check_float_tensor(const char* op, const char* arg, const TensorDesc& t, int rank,
                        const char* layout) {
  if (!is_float_storage(t.dtype))
    rt::fail(ErrorCode::shape_mismatch, op, "{} has dtype {}; expected f32, f16 or bf16", arg,
             dtype_name(t.dtype));
  check_rank_and_dims(op, arg, t, rank, layout, false);
  if (strides_of(t).back() != 1)
    rt::fail(ErrorCode::shape_mismatch, op,
             "{} must be contiguous in its last dim (D): innermost stride is {} ({})", arg,
             strides_of(t).back(), t.describe());
}

void check_index_tensor(const char* op, const char* arg, const TensorDesc& t, int rank,
                        const char* layout) {
  if (t.dtype != DType::i32)
    rt::fail(ErrorCode::shape_mismatch, op, "{} has dtype {}; expected i32", arg,
             dtype_name(t.dtype));
  check_rank_and_dims(op, arg, t, rank, layout, false);
}

void check_heads(const char* op, std::int64_t hq, std::int64_t hkv) {
  if (hq % hkv != 0)
    rt::fail(ErrorCode::shape_mismatch, op,
             "K has {} heads, Q has {}; Q heads must be a multiple of K heads (GQA)", hkv, hq);
}

void check_head_dim(const char* op, const char* arg, std::int64_t d) {
  if (d > kMaxHeadDim)
    rt::fail(ErrorCode::unsupported, op, "{} has head dim D = {}; supported: 1 to {}", arg, d,
             kMaxHeadDim);
}

void check_length(const char* op, const char* what, std::int64_t n) {
  if (n > kMaxLength)
    rt::fail(ErrorCode::too_large, op, "{} = {} is over the supported maximum {} (int32 indices)",
             what, n, kMaxLength);
}

void check_out_dtype(const char* op, DType t) {
  if (!is_float_storage(t))
    rt::fail(ErrorCode::invalid_argument, op, "options.out_dtype is {}; expected f32, f16 or bf16",
             dtype_name(t));
}

float scale_constant(const char* op, float scale, std::int64_t d) {
  if (!std::isfinite(scale) || scale < 0.0f)
    rt::fail(ErrorCode::invalid_argument, op,
             "options.scale is {}; expected a finite value > 0 (or 0 for 1/sqrt(D))", scale);
  const double s = scale == 0.0f ? 1.0 / std::sqrt(static_cast<double>(d)) : double{scale};
  const double c = s * 1.4426950408889634;  // log2(e)
  const float cf = static_cast<float>(c);
  if (!std::isnormal(cf))
    rt::fail(ErrorCode::invalid_argument, op,
             "options.scale = {} gives scale*log2(e) = {}, not a finite normal fp32 value", scale,
             c);
  return cf;
}

std::uint64_t check_alloc(const char* op, const char* what, DType t,
                          const std::vector<std::int64_t>& shape, std::uint64_t max_alloc) {
  const std::int64_t n = detail::checked_numel(op, shape);
  const auto elem = static_cast<std::uint64_t>(dtype_size(t));
  if (static_cast<std::uint64_t>(n) > std::numeric_limits<std::uint64_t>::max() / elem)
    rt::fail(ErrorCode::too_large, op, "{} {}[{}] does not fit in memory", what, dtype_name(t),
             fmt::join(shape, ", "));
  const std::uint64_t bytes = static_cast<std::uint64_t>(n) * elem;
  if (max_alloc != 0 && bytes > max_alloc)
    rt::fail(ErrorCode::too_large, op,
             "{} {}[{}] needs {} bytes, over the device's largest allocation "
             "(CL_DEVICE_MAX_MEM_ALLOC_SIZE = {} bytes)",
             what, dtype_name(t), fmt::join(shape, ", "), bytes, max_alloc);
  return bytes;
}

void check_fp32_precision(const char* op, const AttentionOptions& options) {
  if (options.precision != Precision::fp32)
    rt::fail(ErrorCode::unsupported, op, "options.precision is {}; this op has only the fp32 path",
             options.precision == Precision::int8 ? "int8" : "nvfp4");
}

AttentionDims validate_dense(const char* op, const TensorDesc& q, const TensorDesc& k,
                             const TensorDesc& v, const AttentionOptions& options,
                             std::uint64_t max_alloc) {
  check_float_tensor(op, "Q", q, 4, "[B, Hq, Lq, D]");
  check_float_tensor(op, "K", k, 4, "[B, Hkv, Lk, D]");
  check_float_tensor(op, "V", v, 4, "[B, Hkv, Lk, D]");
  if (k.shape != v.shape)
    rt::fail(ErrorCode::shape_mismatch, op, "V has shape [{}], K has [{}]; they must match",
             fmt::join(v.shape, ", "), fmt::join(k.shape, ", "));
  AttentionDims d{q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3]};
  if (k.shape[0] != d.batch)
    rt::fail(ErrorCode::shape_mismatch, op, "K has batch {}, Q has {}; they must match", k.shape[0],
             d.batch);
  if (k.shape[3] != d.d)
    rt::fail(ErrorCode::shape_mismatch, op, "K has head dim {}, Q has {}; they must match",
             k.shape[3], d.d);
  check_heads(op, d.hq, d.hkv);
  check_head_dim(op, "Q", d.d);
  check_length(op, "Lq", d.lq);
  check_length(op, "Lk", d.lk);
  check_length(op, "B * Hq", d.batch * d.hq);
  check_out_dtype(op, options.out_dtype);
  check_fp32_precision(op, options);
  scale_constant(op, options.scale, d.d);
  validate_masks(op, options, d.batch, d.hq, d.lk, false, false);
  check_alloc(op, "output O", options.out_dtype, {d.batch, d.hq, d.lq, d.d}, max_alloc);
  if (options.out_dtype != DType::f32 && d.lk > 4096)  // fp32 state between key chunks
    check_alloc(op, "fp32 scratch", DType::f32, {d.batch, d.hq, d.lq, d.d}, max_alloc);
  return d;
}

std::vector<std::int32_t> download_index(const Tensor& t) {
  return t.download<std::int32_t>();
}

}  // namespace sparq::attention_detail
