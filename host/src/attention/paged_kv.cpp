// Checks and addressing of a PagedKV (paged_kv.h).
#include "paged_kv.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "attention_validate.h"
#include "errors.h"

namespace sparq::attention_detail {

const char* page_layout_text(PageLayout l) {
  return l == PageLayout::nhd ? "NHD [num_pages, page_size, Hkv, D]"
                              : "HND [num_pages, Hkv, page_size, D]";
}

namespace {

void check_scales(const char* op, const char* arg, const Tensor& scales, const Tensor& pages) {
  const bool fp4 = pages.dtype() == DType::u8;
  if (!scales.defined())
    rt::fail(ErrorCode::invalid_argument, op, "{} is missing: {}", arg,
             fp4 ? "NVFP4 pages need one u8 E4M3 scale per 16 elements of a row"
                 : "int8 pages need one f32 scale per (page, slot, head) row");
  std::vector<std::int64_t> want = pages.shape();
  want.pop_back();
  if (fp4) want.push_back(pages.dim(3) / 8);
  const DType t = fp4 ? DType::u8 : DType::f32;
  if (scales.dtype() != t || scales.shape() != want || !scales.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "{} is {} [{}]; expected contiguous {} [{}] ({})", arg,
             dtype_name(scales.dtype()), fmt::join(scales.shape(), ", "), dtype_name(t),
             fmt::join(want, ", "),
             fp4 ? "the pages' shape with D / 16 groups last" : "the pages' shape without D");
}

}  // namespace

void check_page_tensors(const char* op, const PagedKV& kv) {
  const char* layout = page_layout_text(kv.layout);
  if (kv.k_pages.dtype() != kv.v_pages.dtype())
    rt::fail(ErrorCode::shape_mismatch, op, "kv.k_pages is {} and kv.v_pages {}; they must match",
             dtype_name(kv.k_pages.dtype()), dtype_name(kv.v_pages.dtype()));
  if (is_quantized(kv.k_pages.dtype())) {
    for (auto [t, name] : {std::pair{&kv.k_pages, "kv.k_pages"}, {&kv.v_pages, "kv.v_pages"}}) {
      if (t->rank() != 4 || t->strides().back() != 1)
        rt::fail(ErrorCode::shape_mismatch, op, "{} is [{}]; expected rank 4 {} with D contiguous",
                 name, fmt::join(t->shape(), ", "), layout);
      if (t->dtype() == DType::u8 && t->dim(3) % 8 != 0)
        rt::fail(ErrorCode::shape_mismatch, op,
                 "{} holds {} bytes per row (D = {}); NVFP4 pages need D a multiple of 16 (D / 2 "
                 "bytes per row)",
                 name, t->dim(3), 2 * t->dim(3));
    }
  } else {
    check_float_tensor(op, "kv.k_pages", kv.k_pages.desc(), 4, layout);
    check_float_tensor(op, "kv.v_pages", kv.v_pages.desc(), 4, layout);
    if (kv.k_scales.defined() || kv.v_scales.defined())
      rt::fail(ErrorCode::invalid_argument, op,
               "kv.k_scales / kv.v_scales are given but the pages are {}; scales belong to int8 "
               "and NVFP4 pages only",
               dtype_name(kv.k_pages.dtype()));
  }
  if (kv.k_pages.shape() != kv.v_pages.shape())
    rt::fail(ErrorCode::shape_mismatch, op,
             "kv.v_pages has shape [{}], kv.k_pages has [{}]; they must match",
             fmt::join(kv.v_pages.shape(), ", "), fmt::join(kv.k_pages.shape(), ", "));
  if (is_quantized(kv.k_pages.dtype())) {
    check_scales(op, "kv.k_scales", kv.k_scales, kv.k_pages);
    check_scales(op, "kv.v_scales", kv.v_scales, kv.v_pages);
  }
}

bool is_quantized(DType pages) {
  return pages == DType::i8 || pages == DType::u8;
}

std::int64_t page_head_dim(const Tensor& pages) {
  return pages.dtype() == DType::u8 ? 2 * pages.dim(3) : pages.dim(3);
}

Access page_access(const Tensor& pages, bool nhd) {
  const auto& s = pages.strides();
  return {pages.dtype(), pages.offset(), s[0], s[nhd ? 1 : 2], s[nhd ? 2 : 1]};
}

Access scale_access(const Tensor& scales, bool nhd) {
  return page_access(scales, nhd);  // the same dims without D
}

void check_page_table(const char* op, const std::vector<std::int32_t>& page_table,
                      std::int64_t max_pages, const std::vector<std::int64_t>& lens, int page_size,
                      std::int64_t num_pages) {
  for (std::size_t b = 0; b < lens.size(); ++b) {
    const std::int64_t len = lens[b];
    if (len < 0) rt::fail(ErrorCode::invalid_argument, op, "seq_lens[{}] = {} is negative", b, len);
    check_length(op, fmt::format("seq_lens[{}]", b).c_str(), len);
    const std::int64_t need = (len + page_size - 1) / page_size;
    if (need > max_pages)
      rt::fail(ErrorCode::invalid_argument, op,
               "seq_lens[{}] = {} needs {} pages of {} but page_table has {} per sequence", b, len,
               need, page_size, max_pages);
    for (std::int64_t i = 0; i < need; ++i) {
      const std::int64_t page = page_table[b * max_pages + i];
      if (page < 0 || page >= num_pages)
        rt::fail(ErrorCode::invalid_argument, op,
                 "page_table[{}][{}] = {} is out of range [0, {}) (k_pages has {} pages)", b, i,
                 page, num_pages, num_pages);
    }
  }
}

}  // namespace sparq::attention_detail
