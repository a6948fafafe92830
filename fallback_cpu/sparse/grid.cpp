// Fallback of kernels_cl/sparse/grid.cl: the same per-row code (sparse/grid_build.h), rows in
// parallel (independent), pooling element by element in the kernel's order.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "attention/attention_common.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "grid_fallback.h"
#include "sparse/grid_build.h"

namespace sparq::fallback::sparse {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

namespace {

float load(const In& x, std::int64_t i) {
  if (x.dtype == 0) {
    float f;
    std::memcpy(&f, x.p + i * 4, 4);
    return f;
  }
  std::uint16_t u;
  std::memcpy(&u, x.p + i * 2, 2);
  return sq_att_widen16(u, x.dtype);
}

}  // namespace

void grid_pool(const In& x, const std::int32_t* perm, float* out, int B, int H, int L, int D) {
  const int nblk = (L + 63) / 64;
  const std::int64_t blocks = static_cast<std::int64_t>(B) * H * nblk;
  parallel_chunks(blocks, 16, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t it = lo; it < hi; ++it) {
      const int blk = static_cast<int>(it % nblk);
      const int h = static_cast<int>((it / nblk) % H);
      const std::int64_t b = it / (static_cast<std::int64_t>(nblk) * H);
      const std::int32_t* pb = perm + b * L;
      const int r0 = blk * 64, r1 = std::min(r0 + 64, L);
      for (int d = 0; d < D; ++d) {
        const std::int64_t base = b * x.sb + h * x.sh + d;
        float s = 0.0f;
        for (int r = r0; r < r1; ++r) s = s + load(x, base + std::int64_t{pb[r]} * x.sr);
        out[it * D + d] = s / static_cast<float>(r1 - r0);
      }
    }
  });
}

int grid_select(const GridSelectProblem& p, const IndexOut& o) {
  std::atomic<int> err{0};
  parallel_chunks(o.rows, 8, [&](std::int64_t lo, std::int64_t hi_end) {
    std::vector<float> wsf(static_cast<std::size_t>(std::max(p.top_k, 1)));
    std::vector<int> sel(static_cast<std::size_t>(std::max(p.top_k, 1)));
    std::vector<int> ws(static_cast<std::size_t>(sq_grid_ws_ints(p.top_k, p.max_lines)));
    for (std::int64_t row = lo; row < hi_end; ++row) {
      const int qb = static_cast<int>(row % p.nqb);
      const std::int64_t bhi = row / p.nqb;
      const int hi = static_cast<int>(bhi % p.Hi);
      const std::int64_t b = bhi / p.Hi;
      const int group = p.Hq / p.Hkv;
      const int hk = p.share ? hi : hi / group;
      const int h0 = p.share ? hi * group : hi;
      const int nheads = p.share ? group : 1;
      int nt = 0;
      const int e = sq_grid_row(
          p.qbar + ((b * p.Hq + h0) * p.nqb + qb) * p.D, static_cast<slong>(p.nqb) * p.D, nheads,
          p.kbar + (b * p.Hkv + hk) * p.nkb * p.D, p.nkb, p.D, p.kbmin + b * p.nkb,
          p.qpos + b * p.lq, p.kpos + b * p.lk, p.kinv + b * p.lk, p.lines + row * p.max_lines,
          p.nlines[row], qb, p.lq, p.lk, p.top_k, wsf.data(), sel.data(), ws.data(),
          o.tstart + row * o.max_tiles, o.max_tiles, &nt);
      o.tcount[row] = nt;
      o.ccount[row] = 0;
      if (e) err.fetch_or(e);
    }
  });
  return err.load();
}

}  // namespace sparq::fallback::sparse
