// One validated Quest call as both executors read it: kernels_cl/sparse/quest.cl (through
// quest_launch.cpp) and fallback_cpu/sparse/quest.cpp. Built by quest.cpp after validation.
#pragma once
#include <cstdint>
#include <vector>

#include "sparq/quest.h"

namespace sparq::quest_detail {

// K or V rows: element (X, slot s, kv head hk, d) at base + X*s0 + s*ss + hk*sh + d.
struct RowAccess {
  std::int64_t base = 0, s0 = 0, ss = 0, sh = 0;
  std::int64_t at(std::int64_t x, std::int64_t s, std::int64_t hk) const {
    return base + x * s0 + s * ss + hk * sh;
  }
};

// The cache of one call: paged (X = page_table[b][p], slot in page) or contiguous (X = b,
// slot = p * Pg + slot in page). Host copies of seq_lens and the page table are validated.
struct QuestCache {
  bool paged = true;
  Tensor k, v;  // page pools, or [B, Hkv, Lk, D]
  RowAccess k_at, v_at;
  // K's storage (SQ_DT_* of attention/kv_pages.h; f32 except for the metadata ops on a paged
  // cache) and, for int8 / NVFP4 pages, its scales addressed like K without d.
  int k_dt = 0;
  Tensor k_scales;
  RowAccess ks_at;
  Tensor seq_lens_t, page_table_t;  // device tensors (contiguous: seq_lens uploaded if absent)
  std::vector<std::int32_t> seq_lens, page_table;
  int batch = 0, hkv = 0, head_dim = 0, page_size = 0;
  std::int64_t max_pages = 0;  // page-table width (contiguous: ceil(Lk / Pg))
  std::int64_t entries = 0;    // metadata entries: num_pages (paged) or B * max_pages

  std::int64_t n_pages(int b) const { return (seq_lens[b] + page_size - 1) / page_size; }
  std::int64_t meta_id(int b, std::int64_t p) const {
    return paged ? page_table[b * max_pages + p] : b * max_pages + p;
  }
  std::int64_t row_x(int b, std::int64_t p) const { return paged ? meta_id(b, p) : b; }
  std::int64_t slot0(std::int64_t p) const { return paged ? 0 : p * page_size; }
};

// One metadata work item: entry `meta`, rows X = x from slot0, tokens [from, valid) of the page.
struct MetaItem {
  std::int32_t meta, x, slot0, from, valid;
};

struct MetadataPlan {
  const QuestCache* cache = nullptr;
  std::vector<MetaItem> items;
  Tensor kmin, kmax;
};

struct SelectPlan {
  const QuestCache* cache = nullptr;
  Tensor q;  // [B, Hq, D] view (D contiguous)
  std::int64_t q_sb = 0, q_sh = 0;
  int hq = 0;
  bool share = false;  // kv_group
  int page_budget = 0;
  std::int64_t cap = 0;
  Tensor kmin, kmax;
  Tensor bounds, pages, counts;
};

struct DecodePlan {
  const QuestCache* cache = nullptr;
  Tensor q;
  std::int64_t q_sb = 0, q_sh = 0;
  int hq = 0;
  bool share = false;
  bool all_pages = false;
  std::int64_t cap = 0;
  Tensor pages, counts;                   // undefined when all_pages
  std::vector<std::int32_t> counts_host;  // [B, Hi] page counts (host copy, for the split grid)
  int pages_per_split = 32;
  int max_splits = 0;
  float c = 0.0f;
  Tensor out, lse;  // out [B, Hq, D] contiguous fp32; lse [B, Hq] or undefined
};

void run_metadata(detail::ContextImpl& ctx, const MetadataPlan& p);
void run_select(detail::ContextImpl& ctx, const SelectPlan& p);
void run_decode(detail::ContextImpl& ctx, const DecodePlan& p);

}  // namespace sparq::quest_detail
