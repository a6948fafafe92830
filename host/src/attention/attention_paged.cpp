// sparq::attention_paged: decode (and small-Lq chunked decode) over a paged KV cache. The page
// table and sequence lengths are downloaded and validated on the host before any kernel runs.
// plan_paged (descriptors) and bind_paged_data (table contents) are shared with sparq::Plan.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "attention_access.h"
#include "attention_plan.h"
#include "attention_validate.h"
#include "errors.h"
#include "paged_kv.h"
#include "plan_builders.h"
#include "sparq/attention.h"

namespace sparq {

using namespace attention_detail;

namespace attention_detail {

AttentionPlan plan_paged(const char* op, Context& ctx, const TensorDesc& q_desc, const PagedKV& kv,
                         const AttentionOptions& options) {
  auto& impl = *ctx.impl();
  const Tensor q(nullptr, q_desc);  // the descriptor only
  detail::check_tensor_owner(op, "kv.k_pages", kv.k_pages, impl);
  detail::check_tensor_owner(op, "kv.v_pages", kv.v_pages, impl);
  detail::check_tensor_owner(op, "kv.page_table", kv.page_table, impl);
  detail::check_tensor_owner(op, "kv.seq_lens", kv.seq_lens, impl);
  const bool rank3 = q.rank() == 3;
  check_float_tensor(op, "Q", q.desc(), rank3 ? 3 : 4, rank3 ? "[B, Hq, D]" : "[B, Hq, Lq, D]");
  const char* layout = page_layout_text(kv.layout);
  check_page_tensors(op, kv);
  const bool nhd = kv.layout == PageLayout::nhd;
  const std::int64_t batch = q.dim(0), hq = q.dim(1), lq = rank3 ? 1 : q.dim(2);
  const std::int64_t d = q.dim(q.rank() - 1);
  const std::int64_t num_pages = kv.k_pages.dim(0);
  const std::int64_t slots = kv.k_pages.dim(nhd ? 1 : 2), hkv = kv.k_pages.dim(nhd ? 2 : 1);
  if (kv.page_size <= 0 || kv.page_size != slots)
    rt::fail(ErrorCode::shape_mismatch, op,
             "kv.page_size is {} but kv.k_pages ({}) has {} slots per page", kv.page_size, layout,
             slots);
  if (page_head_dim(kv.k_pages) != d)
    rt::fail(ErrorCode::shape_mismatch, op, "kv.k_pages has head dim {}, Q has {}; they must match",
             page_head_dim(kv.k_pages), d);
  check_heads(op, hq, hkv);
  check_head_dim(op, "Q", d);
  check_length(op, "Lq", lq);
  check_length(op, "B * Hq", batch * hq);
  check_out_dtype(op, options.out_dtype);
  check_fp32_precision(op, options);
  const float c = scale_constant(op, options.scale, d);
  check_index_tensor(op, "kv.page_table", kv.page_table.desc(), 2, "[B, max_pages_per_seq]");
  check_index_tensor(op, "kv.seq_lens", kv.seq_lens.desc(), 1, "[B]");
  if (kv.page_table.dim(0) != batch || kv.seq_lens.dim(0) != batch)
    rt::fail(ErrorCode::shape_mismatch, op,
             "kv.page_table has {} rows and kv.seq_lens {} entries; Q has batch {}",
             kv.page_table.dim(0), kv.seq_lens.dim(0), batch);
  if (kv.page_table.strides()[1] != 1)
    rt::fail(ErrorCode::shape_mismatch, op,
             "kv.page_table must be contiguous in its last dim: innermost stride is {}",
             kv.page_table.strides()[1]);
  std::vector<std::int64_t> out_shape = q.shape();
  check_alloc(op, "output O", options.out_dtype, out_shape, max_alloc(impl));

  AttentionPlan p;
  p.op = op;
  p.mode = KvMode::paged;
  p.batch = static_cast<int>(batch);
  p.page_size = kv.page_size;
  p.max_pages = kv.page_table.dim(1);
  p.num_pages = num_pages;
  p.seq_lens_t = kv.seq_lens;
  p.page_table_t = kv.page_table;
  p.hq = static_cast<int>(hq);
  p.hkv = static_cast<int>(hkv);
  p.head_dim = static_cast<int>(d);
  p.lq = lq;
  p.causal = options.causal;
  p.c = c;
  // The key mask's length is checked against the longest sequence in bind_paged_data.
  p.hooks = plan_hooks(op, ctx, options, batch, hq, 0, true, false);
  p.q = q;
  p.k = kv.k_pages;
  p.v = kv.v_pages;
  p.q_at = access_bhld(q);
  p.k_at = page_access(kv.k_pages, nhd);
  p.v_at = page_access(kv.v_pages, nhd);
  if (is_quantized(kv.k_pages.dtype())) {
    p.k_scales = kv.k_scales;
    p.v_scales = kv.v_scales;
    p.ks_at = scale_access(kv.k_scales, nhd);
    p.vs_at = scale_access(kv.v_scales, nhd);
  }
  p.out_dtype = options.out_dtype;
  p.out = Tensor(nullptr, TensorDesc{options.out_dtype, out_shape, {}, 0});
  p.out_at = access_bhld(p.out);
  if (options.return_lse) {
    out_shape.pop_back();
    p.lse = Tensor(nullptr, TensorDesc{DType::f32, out_shape, {}, 0});
    p.lse_at = {DType::f32, 0, hq * lq, 1, lq};
  }
  return p;
}

void bind_paged_data(AttentionPlan& p, const PagedKV& kv) {
  p.seq_lens_t = kv.seq_lens;
  p.page_table_t = kv.page_table;
  p.seq_lens = download_index(kv.seq_lens);
  p.page_table = download_index(kv.page_table);
  check_paged_tables(p);
}

void check_paged_tables(AttentionPlan& p) {
  check_page_table(p.op, p.page_table, p.max_pages,
                   std::vector<std::int64_t>(p.seq_lens.begin(), p.seq_lens.end()), p.page_size,
                   p.num_pages);
  p.lk = *std::max_element(p.seq_lens.begin(), p.seq_lens.end());
  const Tensor& mask = p.hooks.key_mask;
  if (mask.defined() && mask.dim(1) < p.lk)
    rt::fail(ErrorCode::shape_mismatch, p.op,
             "options.masks.key_padding is {}; expected u8[{}, >= {}] with the key dim "
             "contiguous (nonzero = key valid)",
             mask.desc().describe(), p.batch, p.lk);
}

}  // namespace attention_detail

AttentionResult attention_paged(Context& ctx, const Tensor& q, const PagedKV& kv,
                                const AttentionOptions& options) {
  constexpr const char* op = "attention_paged";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "Q", q, impl);
  AttentionPlan p = plan_paged(op, ctx, q.desc(), kv, options);
  bind_paged_data(p, kv);
  p.q = q;
  p.q_at = access_bhld(q);
  p.out = new_tensor(impl, ctx.impl(), options.out_dtype, p.out.shape());
  p.out_at = access_bhld(p.out);
  if (options.return_lse) p.lse = new_tensor(impl, ctx.impl(), DType::f32, p.lse.shape());
  run_attention(impl, p);
  return {p.out, p.lse};
}

}  // namespace sparq
