// Tensor -> AttentionPlan::Access helpers and output allocation shared by the op files.
#pragma once
#include <memory>

#include "attention_plan.h"
#include "context_impl.h"

namespace sparq::attention_detail {

// [B, H, L, D] (or [B, H, D] with L = 1): seq = stride 0, head = stride 1, row = stride 2.
inline Access access_bhld(const Tensor& t) {
  const auto& s = t.strides();
  return {t.dtype(), t.offset(), s[0], t.rank() == 4 ? s[2] : 0, s[1]};
}
// Packed [T, H, D]: the row is the packed index.
inline Access access_thd(const Tensor& t) {
  const auto& s = t.strides();
  return {t.dtype(), t.offset(), 0, s[0], s[1]};
}

inline std::uint64_t max_alloc(const ContextImpl& ctx) {
  return ctx.device ? ctx.info.max_alloc_bytes : 0;
}

inline Tensor new_tensor(ContextImpl& ctx, const std::shared_ptr<ContextImpl>& owner, DType t,
                         std::vector<std::int64_t> shape) {
  return detail::make_tensor(ctx, owner, TensorDesc{t, std::move(shape), {}, 0});
}

}  // namespace sparq::attention_detail
