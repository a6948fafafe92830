// Fallback twin of kernels_cl/attention/dense.cl (and of decode.cl's whole-row mode): exact fp32
// attention in the defined order of kernels_cl/attention/attention_common.h (chunks of 4096 keys,
// online base-2 softmax over tiles of 64 keys inside a chunk, chunk states merged left to right).
//
// Work split (never changes bits: rows are independent): one item per (sequence, query head,
// block of up to 64 query rows); each item walks its rows over every chunk and merges in place
// (row_block.h). Few query rows over several chunks go to decode.cpp instead, as on the device.
#include "row_block.h"

namespace sparq::fallback {

using namespace attention_rows;

void attention(const AttentionPlan& p) {
  if (p.lq <= attention_detail::kSplitMaxRows && p.num_chunks() > 1) {
    attention_split(p);
    return;
  }
  std::vector<Item> items;
  for (int b = 0; b < p.batch; ++b) {
    const std::int64_t lq = p.seq_lq(b);
    for (int h = 0; h < p.hq; ++h)
      for (std::int64_t i0 = 0; i0 < lq; i0 += kBlockRows)
        items.push_back({b, h, i0, std::min(lq, i0 + kBlockRows)});
  }
  parallel_for(items.size(), [&](std::size_t i) {
    Scratch scratch(p.head_dim);
    BlockRunner(p, scratch).run(items[i]);
  });
}

}  // namespace sparq::fallback
