// Checks and addressing of a PagedKV shared by attention_paged and kv_append.
#pragma once
#include <cstdint>
#include <vector>

#include "attention_plan.h"
#include "sparq/attention.h"

namespace sparq::attention_detail {

const char* page_layout_text(PageLayout l);

// K/V page tensors: same shape, rank 4 in `kv.layout`, D contiguous; f32/f16/bf16 (no scales),
// or both i8 with k_scales / v_scales f32 of the pages' shape without D, contiguous; or both u8
// (NVFP4: D / 2 bytes per row, D % 16 == 0) with u8 E4M3 scales [..., D / 16], contiguous.
void check_page_tensors(const char* op, const PagedKV& kv);

// Pages with scales: i8 (int8 rows) or u8 (NVFP4).
bool is_quantized(DType pages);

// The head dim D the page tensor holds (u8 NVFP4 pages: two elements per byte).
std::int64_t page_head_dim(const Tensor& pages);

// Access of a page tensor (NHD [pages, slots, Hkv, D] or HND [pages, Hkv, slots, D]) as
// Access::at(page, head, slot) reads it.
Access page_access(const Tensor& pages, bool nhd);

// Access of a scale tensor (NHD [pages, slots, Hkv] or HND [pages, Hkv, slots]) as Access::at
// (page, head, slot) reads it.
Access scale_access(const Tensor& scales, bool nhd);

// Every sequence's pages in [0, need) are in range, need = ceil(len / page_size) for the
// lengths `lens` (seq_lens, or seq_lens + n for an append); lengths non-negative and in range.
void check_page_table(const char* op, const std::vector<std::int32_t>& page_table,
                      std::int64_t max_pages, const std::vector<std::int64_t>& lens, int page_size,
                      std::int64_t num_pages);

}  // namespace sparq::attention_detail
