// sparq Quest decode ops: quest_init, quest_update_metadata, quest_select,
// sparse_attention_decode, decode. Each validates (shapes, page tables, lengths, budgets, a
// caller's selection) on the host before any kernel reads an index, builds a plan
// (quest_plan.h) and runs it on the device or the fallback (quest_launch.cpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "context_impl.h"
#include "errors.h"
#include "host/src/attention/attention_access.h"
#include "host/src/attention/attention_validate.h"
#include "host/src/attention/paged_kv.h"
#include "quest_kernels.h"
#include "quest_plan.h"

namespace sparq {

using namespace quest_detail;
using attention_detail::check_float_tensor;
using attention_detail::check_index_tensor;
using attention_detail::download_index;

namespace {

constexpr int kMinPage = 16;

Tensor new_tensor(detail::ContextImpl& impl, const Context& ctx, DType t,
                  std::vector<std::int64_t> shape) {
  return attention_detail::new_tensor(impl, ctx.impl(), t, std::move(shape));
}

void check_f32(const char* op, const char* arg, const Tensor& t) {
  if (t.dtype() != DType::f32)
    rt::fail(ErrorCode::unsupported, op, "{} has dtype {}; Quest decode reads f32 only", arg,
             dtype_name(t.dtype()));
}

void check_head_dim(const char* op, std::int64_t d) {
  if (d != 64 && d != 128)
    rt::fail(ErrorCode::unsupported, op, "head dim D = {}; supported: 64 or 128", d);
}

void check_page_size(const char* op, std::int64_t pg) {
  if (pg < kMinPage || pg > QuestKernelConfig::max_page_size)
    rt::fail(ErrorCode::unsupported, op, "page size {}; supported: {} to {}", pg, kMinPage,
             QuestKernelConfig::max_page_size);
}

void check_options(const char* op, const QuestOptions& o) {
  check_page_size(op, o.page_size);
  if (o.token_budget < 0)
    rt::fail(ErrorCode::invalid_argument, op, "token_budget = {}; expected >= 0", o.token_budget);
  for (int l : o.dense_layers)
    if (l < 0)
      rt::fail(ErrorCode::invalid_argument, op, "dense_layers holds {}; layers are >= 0", l);
}

void check_seq_lens_tensor(const char* op, const Tensor& t, std::int64_t batch) {
  check_index_tensor(op, "seq_lens", t.desc(), 1, "[B]");
  if (t.dim(0) != batch)
    rt::fail(ErrorCode::shape_mismatch, op, "seq_lens has {} entries; the batch is {}", t.dim(0),
             batch);
}

// A paged cache, validated (page table entries of every page in use in range). any_storage:
// the metadata ops, which read K in every page storage (f32/f16/bf16, int8, NVFP4) through
// attention/kv_pages.h; the others read f32 pages only.
QuestCache paged_cache(const char* op, detail::ContextImpl& impl, const PagedKV& kv,
                       bool any_storage = false) {
  detail::check_tensor_owner(op, "kv.k_pages", kv.k_pages, impl);
  detail::check_tensor_owner(op, "kv.v_pages", kv.v_pages, impl);
  detail::check_tensor_owner(op, "kv.page_table", kv.page_table, impl);
  detail::check_tensor_owner(op, "kv.seq_lens", kv.seq_lens, impl);
  const bool hnd = kv.layout == PageLayout::hnd;
  const char* layout =
      hnd ? "HND [num_pages, Hkv, page_size, D]" : "NHD [num_pages, page_size, Hkv, D]";
  QuestCache c;
  if (any_storage) {
    attention_detail::check_page_tensors(op, kv);
    for (auto [t, name] : {std::pair{&kv.k_scales, "kv.k_scales"}, {&kv.v_scales, "kv.v_scales"}})
      if (t->defined()) detail::check_tensor_owner(op, name, *t, impl);
    c.k_dt = static_cast<int>(kv.k_pages.dtype());
    if (kv.k_scales.defined()) {
      c.k_scales = kv.k_scales;
      const auto& s = kv.k_scales.strides();
      c.ks_at = {kv.k_scales.offset(), s[0], s[hnd ? 2 : 1], s[hnd ? 1 : 2]};
    }
  } else {
    check_float_tensor(op, "kv.k_pages", kv.k_pages.desc(), 4, layout);
    check_float_tensor(op, "kv.v_pages", kv.v_pages.desc(), 4, layout);
    check_f32(op, "kv.k_pages", kv.k_pages);
    check_f32(op, "kv.v_pages", kv.v_pages);
    if (kv.k_pages.shape() != kv.v_pages.shape())
      rt::fail(ErrorCode::shape_mismatch, op,
               "kv.v_pages has shape [{}], kv.k_pages [{}]; they must match",
               fmt::join(kv.v_pages.shape(), ", "), fmt::join(kv.k_pages.shape(), ", "));
  }
  c.paged = true;
  c.k = kv.k_pages;
  c.v = kv.v_pages;
  const std::int64_t slots = kv.k_pages.dim(hnd ? 2 : 1), hkv = kv.k_pages.dim(hnd ? 1 : 2);
  if (kv.page_size != slots)
    rt::fail(ErrorCode::shape_mismatch, op, "kv.page_size is {} but kv.k_pages ({}) has {} slots",
             kv.page_size, layout, slots);
  check_page_size(op, slots);
  const std::int64_t head_dim = attention_detail::page_head_dim(kv.k_pages);
  check_head_dim(op, head_dim);
  for (auto [t, a] : {std::pair{&kv.k_pages, &c.k_at}, std::pair{&kv.v_pages, &c.v_at}}) {
    const auto& s = t->strides();
    *a = {t->offset(), s[0], s[hnd ? 2 : 1], s[hnd ? 1 : 2]};
  }
  check_index_tensor(op, "kv.page_table", kv.page_table.desc(), 2, "[B, max_pages]");
  if (!kv.page_table.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "kv.page_table must be contiguous, got {}",
             kv.page_table.desc().describe());
  const std::int64_t batch = kv.page_table.dim(0);
  check_seq_lens_tensor(op, kv.seq_lens, batch);
  c.batch = static_cast<int>(batch);
  c.hkv = static_cast<int>(hkv);
  c.head_dim = static_cast<int>(head_dim);
  c.page_size = static_cast<int>(slots);
  c.max_pages = kv.page_table.dim(1);
  c.entries = kv.k_pages.dim(0);
  c.page_table_t = kv.page_table;
  c.seq_lens_t = kv.seq_lens;
  c.page_table = download_index(kv.page_table);
  c.seq_lens = download_index(kv.seq_lens);
  for (int b = 0; b < c.batch; ++b) {
    const std::int64_t len = c.seq_lens[b];
    if (len < 0) rt::fail(ErrorCode::invalid_argument, op, "seq_lens[{}] = {} is negative", b, len);
    if (c.n_pages(b) > c.max_pages)
      rt::fail(ErrorCode::invalid_argument, op,
               "seq_lens[{}] = {} needs {} pages of {} but page_table has {} per sequence", b, len,
               c.n_pages(b), c.page_size, c.max_pages);
    for (std::int64_t p = 0; p < c.n_pages(b); ++p) {
      const std::int64_t page = c.page_table[b * c.max_pages + p];
      if (page < 0 || page >= c.entries)
        rt::fail(ErrorCode::invalid_argument, op,
                 "page_table[{}][{}] = {} is out of range [0, {}) (kv.k_pages has {} pages)", b, p,
                 page, c.entries, c.entries);
    }
  }
  return c;
}

// A contiguous cache K/V [B, Hkv, Lk, D] (v may be undefined: metadata needs K only).
QuestCache contiguous_cache(const char* op, detail::ContextImpl& impl, const Context& ctx,
                            const Tensor& k, const Tensor& v, const Tensor& seq_lens,
                            int page_size) {
  detail::check_tensor_owner(op, "K", k, impl);
  check_float_tensor(op, "K", k.desc(), 4, "[B, Hkv, Lk, D]");
  check_f32(op, "K", k);
  if (v.defined()) {
    detail::check_tensor_owner(op, "V", v, impl);
    check_float_tensor(op, "V", v.desc(), 4, "[B, Hkv, Lk, D]");
    check_f32(op, "V", v);
    if (v.shape() != k.shape())
      rt::fail(ErrorCode::shape_mismatch, op, "V has shape [{}], K [{}]; they must match",
               fmt::join(v.shape(), ", "), fmt::join(k.shape(), ", "));
  }
  check_page_size(op, page_size);
  check_head_dim(op, k.dim(3));
  attention_detail::check_length(op, "Lk", k.dim(2));
  QuestCache c;
  c.paged = false;
  c.k = k;
  c.v = v;
  c.k_at = {k.offset(), k.strides()[0], k.strides()[2], k.strides()[1]};
  if (v.defined()) c.v_at = {v.offset(), v.strides()[0], v.strides()[2], v.strides()[1]};
  c.batch = static_cast<int>(k.dim(0));
  c.hkv = static_cast<int>(k.dim(1));
  c.head_dim = static_cast<int>(k.dim(3));
  c.page_size = page_size;
  const std::int64_t lk = k.dim(2);
  c.max_pages = (lk + page_size - 1) / page_size;
  c.entries = c.batch * c.max_pages;
  if (seq_lens.defined()) {
    detail::check_tensor_owner(op, "seq_lens", seq_lens, impl);
    check_seq_lens_tensor(op, seq_lens, c.batch);
    c.seq_lens_t = seq_lens;
    c.seq_lens = download_index(seq_lens);
    for (int b = 0; b < c.batch; ++b)
      if (c.seq_lens[b] < 0 || c.seq_lens[b] > lk)
        rt::fail(ErrorCode::invalid_argument, op, "seq_lens[{}] = {} is outside [0, Lk = {}]", b,
                 c.seq_lens[b], lk);
  } else {
    c.seq_lens.assign(static_cast<std::size_t>(c.batch), static_cast<std::int32_t>(lk));
    c.seq_lens_t = new_tensor(impl, ctx, DType::i32, {c.batch});
    if (impl.device)
      impl.device->write(c.seq_lens_t.storage()->buffer, 0, c.seq_lens.size() * 4,
                         c.seq_lens.data(), "seq_lens");
    else
      std::memcpy(detail::host_data_mut(c.seq_lens_t), c.seq_lens.data(), c.seq_lens.size() * 4);
  }
  return c;
}

void check_state(const char* op, detail::ContextImpl& impl, const QuestState& s,
                 const QuestCache& c) {
  check_options(op, s.options);
  if (s.options.page_size != c.page_size)
    rt::fail(ErrorCode::shape_mismatch, op,
             "the Quest state was built for pages of {} tokens; the cache has {}",
             s.options.page_size, c.page_size);
  const std::vector<std::int64_t> shape{c.entries, c.hkv, c.head_dim};
  for (auto [t, name] : {std::pair{&s.kmin, "state.kmin"}, std::pair{&s.kmax, "state.kmax"}}) {
    detail::check_tensor_owner(op, name, *t, impl);
    if (t->dtype() != DType::f32 || t->shape() != shape || !t->is_contiguous() || t->offset() != 0)
      rt::fail(ErrorCode::shape_mismatch, op, "{} is {}; expected contiguous f32[{}]", name,
               t->desc().describe(), fmt::join(shape, ", "));
  }
}

// Work list of the pages touched by tokens [prev[b], seq_lens[b]); one item per metadata entry.
MetadataPlan metadata_plan(const char* op, const QuestCache& c, const QuestState& s,
                           const std::vector<std::int32_t>* prev) {
  MetadataPlan p;
  p.cache = &c;
  p.kmin = s.kmin;
  p.kmax = s.kmax;
  std::map<std::int64_t, std::pair<int, std::int64_t>> seen;  // entry -> (b, p) first using it
  for (int b = 0; b < c.batch; ++b) {
    const std::int64_t len = c.seq_lens[b];
    const std::int64_t from_tok = prev ? (*prev)[b] : 0;
    if (from_tok < 0 || from_tok > len)
      rt::fail(ErrorCode::invalid_argument, op, "prev_lens[{}] = {} is outside [0, seq_lens = {}]",
               b, from_tok, len);
    for (std::int64_t pg = from_tok / c.page_size; pg < c.n_pages(b); ++pg) {
      const std::int64_t start = pg * c.page_size;
      if (start >= len) break;
      const MetaItem it{
          static_cast<std::int32_t>(c.meta_id(b, pg)), static_cast<std::int32_t>(c.row_x(b, pg)),
          static_cast<std::int32_t>(c.slot0(pg)),
          static_cast<std::int32_t>(std::max<std::int64_t>(from_tok - start, 0)),
          static_cast<std::int32_t>(std::min<std::int64_t>(c.page_size, len - start))};
      auto [where, fresh] = seen.emplace(it.meta, std::pair{b, pg});
      if (!fresh) {
        const auto& o = p.items[static_cast<std::size_t>(
            std::find_if(p.items.begin(), p.items.end(),
                         [&](const MetaItem& m) { return m.meta == it.meta; }) -
            p.items.begin())];
        if (o.from != it.from || o.valid != it.valid)
          rt::fail(ErrorCode::invalid_argument, op,
                   "page {} is used by sequence {} (page {}) and sequence {} (page {}) with "
                   "different token ranges; a shared page must hold the same tokens",
                   it.meta, where->second.first, where->second.second, b, pg);
        continue;
      }
      p.items.push_back(it);
    }
  }
  return p;
}

QuestState init_state(Context& ctx, const char* op, const QuestCache& c, const QuestOptions& o) {
  auto& impl = *ctx.impl();
  QuestState s;
  s.options = o;
  const std::vector<std::int64_t> shape{std::max<std::int64_t>(c.entries, 1), c.hkv, c.head_dim};
  attention_detail::check_alloc(op, "state.kmin", DType::f32, shape,
                                attention_detail::max_alloc(impl));
  s.kmin = new_tensor(impl, ctx, DType::f32, shape);
  s.kmax = new_tensor(impl, ctx, DType::f32, shape);
  if (impl.device) {  // entries never written stay defined (zero), so dumps are reproducible
    try {
      for (const Tensor* t : {&s.kmin, &s.kmax})
        impl.device->queue().enqueueFillBuffer(t->storage()->buffer, cl_float(0), 0,
                                               t->storage_bytes());
    } catch (const cl::Error& e) {
      rt::fail(ErrorCode::opencl_error, op, "clEnqueueFillBuffer failed ({})", e.err());
    }
  }
  if (c.entries == 0) return s;
  run_metadata(impl, metadata_plan(op, c, s, nullptr));
  return s;
}

// Q [B, Hq, D] or [B, Hq, 1, D], fp32, D contiguous; returns Hq.
int check_q(const char* op, detail::ContextImpl& impl, const Tensor& q, const QuestCache& c) {
  detail::check_tensor_owner(op, "Q", q, impl);
  const bool rank3 = q.rank() == 3;
  check_float_tensor(op, "Q", q.desc(), rank3 ? 3 : 4, rank3 ? "[B, Hq, D]" : "[B, Hq, 1, D]");
  check_f32(op, "Q", q);
  if (!rank3 && q.dim(2) != 1)
    rt::fail(ErrorCode::shape_mismatch, op, "Q has Lq = {}; Quest decode takes one query row",
             q.dim(2));
  if (q.dim(0) != c.batch)
    rt::fail(ErrorCode::shape_mismatch, op, "Q has batch {}; the cache has {} sequences", q.dim(0),
             c.batch);
  if (q.dim(q.rank() - 1) != c.head_dim)
    rt::fail(ErrorCode::shape_mismatch, op, "Q has head dim {}; the cache has {}",
             q.dim(q.rank() - 1), c.head_dim);
  attention_detail::check_heads(op, q.dim(1), c.hkv);
  return static_cast<int>(q.dim(1));
}

int page_budget(const QuestOptions& o) {
  return o.token_budget / o.page_size;
}

// Page count of each (b, hi) that quest_select produces (a pure function of the lengths).
std::vector<std::int32_t> selected_counts(const QuestCache& c, int hi_count, int budget) {
  std::vector<std::int32_t> v;
  const std::int64_t cap_budget = std::max(budget, 1);
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < hi_count; ++h)
      v.push_back(static_cast<std::int32_t>(std::min(c.n_pages(b), cap_budget)));
  return v;
}

QuestSelection run_selection(Context& ctx, const char* op, const Tensor& q, const QuestCache& c,
                             const QuestState& s, const DecodeOptions& o) {
  auto& impl = *ctx.impl();
  const int hq = check_q(op, impl, q, c);
  check_state(op, impl, s, c);
  QuestSelection sel;
  sel.page_size = c.page_size;
  const bool dense_layer = std::find(s.options.dense_layers.begin(), s.options.dense_layers.end(),
                                     o.layer) != s.options.dense_layers.end();
  if (dense_layer) {
    sel.all_pages = true;
    return sel;
  }
  const bool share = s.options.sharing == IndexSharing::kv_group;
  const int hi_count = share ? c.hkv : hq;
  SelectPlan p;
  p.cache = &c;
  p.q = q;
  p.q_sb = q.strides()[0];
  p.q_sh = q.strides()[1];
  p.hq = hq;
  p.share = share;
  p.page_budget = page_budget(s.options);
  const auto counts = selected_counts(c, hi_count, p.page_budget);
  p.cap = std::max<std::int64_t>(1, *std::max_element(counts.begin(), counts.end()));
  p.kmin = s.kmin;
  p.kmax = s.kmax;
  p.bounds = new_tensor(impl, ctx, DType::f32,
                        {c.batch, hi_count, std::max<std::int64_t>(c.max_pages, 1)});
  p.pages = new_tensor(impl, ctx, DType::i32, {c.batch, hi_count, p.cap});
  p.counts = new_tensor(impl, ctx, DType::i32, {c.batch, hi_count});
  run_select(impl, p);
  sel.pages = p.pages;
  sel.counts = p.counts;
  sel.bounds = p.bounds;
  return sel;
}

// Runs the kernel over a selection. counts: host copy when known (from decode), else the
// caller's selection is downloaded and validated here.
AttentionResult run_decode_op(Context& ctx, const char* op, const Tensor& q, const QuestCache& c,
                              const QuestSelection& sel, IndexSharing sharing,
                              const DecodeOptions& o, std::vector<std::int32_t> counts) {
  auto& impl = *ctx.impl();
  const int hq = check_q(op, impl, q, c);
  if (!c.v.defined()) rt::fail(ErrorCode::invalid_argument, op, "V is missing");
  if (o.pages_per_split < 1)
    rt::fail(ErrorCode::invalid_argument, op, "pages_per_split = {}; expected >= 1",
             o.pages_per_split);
  const bool share = sharing == IndexSharing::kv_group;
  const int hi_count = share ? c.hkv : hq;
  DecodePlan p;
  p.cache = &c;
  p.q = q;
  p.q_sb = q.strides()[0];
  p.q_sh = q.strides()[1];
  p.hq = hq;
  p.share = share;
  p.all_pages = sel.all_pages;
  p.pages_per_split = o.pages_per_split;
  p.c = attention_detail::scale_constant(op, o.scale, c.head_dim);
  if (p.all_pages) {
    counts.clear();
    for (int b = 0; b < c.batch; ++b)
      for (int h = 0; h < hi_count; ++h) counts.push_back(static_cast<std::int32_t>(c.n_pages(b)));
  } else {
    for (auto [t, name] :
         {std::pair{&sel.pages, "selection.pages"}, std::pair{&sel.counts, "selection.counts"}})
      detail::check_tensor_owner(op, name, *t, impl);
    check_index_tensor(op, "selection.pages", sel.pages.desc(), 3, "[B, Hi, cap]");
    check_index_tensor(op, "selection.counts", sel.counts.desc(), 2, "[B, Hi]");
    if (sel.pages.dim(0) != c.batch || sel.pages.dim(1) != hi_count ||
        sel.counts.dim(0) != c.batch || sel.counts.dim(1) != hi_count ||
        !sel.pages.is_contiguous() || !sel.counts.is_contiguous() || sel.pages.offset() != 0 ||
        sel.counts.offset() != 0)
      rt::fail(ErrorCode::shape_mismatch, op,
               "selection.pages is {} and selection.counts {}; expected contiguous [{}, {}, cap] "
               "and [{}, {}] ({} sharing)",
               sel.pages.desc().describe(), sel.counts.desc().describe(), c.batch, hi_count,
               c.batch, hi_count, share ? "kv_group" : "per_q_head");
    p.cap = sel.pages.dim(2);
    if (counts.empty()) {  // a caller's selection: every entry checked before a kernel reads it
      counts = download_index(sel.counts);
      const auto pages = download_index(sel.pages);
      for (int b = 0; b < c.batch; ++b)
        for (int h = 0; h < hi_count; ++h) {
          const std::int64_t item = std::int64_t{b} * hi_count + h, n = c.n_pages(b);
          const std::int64_t cnt = counts[static_cast<std::size_t>(item)];
          if (cnt < 0 || cnt > p.cap || cnt > n)
            rt::fail(ErrorCode::invalid_argument, op,
                     "selection.counts[{}][{}] = {}; expected 0..min(cap = {}, pages = {})", b, h,
                     cnt, p.cap, n);
          for (std::int64_t t = 0; t < cnt; ++t) {
            const std::int64_t pg = pages[static_cast<std::size_t>(item * p.cap + t)];
            if (pg < 0 || pg >= n)
              rt::fail(
                  ErrorCode::invalid_argument, op,
                  "selection.pages[{}][{}][{}] = {} is out of range [0, {}) (seq_lens[{}] = {})", b,
                  h, t, pg, n, b, c.seq_lens[b]);
            if (t > 0 && pg <= pages[static_cast<std::size_t>(item * p.cap + t - 1)])
              rt::fail(ErrorCode::invalid_argument, op,
                       "selection.pages[{}][{}] is not strictly ascending at slot {} ({} after {})",
                       b, h, t, pg, pages[static_cast<std::size_t>(item * p.cap + t - 1)]);
          }
        }
    }
    p.pages = sel.pages;
    p.counts = sel.counts;
  }
  std::int64_t max_count = 0;
  for (auto n : counts) max_count = std::max<std::int64_t>(max_count, n);
  p.max_splits = static_cast<int>((max_count + p.pages_per_split - 1) / p.pages_per_split);
  p.counts_host = std::move(counts);
  const std::vector<std::int64_t> out_shape{c.batch, hq, c.head_dim};
  attention_detail::check_alloc(op, "output O", DType::f32, out_shape,
                                attention_detail::max_alloc(impl));
  p.out = new_tensor(impl, ctx, DType::f32, out_shape);
  if (o.return_lse) p.lse = new_tensor(impl, ctx, DType::f32, {c.batch, hq});
  run_decode(impl, p);
  AttentionResult r{p.out, p.lse};
  if (q.rank() == 4)
    r.out = r.out.view({c.batch, hq, 1, c.head_dim}, {hq * c.head_dim, c.head_dim, c.head_dim, 1});
  return r;
}

}  // namespace

QuestState quest_init(Context& ctx, const PagedKV& kv, const QuestOptions& options) {
  constexpr const char* op = "quest_init";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  check_options(op, options);
  const QuestCache c = paged_cache(op, impl, kv, true);
  if (options.page_size != c.page_size)
    rt::fail(ErrorCode::shape_mismatch, op, "options.page_size = {}; the cache has pages of {}",
             options.page_size, c.page_size);
  return init_state(ctx, op, c, options);
}

QuestState quest_init(Context& ctx, const Tensor& k, const Tensor& seq_lens,
                      const QuestOptions& options) {
  constexpr const char* op = "quest_init";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  check_options(op, options);
  const QuestCache c = contiguous_cache(op, impl, ctx, k, Tensor(), seq_lens, options.page_size);
  return init_state(ctx, op, c, options);
}

namespace {
void update(Context& ctx, const char* op, const QuestCache& c, QuestState& state,
            const Tensor& prev_lens) {
  auto& impl = *ctx.impl();
  check_state(op, impl, state, c);
  std::vector<std::int32_t> prev;
  if (prev_lens.defined()) {
    detail::check_tensor_owner(op, "prev_lens", prev_lens, impl);
    check_index_tensor(op, "prev_lens", prev_lens.desc(), 1, "[B]");
    if (prev_lens.dim(0) != c.batch)
      rt::fail(ErrorCode::shape_mismatch, op, "prev_lens has {} entries; the batch is {}",
               prev_lens.dim(0), c.batch);
    prev = download_index(prev_lens);
  }
  run_metadata(impl, metadata_plan(op, c, state, prev_lens.defined() ? &prev : nullptr));
}
}  // namespace

void quest_update_metadata(Context& ctx, const PagedKV& kv, QuestState& state,
                           const Tensor& prev_lens) {
  constexpr const char* op = "quest_update_metadata";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const QuestCache c = paged_cache(op, impl, kv, true);
  update(ctx, op, c, state, prev_lens);
}

void quest_update_metadata(Context& ctx, const Tensor& k, const Tensor& seq_lens, QuestState& state,
                           const Tensor& prev_lens) {
  constexpr const char* op = "quest_update_metadata";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const QuestCache c =
      contiguous_cache(op, impl, ctx, k, Tensor(), seq_lens, state.options.page_size);
  update(ctx, op, c, state, prev_lens);
}

QuestSelection quest_select(Context& ctx, const Tensor& q, const PagedKV& kv,
                            const QuestState& state, const DecodeOptions& options) {
  constexpr const char* op = "quest_select";
  std::lock_guard lock(ctx.impl()->mutex);
  const QuestCache c = paged_cache(op, *ctx.impl(), kv);
  return run_selection(ctx, op, q, c, state, options);
}

QuestSelection quest_select(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& seq_lens,
                            const QuestState& state, const DecodeOptions& options) {
  constexpr const char* op = "quest_select";
  std::lock_guard lock(ctx.impl()->mutex);
  const QuestCache c =
      contiguous_cache(op, *ctx.impl(), ctx, k, Tensor(), seq_lens, state.options.page_size);
  return run_selection(ctx, op, q, c, state, options);
}

AttentionResult sparse_attention_decode(Context& ctx, const Tensor& q, const PagedKV& kv,
                                        const QuestSelection& selection, IndexSharing sharing,
                                        const DecodeOptions& options) {
  constexpr const char* op = "sparse_attention_decode";
  std::lock_guard lock(ctx.impl()->mutex);
  const QuestCache c = paged_cache(op, *ctx.impl(), kv);
  if (selection.page_size > 0 && selection.page_size != c.page_size)
    rt::fail(ErrorCode::shape_mismatch, op,
             "the selection was made for pages of {}; the cache has {}", selection.page_size,
             c.page_size);
  return run_decode_op(ctx, op, q, c, selection, sharing, options, {});
}

AttentionResult sparse_attention_decode(Context& ctx, const Tensor& q, const Tensor& k,
                                        const Tensor& v, const Tensor& seq_lens,
                                        const QuestSelection& selection, IndexSharing sharing,
                                        const DecodeOptions& options) {
  constexpr const char* op = "sparse_attention_decode";
  std::lock_guard lock(ctx.impl()->mutex);
  const QuestCache c = contiguous_cache(op, *ctx.impl(), ctx, k, v, seq_lens,
                                        selection.page_size > 0 ? selection.page_size : kMinPage);
  return run_decode_op(ctx, op, q, c, selection, sharing, options, {});
}

namespace {
AttentionResult decode_impl(Context& ctx, const char* op, const Tensor& q, const QuestCache& c,
                            const QuestState* state, const DecodeOptions& options) {
  if (!state) {
    QuestSelection all;
    all.all_pages = true;
    return run_decode_op(ctx, op, q, c, all, IndexSharing::per_q_head, options, {});
  }
  const QuestSelection sel = run_selection(ctx, op, q, c, *state, options);
  const bool share = state->options.sharing == IndexSharing::kv_group;
  const int hi_count = share ? c.hkv : static_cast<int>(q.dim(1));
  return run_decode_op(ctx, op, q, c, sel, state->options.sharing, options,
                       sel.all_pages ? std::vector<std::int32_t>{}
                                     : selected_counts(c, hi_count, page_budget(state->options)));
}
}  // namespace

AttentionResult decode(Context& ctx, const Tensor& q, const PagedKV& kv, const QuestState* state,
                       const DecodeOptions& options) {
  constexpr const char* op = "decode";
  std::lock_guard lock(ctx.impl()->mutex);
  const QuestCache c = paged_cache(op, *ctx.impl(), kv);
  return decode_impl(ctx, op, q, c, state, options);
}

AttentionResult decode(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& seq_lens, const QuestState* state,
                       const DecodeOptions& options) {
  constexpr const char* op = "decode";
  std::lock_guard lock(ctx.impl()->mutex);
  const QuestCache c = contiguous_cache(op, *ctx.impl(), ctx, k, v, seq_lens,
                                        state ? state->options.page_size : kMinPage);
  return decode_impl(ctx, op, q, c, state, options);
}

}  // namespace sparq
