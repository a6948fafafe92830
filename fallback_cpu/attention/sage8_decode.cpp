// Fallback twin of kernels_cl/attention/sage8_decode.cl: Precision::int8 attention of short
// query blocks as 4096-key chunk states (each the tile walk of sage8_common.h from a fresh
// state), merged left to right with attention_common.h's sq_att_merge_* (merge.cl's order).
#include <algorithm>
#include <vector>

#include "attention/attention_common.h"
#include "attention/sage8_common.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "sage8_fallback.h"

namespace sparq::fallback {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

void sage8_decode(const Sage8Problem& p) {
  const std::int64_t D = p.d, rows = p.batch * p.hq * p.lq;
  const std::int64_t nchunks = (p.lk + SQ_ATT_CHUNK - 1) / SQ_ATT_CHUNK;
  Sage8Problem q = p;  // delta: one row per (b, h)
  q.delta_rows = p.lq;
  q.delta_blk0 = 0;
  q.delta_nblk = 1;
  parallel_chunks(rows, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> oc(static_cast<std::size_t>(D)), orow(static_cast<std::size_t>(D));
    for (std::int64_t row = lo; row < hi; ++row) {
      const std::int64_t bh = row / p.lq, i = row % p.lq;
      const int ve = sq_att_visible_end(static_cast<int>(i), static_cast<int>(p.lq),
                                        static_cast<int>(p.lk), p.causal ? 1 : 0);
      float lse_r = sq_att_neg_inf();
      std::fill(orow.begin(), orow.end(), 0.0f);
      for (std::int64_t ch = 0; ch < nchunks; ++ch) {
        const std::int64_t c0 = ch * SQ_ATT_CHUNK;
        const std::int64_t c1 = std::min<std::int64_t>(p.lk, c0 + SQ_ATT_CHUNK);
        float m = sq_att_neg_inf(), l = 0.0f;
        std::fill(oc.begin(), oc.end(), 0.0f);
        sage8_walk(q, bh / p.hq, bh % p.hq, i, c0, std::min<std::int64_t>(c1, ve), m, l, oc.data());
        const SqAttMerge w = sq_att_merge_weights(lse_r, sq_att_chunk_lse(m, l));
        for (std::int64_t d = 0; d < D; ++d)
          orow[d] = sq_att_merge_out(w, orow[d], sq_att_chunk_out(oc[d], l));
        lse_r = w.lse;
      }
      std::copy(orow.begin(), orow.end(), p.out + row * D);
    }
  });
}

}  // namespace sparq::fallback
