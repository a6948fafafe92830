// sparq::permute_rows / unpermute_rows / permuted_positions and the MMInference permutation
// generators (specs/sparse_attention.md §7.1-7.2). The permutation is downloaded and checked to
// be a bijection of 0..L-1 per (batch, head group) before any kernel reads it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <numeric>

#include "host/src/attention/attention_access.h"
#include "host/src/attention/attention_validate.h"
#include "context_impl.h"
#include "errors.h"
#include "fallback_cpu/sparse/permute_fallback.h"
#include "permute_plan.h"
#include "quest_kernels.h"
#include "sparq/mminference.h"

namespace sparq {

using permute_detail::PermutePlan;

namespace {

// Validates perm against (B, H, L): int32 [B, L] or [B, Hg, L] (H % Hg == 0), a bijection per
// row. Returns the host copy.
std::vector<std::int32_t> check_perm(const char* op, const detail::ContextImpl& impl,
                                     const Tensor& perm, std::int64_t batch, std::int64_t heads,
                                     std::int64_t len) {
  detail::check_tensor_owner(op, "perm", perm, impl);
  if (perm.dtype() != DType::i32 || (perm.rank() != 2 && perm.rank() != 3) || !perm.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op,
             "perm is {}; expected contiguous i32 [B, L] or [B, Hg, L]", perm.desc().describe());
  const std::int64_t groups = perm.rank() == 3 ? perm.dim(1) : 1;
  if (perm.dim(0) != batch || perm.dim(perm.rank() - 1) != len || groups < 1 || heads % groups != 0)
    rt::fail(ErrorCode::shape_mismatch, op,
             "perm has shape [{}]; expected [B = {}, L = {}] or [B, Hg, L] with {} heads a "
             "multiple of Hg",
             fmt::join(perm.shape(), ", "), batch, len, heads);
  auto v = attention_detail::download_index(perm);
  std::vector<std::int32_t> seen(static_cast<std::size_t>(len), -1);
  for (std::int64_t r = 0; r < batch * groups; ++r) {
    for (std::int64_t n = 0; n < len; ++n) {
      const std::int64_t pi = v[static_cast<std::size_t>(r * len + n)];
      if (pi < 0 || pi >= len)
        rt::fail(ErrorCode::invalid_argument, op, "perm[{}][{}][{}] = {} is out of range [0, {})",
                 r / groups, r % groups, n, pi, len);
      if (seen[static_cast<std::size_t>(pi)] == static_cast<std::int32_t>(r))
        rt::fail(ErrorCode::invalid_argument, op,
                 "perm[{}][{}] is not a bijection: {} appears twice (second at {})", r / groups,
                 r % groups, pi, n);
      seen[static_cast<std::size_t>(pi)] = static_cast<std::int32_t>(r);
    }
  }
  return v;
}

Tensor run_permute(Context& ctx, const char* op, const Tensor& x, const Tensor& perm,
                   bool inverse) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "X", x, impl);
  attention_detail::check_float_tensor(op, "X", x.desc(), 4, "[B, H, L, D]");
  attention_detail::check_length(op, "L", x.dim(2));
  check_perm(op, impl, perm, x.dim(0), x.dim(1), x.dim(2));
  PermutePlan p;
  p.src = x;
  p.perm = perm;
  p.batch = x.dim(0);
  p.heads = x.dim(1);
  p.len = x.dim(2);
  p.d = x.dim(3);
  p.s_b = x.strides()[0];
  p.s_h = x.strides()[1];
  p.s_l = x.strides()[2];
  const bool grouped = perm.rank() == 3;
  p.p_b = perm.strides()[0];
  p.p_g = grouped ? perm.strides()[1] : 0;
  p.heads_per_group = grouped ? p.heads / perm.dim(1) : p.heads;
  p.elem_bytes = static_cast<int>(dtype_size(x.dtype()));
  p.inverse = inverse;
  attention_detail::check_alloc(op, "output", x.dtype(), x.shape(),
                                attention_detail::max_alloc(impl));
  p.dst = attention_detail::new_tensor(impl, ctx.impl(), x.dtype(), x.shape());
  if (!impl.device) {
    fallback::permute_rows(p);
    return p.dst;
  }
  auto& dev = *impl.device;
  cl::Kernel k = dev.kernel(quest_detail::PermuteKernelConfig::source,
                            quest_detail::PermuteKernelConfig::kernel,
                            quest_detail::PermuteKernelConfig::defines());
  rt::set_kernel_args(op, k, p.src.storage()->buffer, cl_long(x.offset()), cl_long(p.s_b),
                      cl_long(p.s_h), cl_long(p.s_l), p.dst.storage()->buffer,
                      perm.storage()->buffer, cl_long(perm.offset()), cl_long(p.p_b),
                      cl_long(p.p_g), cl_int(p.heads), cl_int(p.heads_per_group), cl_int(p.len),
                      cl_int(p.d), cl_int(p.elem_bytes), cl_int(inverse));
  const std::int64_t local = 64;
  dev.launch(op, k, cl::NDRange((p.d + local - 1) / local * local, p.len, p.batch * p.heads),
             cl::NDRange(local, 1, 1));
  return p.dst;
}

}  // namespace

Tensor permute_rows(Context& ctx, const Tensor& x, const Tensor& perm) {
  return run_permute(ctx, "permute_rows", x, perm, false);
}

Tensor unpermute_rows(Context& ctx, const Tensor& x, const Tensor& perm) {
  return run_permute(ctx, "unpermute_rows", x, perm, true);
}

Tensor permuted_positions(Context& ctx, const Tensor& perm, std::int64_t offset) {
  constexpr const char* op = "permuted_positions";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  if (perm.defined() && perm.rank() >= 2)
    check_perm(op, impl, perm, perm.dim(0), perm.rank() == 3 ? perm.dim(1) : 1,
               perm.dim(perm.rank() - 1));
  else
    check_perm(op, impl, perm, 0, 1, 0);  // throws with the shape message
  const std::int64_t len = perm.dim(perm.rank() - 1);
  if (offset < 0 || offset + len > attention_detail::kMaxLength)
    rt::fail(ErrorCode::invalid_argument, op, "offset {} + L {} is outside the int32 positions",
             offset, len);
  auto v = attention_detail::download_index(perm);
  for (auto& x : v) x = static_cast<std::int32_t>(x + offset);
  Tensor t = attention_detail::new_tensor(impl, ctx.impl(), DType::i32, perm.shape());
  if (impl.device)
    impl.device->write(t.storage()->buffer, 0, v.size() * 4, v.data(), op);
  else
    std::memcpy(detail::host_data_mut(t), v.data(), v.size() * 4);
  return t;
}

std::vector<std::int32_t> grid_permutation(std::int64_t length,
                                           const std::vector<VideoSegment>& segments) {
  constexpr const char* op = "grid_permutation";
  attention_detail::check_length(op, "length", length);
  if (length < 0) rt::fail(ErrorCode::invalid_argument, op, "length {} is negative", length);
  std::vector<std::int32_t> perm(static_cast<std::size_t>(length));
  std::iota(perm.begin(), perm.end(), 0);
  std::vector<VideoSegment> sorted = segments;
  std::sort(sorted.begin(), sorted.end(),
            [](const VideoSegment& a, const VideoSegment& b) { return a.start < b.start; });
  std::int64_t prev_end = 0;
  for (const auto& s : sorted) {
    if (s.start < prev_end || s.start > s.end || s.end > length || s.frame_tokens < 1)
      rt::fail(ErrorCode::invalid_argument, op,
               "segment [{}, {}) with {} tokens per frame: segments must be disjoint, inside [0, "
               "{}), frame_tokens >= 1",
               s.start, s.end, s.frame_tokens, length);
    prev_end = s.end;
    const std::int64_t n = s.end - s.start, f = s.frame_tokens;
    std::int64_t at = s.start;
    for (std::int64_t phi = 0; phi < std::min(f, n); ++phi)
      for (std::int64_t t = s.start + phi; t < s.end; t += f)
        perm[at++] = static_cast<std::int32_t>(t);
  }
  return perm;
}

std::vector<std::int32_t> modality_permutation(const std::vector<std::int32_t>& modality) {
  constexpr const char* op = "modality_permutation";
  attention_detail::check_length(op, "length", static_cast<std::int64_t>(modality.size()));
  for (std::size_t i = 0; i < modality.size(); ++i)
    if (modality[i] < 0)
      rt::fail(ErrorCode::invalid_argument, op, "modality[{}] = {}; ids are >= 0", i, modality[i]);
  std::vector<std::int32_t> perm(modality.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(),
                   [&](std::int32_t a, std::int32_t b) { return modality[a] < modality[b]; });
  return perm;
}

}  // namespace sparq
