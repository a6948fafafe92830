// Helpers of the paged-KV tests (kv_cache_test.cpp, kv_nvfp4_test.cpp): a zero-filled cache
// with a seeded page table.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "sparq/sparq.h"

namespace sparq::test::attn {

// A cache of batch * per_seq pages for B sequences, page table a seeded shuffle (sequence b owns
// entries b * per_seq .. of it), starting lengths `lens`.
struct Cache {
  PagedKV kv;
  std::vector<std::int32_t> table;
};
inline Cache make_cache(Context& ctx, DType storage, PageLayout layout, int batch, int per_seq,
                        int page_size, int hkv, int d, const std::vector<std::int32_t>& lens) {
  Cache c;
  const int pages = batch * per_seq;
  c.kv = make_paged_kv(ctx, pages, page_size, hkv, d, storage, layout);
  std::vector<std::int32_t> perm(pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
  c.table = perm;  // row b = entries [b * per_seq, (b + 1) * per_seq)
  c.kv.page_table = ctx.upload(c.table, DType::i32, {batch, per_seq});
  c.kv.seq_lens = ctx.upload(lens, DType::i32, {batch});
  return c;
}

}  // namespace sparq::test::attn
