// attention(ctx, q, k, v, {.precision = Precision::nvfp4}): fp32 Q/K/V in, fp32 out. Stages
// (specs/fp4_attention.md §2.4-§4): K mean and Q block means (quant/smooth.cl), Q - qm and
// K - km quantized to NVFP4 rows, V to NVFP4 token groups, then per chunk of query blocks the
// bias rows delta (quant/smooth.cl) and fp4_attention.cl over those rows. Chunking bounds the
// delta workspace and changes no bit (rows are independent).
#include <algorithm>
#include <mutex>

#include "fallback_cpu/nvfp4/nvfp4_fallback.h"
#include "host/src/attention/attention_validate.h"
#include "host/src/attention/head_dim_pad.h"
#include "host/src/quant/quant_ops.h"
#include "nvfp4_common.h"

namespace sparq::nvfp4_detail {

namespace {

// Bias rows per chunk: at most this many bytes of delta at once.
constexpr std::uint64_t kDeltaChunkBytes = std::uint64_t{256} << 20;

bool contiguous(const TensorDesc& t) {
  if (t.strides.empty()) return true;
  std::int64_t expect = 1;
  for (std::size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] != 1 && t.strides[i] != expect) return false;
    expect *= t.shape[i];
  }
  return true;
}

void check_qkv(const char* op, const char* arg, const TensorDesc& t) {
  if (t.dtype != DType::f32 || !contiguous(t))
    rt::fail(ErrorCode::unsupported, op,
             "{} is {}; precision nvfp4 takes contiguous f32 [B, H, L, D] tensors", arg,
             t.describe());
}

attention_detail::AttentionDims validate(const char* op, const detail::ContextImpl& impl,
                                         const TensorDesc& q, const TensorDesc& k,
                                         const TensorDesc& v, const AttentionOptions& options) {
  AttentionOptions fp32 = options;
  fp32.precision = Precision::fp32;
  const attention_detail::AttentionDims d = attention_detail::validate_dense(
      op, q, k, v, fp32, impl.device ? impl.info.max_alloc_bytes : 0);
  if (q.shape.size() != 4)
    rt::fail(ErrorCode::unsupported, op, "Q is {}; precision nvfp4 takes [B, Hq, Lq, D]",
             q.describe());
  check_qkv(op, "Q", q);
  check_qkv(op, "K", k);
  check_qkv(op, "V", v);
  if (attention_detail::kernel_head_dim(d.d) == 0)
    rt::fail(ErrorCode::unsupported, op,
             "head_dim is {}; precision nvfp4 supports D = 1 to 128 (64 and 128 natively, others "
             "by exact zero-padding)",
             d.d);
  require(op, !options.return_lse, "return_lse is not available with precision nvfp4");
  require(op, options.out_dtype == DType::f32, "precision nvfp4 writes f32 output (out_dtype {})",
          dtype_name(options.out_dtype));
  const QSmooth qs = options.quant.q_smooth;
  require(op, qs == QSmooth::off || qs == QSmooth::per_head || qs == QSmooth::per_block128,
          "options.quant.q_smooth is not a known QSmooth");
  return d;
}

}  // namespace

Tensor attention_nvfp4(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, int row_begin, int row_end,
                       const SparseIndex* index, std::int64_t scale_dim, Tensor out,
                       quant_detail::Scratch* scratch) {
  constexpr const char* op = "attention(nvfp4)";
  auto& impl = *ctx.impl();
  detail::check_tensor_owner(op, "Q", q, impl);
  detail::check_tensor_owner(op, "K", k, impl);
  detail::check_tensor_owner(op, "V", v, impl);
  const attention_detail::AttentionDims d =
      validate(op, impl, q.desc(), k.desc(), v.desc(), options);
  if (const std::int64_t kd = attention_detail::kernel_head_dim(d.d); kd != d.d) {
    // exact zero-padding (host/src/attention/head_dim_pad.h: the 16-groups of the real columns
    // keep their E4M3 scales, an all-zero pad group has scale 0 and codes 0)
    using attention_detail::pad_head_dim;
    const Tensor padded = attention_nvfp4(ctx, pad_head_dim(ctx, q, kd), pad_head_dim(ctx, k, kd),
                                          pad_head_dim(ctx, v, kd), options, row_begin, row_end,
                                          index, d.d, {}, scratch);
    return attention_detail::unpad_head_dim(ctx, padded, d.d, out);
  }
  const QSmooth qs = options.quant.q_smooth;
  const int Lq = static_cast<int>(d.lq), Lk = static_cast<int>(d.lk);
  if (row_end < 0) row_end = Lq;

  Fp4Plan p;
  p.op = op;
  p.batch = static_cast<int>(d.batch);
  p.hq = static_cast<int>(d.hq);
  p.hkv = static_cast<int>(d.hkv);
  p.lq = Lq;
  p.lk = Lk;
  p.lk64 = static_cast<int>(round_up(Lk, 64));
  p.d = static_cast<int>(d.d);
  p.causal = options.causal;
  p.c = attention_detail::scale_constant(op, options.scale, scale_dim ? scale_dim : d.d);
  p.index = index;
  const int qrows = qs == QSmooth::off ? 0 : (qs == QSmooth::per_head ? Lq : 128);
  const Tensor km =
      options.quant.k_smooth ? quant_detail::block_mean(ctx, k, Lk, scratch) : Tensor();
  const Tensor qm = qrows ? quant_detail::block_mean(ctx, q, qrows, scratch) : Tensor();
  p.q = quantize_rows(ctx, q, qm, qrows, scratch);
  p.k = quantize_rows(ctx, k, km, km.defined() ? Lk : 0, scratch);
  p.v = quantize_tokens(ctx, v, scratch);
  if (!out.defined()) out = new_tensor(ctx, DType::f32, {d.batch, d.hq, d.lq, d.d});
  if (!qrows) {
    p.row_begin = row_begin;
    p.row_end = row_end;
    run_fp4_attention(ctx, p, out);
    return out;
  }
  p.delta_rows = qrows;
  const std::uint64_t per_block = static_cast<std::uint64_t>(d.batch * d.hq) * Lk * 4;
  const int chunk = static_cast<int>(std::max<std::uint64_t>(1, kDeltaChunkBytes / per_block));
  for (int blk0 = row_begin / qrows; blk0 * qrows < row_end; blk0 += chunk) {
    const int nblk = std::min(chunk, (row_end - 1) / qrows + 1 - blk0);
    p.delta = quant_detail::smooth_delta(ctx, qm, blk0, nblk, k, km, scratch);
    p.delta_blk0 = blk0;
    p.delta_nblk = nblk;
    p.row_begin = std::max(row_begin, blk0 * qrows);
    p.row_end = std::min(row_end, (blk0 + nblk) * qrows);
    run_fp4_attention(ctx, p, out);
  }
  return out;
}

void validate_nvfp4(const Context& ctx, const TensorDesc& q, const TensorDesc& k,
                    const TensorDesc& v, const AttentionOptions& options) {
  validate("attention(nvfp4)", *ctx.impl(), q, k, v, options);
}

}  // namespace sparq::nvfp4_detail
