// Fallback twin of kernels_cl/attention/sage8_decode.cl: Precision::int8 attention of short
// query blocks as 4096-key chunk states (each the tile walk of sage8_common.h from a fresh
// state), merged left to right with attention_common.h's sq_att_merge_* (merge.cl's order): the
// rows of sage8.cpp (sage8_chunked_row), with one delta row per (b, h).
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
  Sage8Problem q = p;  // delta: one row per (b, h)
  q.delta_rows = p.lq;
  q.delta_blk0 = 0;
  q.delta_nblk = 1;
  parallel_chunks(rows, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> oc(static_cast<std::size_t>(D));
    for (std::int64_t row = lo; row < hi; ++row)
      sage8_chunked_row(q, row / p.lq / p.hq, row / p.lq % p.hq, row % p.lq, oc.data(),
                        p.out + row * D);
  });
}

}  // namespace sparq::fallback
