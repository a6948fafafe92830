// AttentionOptions::masks -> HookPlan (see attention_hooks.h).
#include "attention_hooks.h"

#include <cmath>
#include <limits>

#include "context_impl.h"
#include "errors.h"

namespace sparq::attention_detail {

namespace {

constexpr double kLog2e = 1.4426950408889634;

// fp32(x * log2 e), formed in double and rounded once; must stay finite.
float to_log2_units(const char* op, const char* what, double x) {
  const float y = static_cast<float>(x * kLog2e);
  if (!std::isfinite(y))
    rt::fail(ErrorCode::invalid_argument, op, "{} = {} times log2(e) overflows fp32", what, x);
  return y;
}

void check_head_tensor(const char* op, const char* arg, const Tensor& t, std::int64_t hq) {
  if (!t.defined()) return;
  if (t.dtype() != DType::f32 || t.rank() != 1 || t.dim(0) != hq)
    rt::fail(ErrorCode::shape_mismatch, op,
             "options.masks.{} is {}; expected f32[{}] (one per query head)", arg,
             t.desc().describe(), hq);
}

}  // namespace

const std::uint8_t* HookPlan::mask_row(int b) const {
  if (!key_mask.defined()) return nullptr;
  return reinterpret_cast<const std::uint8_t*>(key_mask.storage()->host.data()) + mask_off +
         b * mask_sb;
}

bool masks_requested(const AttentionMasks& m) {
  return m.window_left != -1 || m.window_right != -1 || m.softcap != 0.0f ||
         m.alibi_slopes.defined() || m.sinks.defined() || m.key_padding.defined();
}

void check_masks_precision(const char* op, const AttentionOptions& options) {
  if (options.precision != Precision::fp32 && masks_requested(options.masks))
    rt::fail(ErrorCode::unsupported, op,
             "options.masks (window, softcap, ALiBi, sinks, key padding) need precision fp32; "
             "options.precision is {}",
             options.precision == Precision::int8 ? "int8" : "nvfp4");
}

void validate_masks(const char* op, const AttentionOptions& options, std::int64_t batch,
                    std::int64_t hq, std::int64_t key_len, bool at_least, bool varlen) {
  const AttentionMasks& m = options.masks;
  if (!masks_requested(m)) return;
  check_masks_precision(op, options);
  if (m.window_left < -1 || m.window_right < -1)
    rt::fail(ErrorCode::invalid_argument, op,
             "options.masks.window_left = {}, window_right = {}; each must be >= 0, or -1 for "
             "unbounded",
             m.window_left, m.window_right);
  if (!std::isfinite(m.softcap) || m.softcap < 0.0f)
    rt::fail(ErrorCode::invalid_argument, op,
             "options.masks.softcap is {}; expected a finite value > 0 (or 0 for off)", m.softcap);
  if (m.softcap != 0.0f && !std::isnormal(static_cast<float>(double{m.softcap} * kLog2e)))
    rt::fail(ErrorCode::invalid_argument, op,
             "options.masks.softcap = {} gives softcap*log2(e) outside the normal fp32 range",
             m.softcap);
  check_head_tensor(op, "alibi_slopes", m.alibi_slopes, hq);
  check_head_tensor(op, "sinks", m.sinks, hq);
  if (m.key_padding.defined()) {
    const Tensor& t = m.key_padding;
    if (varlen)
      rt::fail(ErrorCode::unsupported, op,
               "options.masks.key_padding is not taken by attention_varlen: cu_seqlens_k already "
               "gives each sequence's keys");
    const bool len_ok = t.rank() == 2 && (at_least ? t.dim(1) >= key_len : t.dim(1) == key_len);
    if (t.dtype() != DType::u8 || t.rank() != 2 || t.dim(0) != batch || !len_ok ||
        t.strides()[1] != 1)
      rt::fail(ErrorCode::shape_mismatch, op,
               "options.masks.key_padding is {}; expected u8[{}, {}{}] with the key dim "
               "contiguous (nonzero = key valid)",
               t.desc().describe(), batch, at_least ? ">= " : "", key_len);
  }
}

HookPlan plan_hooks(const char* op, Context& ctx, const AttentionOptions& options,
                    std::int64_t batch, std::int64_t hq, std::int64_t key_len, bool at_least,
                    bool varlen) {
  validate_masks(op, options, batch, hq, key_len, at_least, varlen);
  HookPlan h;
  const AttentionMasks& m = options.masks;
  if (!masks_requested(m)) return h;
  auto& impl = *ctx.impl();
  h.on = true;
  h.hq = static_cast<int>(hq);
  h.wl = m.window_left;
  h.wr = m.window_right;
  h.cap2 = m.softcap == 0.0f ? 0.0f : static_cast<float>(double{m.softcap} * kLog2e);
  h.head.assign(static_cast<std::size_t>(2 * hq), 0.0f);
  for (std::int64_t i = 0; i < hq; ++i)
    h.head[static_cast<std::size_t>(hq + i)] = -std::numeric_limits<float>::infinity();
  if (m.alibi_slopes.defined()) {
    detail::check_tensor_owner(op, "options.masks.alibi_slopes", m.alibi_slopes, impl);
    const auto s = m.alibi_slopes.download<float>();
    for (std::int64_t i = 0; i < hq; ++i) {
      const float x = s[static_cast<std::size_t>(i)];
      if (!std::isfinite(x) || x < 0.0f)
        rt::fail(ErrorCode::invalid_argument, op,
                 "options.masks.alibi_slopes[{}] is {}; expected a finite value >= 0", i, x);
      h.head[static_cast<std::size_t>(i)] = to_log2_units(op, "alibi slope", x);
    }
  }
  if (m.sinks.defined()) {
    detail::check_tensor_owner(op, "options.masks.sinks", m.sinks, impl);
    const auto s = m.sinks.download<float>();
    for (std::int64_t i = 0; i < hq; ++i) {
      const float x = s[static_cast<std::size_t>(i)];
      if (!std::isfinite(x))
        rt::fail(ErrorCode::invalid_argument, op,
                 "options.masks.sinks[{}] is {}; expected a finite logit", i, x);
      h.head[static_cast<std::size_t>(hq + i)] = to_log2_units(op, "sink logit", x);
    }
  }
  if (m.key_padding.defined()) {
    detail::check_tensor_owner(op, "options.masks.key_padding", m.key_padding, impl);
    h.key_mask = m.key_padding;
    h.mask_off = m.key_padding.offset();
    h.mask_sb = m.key_padding.strides()[0];
  }
  h.head_t = ctx.upload(h.head, DType::f32, {2 * hq});
  return h;
}

unsigned set_hook_args(cl::Kernel& kernel, unsigned i, const HookPlan& h, const cl::Buffer& dummy) {
  kernel.setArg(i++, h.head_t.storage()->buffer);
  kernel.setArg(i++, h.key_mask.defined() ? h.key_mask.storage()->buffer : dummy);
  kernel.setArg(i++, static_cast<cl_long>(h.mask_off));
  kernel.setArg(i++, static_cast<cl_long>(h.mask_sb));
  kernel.setArg(i++, static_cast<cl_int>(h.key_mask.defined()));
  kernel.setArg(i++, static_cast<cl_int>(h.wl));
  kernel.setArg(i++, static_cast<cl_int>(h.wr));
  kernel.setArg(i++, static_cast<cl_float>(h.cap2));
  return i;
}

}  // namespace sparq::attention_detail
