// Fallback twin of kernels_cl/attention/decode.cl's split mode + merge.cl's
// attention_merge_chunks: few query rows over a long context. Every (sequence, head, row block,
// 4096-key chunk) computes its chunk state (o_c, lse_c) from a fresh state into a workspace, in
// parallel; then each row folds its chunk states left to right with the merge formula of
// attention_common.h. A chunk state does not depend on who computes it, so this gives the bits of
// dense.cpp's in-place merge (tests/attention/attention_invariance_test.cpp checks it).
#include "row_block.h"

namespace sparq::fallback {

using namespace attention_rows;

void attention_split(const AttentionPlan& p) {
  struct Work {
    Item item;
    int chunk;
    std::size_t at;  // workspace offset: the rows' o_c (rows x D), then their lse_c
  };
  struct Row {  // one item and its chunks' work entries [first, first + chunks)
    Item item;
    std::size_t first;
    int chunks;
  };
  std::vector<Row> items;
  std::vector<Work> work;
  std::size_t floats = 0;
  for (int b = 0; b < p.batch; ++b) {
    const std::int64_t lq = p.seq_lq(b), lk = p.seq_lk(b);
    const int chunks =
        static_cast<int>((lk + attention_detail::kChunkKeys - 1) / attention_detail::kChunkKeys);
    for (int h = 0; h < p.hq; ++h)
      for (std::int64_t i0 = 0; i0 < lq; i0 += kBlockRows) {
        const Item it{b, h, i0, std::min(lq, i0 + kBlockRows)};
        items.push_back({it, work.size(), chunks});
        for (int c = 0; c < chunks; ++c) {
          work.push_back({it, c, floats});
          floats += static_cast<std::size_t>(it.i1 - it.i0) * (p.head_dim + 1);
        }
      }
  }
  std::vector<float> ws(floats);
  parallel_for(work.size(), [&](std::size_t i) {
    const Work& w = work[i];
    Scratch scratch(p.head_dim);
    const std::size_t rows = static_cast<std::size_t>(w.item.i1 - w.item.i0);
    BlockRunner(p, scratch).chunk_state(w.item, w.chunk, &ws[w.at], &ws[w.at + rows * p.head_dim]);
  });
  parallel_for(items.size(), [&](std::size_t k) {
    const Row& row = items[k];
    const int rows = static_cast<int>(row.item.i1 - row.item.i0);
    std::vector<float> o(p.head_dim);
    for (int r = 0; r < rows; ++r) {
      std::fill(o.begin(), o.end(), 0.0f);
      float lse = sq_att_neg_inf();
      for (int c = 0; c < row.chunks; ++c) {  // left to right
        const std::size_t at = work[row.first + c].at;
        const float* oc = &ws[at + static_cast<std::size_t>(r) * p.head_dim];
        const SqAttMerge w = sq_att_merge_weights(lse, ws[at + rows * p.head_dim + r]);
        for (int e = 0; e < p.head_dim; ++e) o[e] = sq_att_merge_out(w, o[e], oc[e]);
        lse = w.lse;
      }
      BlockRunner::write_row(p, row.item.b, row.item.h, row.item.i0 + r, o.data(), lse);
    }
  });
}

}  // namespace sparq::fallback
