// Fallback twin of kernels_cl/attention/kv_append.cl (its banner states the definition): each
// (b, h, t) row is widened exactly, then stored as is, rounded to f16/bf16, or int8-quantized
// with its scale, or NVFP4-quantized per 16-group (sq_fp4_quant16, as fp4_quantize_rows).
#include "nvfp4/fp4_math.h"
#include "quant/int8_codec.h"
#include "row_block.h"

namespace sparq::fallback {

using namespace attention_rows;

void kv_append(const KvAppendProblem& p) {
  const std::byte* src = storage_of(p.src);
  std::byte* dst = p.dst.storage()->host.data();
  std::byte* sc = p.scales.defined() ? p.scales.storage()->host.data() : nullptr;
  float* scales = reinterpret_cast<float*>(sc);
  const std::size_t rows = static_cast<std::size_t>(p.batch) * p.hkv * p.n;
  parallel_for(rows, [&](std::size_t r) {
    const int t = static_cast<int>(r % p.n), h = static_cast<int>((r / p.n) % p.hkv);
    const int b = static_cast<int>(r / (static_cast<std::size_t>(p.n) * p.hkv));
    const std::int64_t at = p.src_at.at(b, h, t);
    const std::int64_t pos = std::int64_t{p.seq_lens[b]} + t;
    const std::int64_t page = p.page_table[b * p.max_pages + pos / p.page_size];
    const std::int64_t slot = pos % p.page_size;
    const std::int64_t to = p.dst_at.at(page, h, slot);
    if (p.dst_at.dtype == DType::u8) {  // NVFP4: to and the scale row are byte offsets
      auto* codes = reinterpret_cast<std::uint8_t*>(dst);
      auto* sc8 = reinterpret_cast<std::uint8_t*>(sc) + p.sc_at.at(page, h, slot);
      for (int g = 0; g < p.d / SQ_FP4_GROUP; ++g) {
        float x[SQ_FP4_GROUP];
        for (int e = 0; e < SQ_FP4_GROUP; ++e)
          x[e] = load(src, p.src_at.dtype, at + g * SQ_FP4_GROUP + e);
        sc8[g] = static_cast<std::uint8_t>(
            sq_fp4_quant16(x, codes + to + std::int64_t{g} * (SQ_FP4_GROUP / 2)));
      }
      return;
    }
    if (p.dst_at.dtype != DType::i8) {
      for (int e = 0; e < p.d; ++e)
        store(dst, p.dst_at.dtype, to + e, load(src, p.src_at.dtype, at + e));
      return;
    }
    std::uint32_t amax = 0;
    for (int e = 0; e < p.d; ++e)
      amax = std::max(amax, sq_i8_absbits(load(src, p.src_at.dtype, at + e)));
    const float scale = sq_i8_scale(amax);
    auto* codes = reinterpret_cast<std::int8_t*>(dst);
    for (int e = 0; e < p.d; ++e)
      codes[to + e] =
          static_cast<std::int8_t>(sq_i8_code(load(src, p.src_at.dtype, at + e), scale, -127.0f));
    scales[p.sc_at.at(page, h, slot)] = scale;
  });
}

}  // namespace sparq::fallback
