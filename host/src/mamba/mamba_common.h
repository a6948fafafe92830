// Helpers shared by the Mamba op files: argument checks that throw sparq::Error naming the op and
// the argument, and the two executors' views of a tensor.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "context_impl.h"
#include "errors.h"
#include "fallback_cpu/mamba/mamba_fallback.h"
#include "opencl.hpp.h"
#include "sparq/mamba.h"

namespace sparq::mamba::detail_mamba {

template <class... Args>
void require(const char* op, bool ok, fmt::format_string<Args...> f, Args&&... args) {
  if (!ok) rt::fail(ErrorCode::invalid_argument, op, f, std::forward<Args>(args)...);
}

inline bool is_float_dtype(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

// A float tensor of the op: owned by ctx, fp32/fp16/bf16 (or fp32 only), of the given shape,
// innermost dimension contiguous (outer strides free).
inline void check_float(const char* op, const char* arg, const Tensor& t,
                        const detail::ContextImpl& ctx, const std::vector<std::int64_t>& shape,
                        bool f32_only = false) {
  detail::check_tensor_owner(op, arg, t, ctx);
  if (f32_only ? t.dtype() != DType::f32 : !is_float_dtype(t.dtype()))
    rt::fail(ErrorCode::shape_mismatch, op, "{} has dtype {}; expected {}", arg,
             dtype_name(t.dtype()), f32_only ? "f32" : "f32, f16 or bf16");
  if (t.shape() != shape)
    rt::fail(ErrorCode::shape_mismatch, op, "{} has shape [{}]; expected [{}]", arg,
             fmt::join(t.shape(), ", "), fmt::join(shape, ", "));
  if (t.rank() > 0 && t.shape().back() > 1 && t.strides().back() != 1)
    rt::fail(ErrorCode::shape_mismatch, op, "{} must have a contiguous last dimension, got {}", arg,
             t.desc().describe());
  if (f32_only && !t.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "{} must be contiguous, got {}", arg,
             t.desc().describe());
}

inline std::int64_t stride(const Tensor& t, int i) {
  return t.strides().at(static_cast<std::size_t>(i));
}

// dtype code of the kernels and the fallback (0 f32, 1 f16, 2 bf16).
inline int dtype_code(const Tensor& t) {
  return t.defined() ? static_cast<int>(t.dtype()) : 0;
}

// The fallback's view of a tensor (null when absent), with up to three outer strides.
inline fallback::mamba::View host_view(const Tensor& t, std::int64_t s0 = 0, std::int64_t s1 = 0,
                                       std::int64_t s2 = 0) {
  fallback::mamba::View v;
  if (!t.defined()) return v;
  v.p = detail::host_data(t);
  v.dtype = dtype_code(t);
  v.s0 = s0;
  v.s1 = s1;
  v.s2 = s2;
  return v;
}

inline cl_long4 geo(std::int64_t off, std::int64_t s0, std::int64_t s1 = 0, std::int64_t s2 = 0) {
  cl_long4 g;
  g.s[0] = off;
  g.s[1] = s0;
  g.s[2] = s1;
  g.s[3] = s2;
  return g;
}

// Sets a buffer argument, or a null pointer for an absent tensor (the kernel never reads it).
inline void set_buffer(cl::Kernel& k, cl_uint index, const Tensor& t) {
  if (t.defined())
    k.setArg(index, t.storage()->buffer);
  else
    k.setArg(index, sizeof(cl_mem), nullptr);
}

// Downloads and checks cu_seqlens (caller indices are checked before a kernel reads them).
inline int check_cu_seqlens(const char* op, const Tensor& cu, const detail::ContextImpl& impl,
                            std::int64_t batch, std::int64_t L) {
  detail::check_tensor_owner(op, "cu_seqlens", cu, impl);
  if (cu.dtype() != DType::i32 || cu.rank() != 1 || cu.dim(0) < 2 || !cu.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op,
             "cu_seqlens is {}; expected contiguous i32[S + 1], S >= 1", cu.desc().describe());
  require(op, batch == 1, "cu_seqlens packs sequences along L and needs batch 1, got {}", batch);
  require(op, cu.dim(0) - 1 <= INT32_MAX, "cu_seqlens has too many sequences");
  const auto v = cu.download<std::int32_t>();
  require(op, v.front() == 0, "cu_seqlens[0] is {}; expected 0", v.front());
  for (std::size_t i = 1; i < v.size(); ++i)
    require(op, v[i] >= v[i - 1], "cu_seqlens decreases at {} ({} after {})", i, v[i], v[i - 1]);
  require(op, v.back() == L, "cu_seqlens ends at {}; expected L = {}", v.back(), L);
  return static_cast<int>(v.size() - 1);
}

inline Tensor new_tensor(const Context& ctx, DType t, std::vector<std::int64_t> shape) {
  return detail::make_tensor(*ctx.impl(), ctx.impl(), TensorDesc{t, std::move(shape), {}, 0});
}

// ---- QuantizedRows (outlier_quant.cpp, selective_scan_q) ----

inline int fmt_code(OutlierFormat f) {
  return f == OutlierFormat::F32 ? 0 : (f == OutlierFormat::F16 ? 1 : 2);
}
inline DType val_dtype(OutlierFormat f) {
  return f == OutlierFormat::F32 ? DType::f32 : (f == OutlierFormat::F16 ? DType::f16 : DType::i8);
}

inline void check_params(const char* op, const OutlierQuantParams& p, std::int64_t C) {
  require(op, p.bits == InlierBits::Int4 || p.bits == InlierBits::Int8,
          "params.bits is not a known InlierBits");
  require(op,
          p.outlier_format == OutlierFormat::F32 || p.outlier_format == OutlierFormat::F16 ||
              p.outlier_format == OutlierFormat::Int8,
          "params.outlier_format is not a known OutlierFormat");
  require(op, std::isfinite(p.k_sigma) && p.k_sigma >= 0.0f,
          "params.k_sigma is {}; expected finite and >= 0", p.k_sigma);
  require(op, p.window >= 1, "params.window is {}; expected >= 1", p.window);
  const std::int64_t kmax = C < 256 ? C : 256;
  require(op, p.max_outliers >= 0 && p.max_outliers <= kmax,
          "params.max_outliers is {}; expected 0 <= K <= min(C, 256) = {}", p.max_outliers, kmax);
}

// A contiguous tensor of the given dtype and shape (a QuantizedRows field).
inline void check_field(const char* op, const char* arg, const Tensor& t,
                        const detail::ContextImpl& impl, DType dt,
                        const std::vector<std::int64_t>& shape) {
  detail::check_tensor_owner(op, arg, t, impl);
  if (t.dtype() != dt || t.shape() != shape || !t.is_contiguous() || t.offset() != 0)
    rt::fail(ErrorCode::shape_mismatch, op, "{} is {}; expected a whole contiguous {}[{}]", arg,
             t.desc().describe(), dtype_name(dt), fmt::join(shape, ", "));
}

// Checks every field of q against rows [batch, L, C] (dtype, shape, contiguity) and the outlier
// lists (count in 0..K, indices in 0..C-1; strictly ascending when `ascending`) before a kernel
// reads or writes through them. Downloads counts and indices (small side lists).
inline void check_qrows(const char* op, const char* arg, const QuantizedRows& q,
                        const detail::ContextImpl& impl, std::int64_t batch, std::int64_t L,
                        bool ascending) {
  const std::int64_t C = q.C;
  require(op, C >= 1 && C <= INT32_MAX, "{}.C is {}; expected >= 1", arg, C);
  check_params(op, q.params, C);
  const auto name = [&](const char* f) { return fmt::format("{}.{}", arg, f); };
  const std::int64_t K = q.params.max_outliers;
  const bool bits8 = q.params.bits == InlierBits::Int8;
  check_field(op, name("scales").c_str(), q.scales, impl, DType::f32, {batch, L});
  check_field(op, name("codes").c_str(), q.codes, impl, bits8 ? DType::i8 : DType::u8,
              {batch, L, bits8 ? C : (C + 1) / 2});
  check_field(op, name("outlier_count").c_str(), q.outlier_count, impl, DType::i32, {batch, L});
  check_field(op, name("outlier_idx").c_str(), q.outlier_idx, impl, DType::i32, {batch, L, K});
  check_field(op, name("outlier_val").c_str(), q.outlier_val, impl,
              val_dtype(q.params.outlier_format), {batch, L, K});
  if (q.params.outlier_format == OutlierFormat::Int8)
    check_field(op, name("outlier_scale").c_str(), q.outlier_scale, impl, DType::f32, {batch, L});
  const auto cnt = q.outlier_count.download<std::int32_t>();
  const auto idx = K ? q.outlier_idx.download<std::int32_t>() : std::vector<std::int32_t>();
  for (std::size_t r = 0; r < cnt.size(); ++r) {
    require(op, cnt[r] >= 0 && cnt[r] <= K, "{}.outlier_count[{}] is {}; expected 0..{}", arg, r,
            cnt[r], K);
    std::int32_t prev = -1;
    for (std::int32_t s = 0; s < cnt[r]; ++s) {
      const std::int32_t j = idx[r * static_cast<std::size_t>(K) + static_cast<std::size_t>(s)];
      require(op, j >= 0 && j < C, "{}.outlier_idx of row {} holds {}; expected 0..{}", arg, r, j,
              C - 1);
      require(op, !ascending || j > prev,
              "{}.outlier_idx of row {} is not strictly ascending ({} after {})", arg, r, j, prev);
      prev = j;
    }
  }
}

}  // namespace sparq::mamba::detail_mamba
