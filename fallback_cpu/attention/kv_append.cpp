// Fallback twin of kernels_cl/attention/kv_append.cl (its banner states the definition): each
// (b, h, t) row is widened exactly, then stored as is, rounded to f16/bf16, or int8-quantized
// with its scale.
#include "quant/int8_codec.h"
#include "row_block.h"

namespace sparq::fallback {

using namespace attention_rows;

void kv_append(const KvAppendProblem& p) {
  const std::byte* src = storage_of(p.src);
  std::byte* dst = p.dst.storage()->host.data();
  float* scales =
      p.scales.defined() ? reinterpret_cast<float*>(p.scales.storage()->host.data()) : nullptr;
  const std::size_t rows = static_cast<std::size_t>(p.batch) * p.hkv * p.n;
  parallel_for(rows, [&](std::size_t r) {
    const int t = static_cast<int>(r % p.n), h = static_cast<int>((r / p.n) % p.hkv);
    const int b = static_cast<int>(r / (static_cast<std::size_t>(p.n) * p.hkv));
    const std::int64_t at = p.src_at.at(b, h, t);
    const std::int64_t pos = std::int64_t{p.seq_lens[b]} + t;
    const std::int64_t page = p.page_table[b * p.max_pages + pos / p.page_size];
    const std::int64_t slot = pos % p.page_size;
    const std::int64_t to = p.dst_at.at(page, h, slot);
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
