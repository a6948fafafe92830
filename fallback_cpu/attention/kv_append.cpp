// Fallback twin of kernels_cl/attention/kv_append.cl (its banner states the definition): each
// (b, h, t) row is widened exactly, then stored as is, rounded to f16/bf16, int8-quantized with
// its scale, or NVFP4-quantized per 16-group (sq_fp4_quant16, as fp4_quantize_rows). With Quest
// metadata (K only), one work item per (b, h, touched page) writes the page's new rows in slot
// order and folds each into the page's kmin / kmax entry.
#include "nvfp4/fp4_math.h"
#include "quant/int8_codec.h"
#include "row_block.h"

namespace sparq::fallback {

using namespace attention_rows;

namespace {

// Row `at` of p.src into the page row `to` of p.dst, its scale(s) at `so`.
void append_row(const KvAppendProblem& p, std::int64_t at, std::int64_t to, std::int64_t so) {
  const std::byte* src = storage_of(p.src);
  std::byte* dst = p.dst.storage()->host.data();
  std::byte* sc = p.scales.defined() ? p.scales.storage()->host.data() : nullptr;
  if (p.dst_at.dtype == DType::u8) {  // NVFP4: to and so are byte offsets
    auto* codes = reinterpret_cast<std::uint8_t*>(dst);
    auto* sc8 = reinterpret_cast<std::uint8_t*>(sc) + so;
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
  reinterpret_cast<float*>(sc)[so] = scale;
}

}  // namespace

void kv_append(const KvAppendProblem& p) {
  const bool meta = p.kmin != nullptr;
  const int per = meta ? p.npg : p.n;  // work items per (b, h)
  const auto* dst = reinterpret_cast<const uchar*>(p.dst.storage()->host.data());
  const auto* sc =
      p.scales.defined() ? reinterpret_cast<const uchar*>(p.scales.storage()->host.data()) : dst;
  const int dt = static_cast<int>(p.dst_at.dtype);
  const std::size_t items = static_cast<std::size_t>(p.batch) * p.hkv * per;
  parallel_for(items, [&](std::size_t r) {
    const int h = static_cast<int>((r / per) % p.hkv);
    const int b = static_cast<int>(r / (static_cast<std::size_t>(per) * p.hkv));
    const std::int64_t len = p.seq_lens[b];
    std::int64_t t0 = static_cast<std::int64_t>(r % per), t1 = t0 + 1;
    if (meta) {  // the new tokens of the t0-th touched page
      const std::int64_t pg = len / p.page_size + t0;
      t0 = std::max(len, pg * p.page_size) - len;
      t1 = std::min(len + p.n, (pg + 1) * p.page_size) - len;
    }
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t pos = len + t;
      const std::int64_t page = p.page_table[b * p.max_pages + pos / p.page_size];
      const std::int64_t slot = pos % p.page_size;
      const std::int64_t to = p.dst_at.at(page, h, slot), so = p.sc_at.at(page, h, slot);
      append_row(p, p.src_at.at(b, h, t), to, so);
      if (!meta) continue;
      const std::int64_t e0 = (page * p.hkv + h) * p.d;
      for (int e = 0; e < p.d; ++e) {
        const float x = sq_kv_element(dst, to, dt, e, sc, so);
        p.kmin[e0 + e] = slot == 0 ? x : sq_mn(p.kmin[e0 + e], x);
        p.kmax[e0 + e] = slot == 0 ? x : sq_mx(p.kmax[e0 + e], x);
      }
    }
  });
}

}  // namespace sparq::fallback
