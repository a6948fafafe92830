// The quantized plans' workspace (quant_workspace.h). The layout lists the pipelines'
// temporaries in the order they ask for them (sage8_attention.cpp, nvfp4/fp4_pipeline.cpp,
// quant/quant_ops.cpp, quant_decode.cpp); a request the layout lacks is still served (from the
// scratch's own tensors) and counted, which the plan tests check is 0.
#include "quant_workspace.h"

#include <algorithm>
#include <mutex>

#include "attention_access.h"
#include "head_dim_pad.h"
#include "host/src/nvfp4/nvfp4_common.h"
#include "op_plan.h"
#include "quant_decode.h"
#include "sage8_attention.h"

namespace sparq::plan_detail {

namespace {

using quant_detail::ScratchLayout;

// Bound of one delta slice (kDeltaSliceBytes of sage8_attention.cpp, kDeltaChunkBytes of
// fp4_pipeline.cpp): the pipelines smooth a few query blocks at a time; the slices of one run
// share a region (each slice's writes follow the previous slice's kernel on the in-order queue).
constexpr std::uint64_t kDeltaSliceBytes = std::uint64_t{256} << 20;

std::int64_t cdiv(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

struct Dims {
  std::int64_t b, hq, hkv, lq, lk, d;  // d: the kernel head dim
};

void int8_regions(ScratchLayout& l, const Dims& x, const AttentionOptions& o,
                  std::uint64_t max_alloc) {
  const QSmooth qs = o.quant.q_smooth;
  const std::int64_t qrows = qs == QSmooth::per_block128 ? 128 : x.lq;
  if (o.quant.k_smooth) l.add(DType::f32, {x.b, x.hkv, 1, x.d});
  if (qs != QSmooth::off) l.add(DType::f32, {x.b, x.hq, cdiv(x.lq, std::min(qrows, x.lq)), x.d});
  const std::int64_t lk64 = cdiv(x.lk, 64) * 64;
  l.add(DType::i8, {x.b, x.hq, x.lq, x.d});
  l.add(DType::f32, {x.b, x.hq, cdiv(x.lq, 128)});
  l.add(DType::i8, {x.b, x.hkv, x.lk, x.d});
  l.add(DType::f32, {x.b, x.hkv, cdiv(x.lk, 64)});
  l.add(DType::i8, {x.b, x.hkv, x.d, lk64});
  l.add(DType::f32, {x.b, x.hkv, x.d, lk64 / 16});
  if (qs == QSmooth::per_head) l.add(DType::f32, {x.b, x.hq, 1, x.lk});
  if (qs != QSmooth::per_block128) return;
  const std::int64_t nblk_q = cdiv(x.lq, 128);
  const std::uint64_t per_block = static_cast<std::uint64_t>(x.b * x.hq * x.lk) * 4;
  auto step = static_cast<std::int64_t>(
      std::max<std::uint64_t>(1, kDeltaSliceBytes / std::max<std::uint64_t>(per_block, 1)));
  if (max_alloc)
    step = std::min<std::int64_t>(
        step, std::max<std::int64_t>(1, static_cast<std::int64_t>(max_alloc / per_block)));
  std::size_t first = ScratchLayout::npos;
  for (std::int64_t b0 = 0; b0 < nblk_q; b0 += step)
    first = l.add_at(first, DType::f32, {x.b, x.hq, std::min(step, nblk_q - b0), x.lk});
}

void nvfp4_regions(ScratchLayout& l, const Dims& x, const AttentionOptions& o) {
  const QSmooth qs = o.quant.q_smooth;
  const std::int64_t qrows = qs == QSmooth::off ? 0 : (qs == QSmooth::per_head ? x.lq : 128);
  if (o.quant.k_smooth) l.add(DType::f32, {x.b, x.hkv, 1, x.d});
  if (qrows) l.add(DType::f32, {x.b, x.hq, cdiv(x.lq, std::min(qrows, x.lq)), x.d});
  const std::int64_t lk64 = cdiv(x.lk, 64) * 64;
  l.add(DType::u8, {x.b, x.hq, x.lq, x.d / 2});
  l.add(DType::u8, {x.b, x.hq, x.lq, x.d / 16});
  l.add(DType::u8, {x.b, x.hkv, x.lk, x.d / 2});
  l.add(DType::u8, {x.b, x.hkv, x.lk, x.d / 16});
  l.add(DType::u8, {x.b, x.hkv, x.d, lk64 / 2});
  l.add(DType::u8, {x.b, x.hkv, x.d, lk64 / 16});
  if (!qrows) return;
  const std::uint64_t per_block = static_cast<std::uint64_t>(x.b * x.hq * x.lk) * 4;
  const auto chunk =
      static_cast<std::int64_t>(std::max<std::uint64_t>(1, kDeltaSliceBytes / per_block));
  std::size_t first = ScratchLayout::npos;
  for (std::int64_t blk0 = 0; blk0 * qrows < x.lq; blk0 += chunk)
    first = l.add_at(first, DType::f32,
                     {x.b, x.hq, std::min(chunk, (x.lq - 1) / qrows + 1 - blk0), x.lk});
}

}  // namespace

ScratchLayout workspace_layout(const detail::ContextImpl& ctx, const TensorDesc& q,
                               const TensorDesc& k, const TensorDesc& v,
                               const AttentionOptions& options, bool sparse) {
  ScratchLayout l;
  l.align = workspace_align(ctx);
  Dims x{q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3]};
  if (const std::int64_t kd = attention_detail::kernel_head_dim(x.d); kd != x.d) {
    l.add(q.dtype, {x.b, x.hq, x.lq, kd});
    l.add(k.dtype, {x.b, x.hkv, x.lk, kd});
    l.add(v.dtype, {x.b, x.hkv, x.lk, kd});
    l.add(DType::f32, {x.b, x.hq, x.lq, kd});
    x.d = kd;
  }
  if (options.precision == Precision::fp32) return l;
  if (options.precision == Precision::int8)
    int8_regions(l, x, options, attention_detail::max_alloc(ctx));
  else
    nvfp4_regions(l, x, options);
  // Short query blocks may run the split decode kernels (quant_decode.h): their chunk states.
  if (!sparse && x.lq <= attention_detail::kQuantDecodeMaxRows)
    attention_detail::quant_decode_layout(l, x.b * x.hq * x.lq, x.lk, x.d,
                                          attention_detail::max_alloc(ctx));
  return l;
}

Tensor run_quantized(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                     const AttentionOptions& options, const SparseIndex* index, Tensor out,
                     quant_detail::Scratch& scratch) {
  using namespace attention_detail;
  const auto pipeline = [&](const Tensor& tq, const Tensor& tk, const Tensor& tv,
                            std::int64_t scale_dim, const Tensor& into) {
    if (options.precision == Precision::int8)
      return sage8_attention(ctx, tq, tk, tv, options, index, scale_dim, into, &scratch).out;
    return nvfp4_detail::attention_nvfp4(ctx, tq, tk, tv, options, 0, -1, index, scale_dim, into,
                                         &scratch);
  };
  const std::int64_t d = q.dim(3), kd = kernel_head_dim(d);
  if (kd == d) return pipeline(q, k, v, 0, out);
  // The one-shot ops' zero-padding (head_dim_pad.h), its copies in the workspace.
  const auto padded = [&](const Tensor& t) {
    return pad_head_dim(ctx, t, kd,
                        scratch.get(ctx, t.dtype(), {t.dim(0), t.dim(1), t.dim(2), kd}));
  };
  const Tensor pq = padded(q), pk = padded(k), pv = padded(v);
  const Tensor po = scratch.get(ctx, DType::f32, {q.dim(0), q.dim(1), q.dim(2), kd});
  pipeline(pq, pk, pv, d, po);
  return unpad_head_dim(ctx, po, d, std::move(out));
}

void PlanWorkspace::set_layout(quant_detail::ScratchLayout layout) {
  scratch_.set_layout(std::move(layout));
}

quant_detail::Scratch& PlanWorkspace::bind(const char* op, const Tensor& given,
                                           const std::shared_ptr<detail::ContextImpl>& owner) {
  auto& impl = *owner;
  const std::uint64_t n = bytes();
  if (n > 0) {
    if (given.defined()) check_workspace(op, given, n, scratch_.layout().align, impl);
    if (impl.device) {
      if (!given.defined() && !own_.defined())
        own_ = attention_detail::new_tensor(impl, owner, DType::u8, {static_cast<std::int64_t>(n)});
      scratch_.bind(given.defined() ? given : own_);
    }
  }
  scratch_.restart();
  return scratch_;
}

}  // namespace sparq::plan_detail
