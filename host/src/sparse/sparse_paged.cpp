// sparq::attention_paged over a SparseIndex: the paged KV cache's checks (as attention_paged's),
// the index against the call, then the sparse prefill kernel in paged mode
// (sparse_prefill_launch.cpp). Same bits as the sparse call over the same K/V contiguous.
#include <mutex>

#include "host/src/attention/attention_access.h"
#include "host/src/attention/attention_hooks.h"
#include "host/src/attention/attention_validate.h"
#include "host/src/attention/paged_kv.h"
#include "sparse_common.h"
#include "sparse_prefill_launch.h"

namespace sparq {

using namespace attention_detail;
using namespace sparse_detail;

AttentionResult attention_paged(Context& ctx, const Tensor& q, const PagedKV& kv,
                                const SparseIndex& index, const AttentionOptions& options) {
  constexpr const char* op = "attention_paged (sparse)";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  detail::check_tensor_owner(op, "Q", q, impl);
  detail::check_tensor_owner(op, "kv.k_pages", kv.k_pages, impl);
  detail::check_tensor_owner(op, "kv.v_pages", kv.v_pages, impl);
  detail::check_tensor_owner(op, "kv.page_table", kv.page_table, impl);
  detail::check_tensor_owner(op, "kv.seq_lens", kv.seq_lens, impl);
  check_float_tensor(op, "Q", q.desc(), 4, "[B, Hq, Lq, D]");
  check_page_tensors(op, kv);
  const bool nhd = kv.layout == PageLayout::nhd;
  AttentionDims d;
  d.batch = q.dim(0);
  d.hq = q.dim(1);
  d.lq = q.dim(2);
  d.d = q.dim(3);
  d.hkv = kv.k_pages.dim(nhd ? 2 : 1);
  const std::int64_t slots = kv.k_pages.dim(nhd ? 1 : 2);
  if (kv.page_size <= 0 || kv.page_size != slots)
    rt::fail(ErrorCode::shape_mismatch, op,
             "kv.page_size is {} but kv.k_pages ({}) has {} slots per page", kv.page_size,
             page_layout_text(kv.layout), slots);
  if (page_head_dim(kv.k_pages) != d.d)
    rt::fail(ErrorCode::shape_mismatch, op, "kv.k_pages has head dim {}, Q has {}; they must match",
             page_head_dim(kv.k_pages), d.d);
  check_heads(op, d.hq, d.hkv);
  if (d.d != 64 && d.d != 128)
    rt::fail(ErrorCode::unsupported, op, "head dim D = {}; the sparse kernel supports 64, 128",
             d.d);
  check_length(op, "Lq", d.lq);
  if (options.out_dtype != DType::f32)
    rt::fail(ErrorCode::unsupported, op, "out_dtype {}; the sparse kernel writes f32",
             dtype_name(options.out_dtype));
  check_masks_precision(op, options);
  check_fp32_precision(op, options);
  const float c = scale_constant(op, options.scale, d.d);
  check_index_tensor(op, "kv.page_table", kv.page_table.desc(), 2, "[B, max_pages_per_seq]");
  check_index_tensor(op, "kv.seq_lens", kv.seq_lens.desc(), 1, "[B]");
  if (kv.page_table.dim(0) != d.batch || kv.seq_lens.dim(0) != d.batch)
    rt::fail(ErrorCode::shape_mismatch, op,
             "kv.page_table has {} rows and kv.seq_lens {} entries; Q has batch {}",
             kv.page_table.dim(0), kv.seq_lens.dim(0), d.batch);
  if (kv.page_table.strides()[1] != 1)
    rt::fail(ErrorCode::shape_mismatch, op,
             "kv.page_table must be contiguous in its last dim: innermost stride is {}",
             kv.page_table.strides()[1]);
  const std::vector<std::int32_t> lens = download_index(kv.seq_lens);
  for (std::int64_t b = 0; b < d.batch; ++b)
    require(op, lens[b] == index.Lk,
            "kv.seq_lens[{}] = {} but the index was built for Lk = {}; every sequence must hold "
            "the index's keys",
            b, lens[b], index.Lk);
  d.lk = index.Lk;
  require(op, d.lq <= d.lk, "Lq = {} > Lk = {}; sparse prefill needs Lq <= Lk", d.lq, d.lk);
  check_alloc(op, "output O", DType::f32, q.shape(), max_alloc(impl));
  SparseKv s;
  s.table = download_index(kv.page_table);
  s.max_pages = kv.page_table.dim(1);
  check_page_table(op, s.table, s.max_pages, std::vector<std::int64_t>(lens.begin(), lens.end()),
                   kv.page_size, kv.k_pages.dim(0));
  check_index_for_call(op, index, d, options, impl);
  const HookPlan hooks = plan_hooks(op, ctx, options, d.batch, d.hq, d.lk, false, false);
  s.k = kv.k_pages;
  s.v = kv.v_pages;
  s.k_at = page_access(kv.k_pages, nhd);
  s.v_at = page_access(kv.v_pages, nhd);
  if (is_quantized(kv.k_pages.dtype())) {  // int8 or NVFP4 pages
    s.k_scales = kv.k_scales;
    s.v_scales = kv.v_scales;
    s.ks_at = scale_access(kv.k_scales, nhd);
    s.vs_at = scale_access(kv.v_scales, nhd);
  }
  s.page_table = kv.page_table;
  s.page_size = kv.page_size;
  return launch_sparse_prefill(ctx, op, q, s, index, d, options, c, hooks);
}

}  // namespace sparq
