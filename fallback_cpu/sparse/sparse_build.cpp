// Fallback of kernels_cl/sparse/sparse_build.cl: the same per-row code (sparse_build.h), rows in
// parallel (independent), pooling element by element in the kernel's order.
#include "sparse/sparse_build.h"

#include <atomic>
#include <cstring>
#include <vector>

#include "attention/attention_common.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "sparse_fallback.h"

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

int build_ashape(const IndexOut& o, int lq, int lk, int off, bool causal, int n_init, int n_local) {
  std::atomic<int> err{0};
  parallel_chunks(o.rows, 256, [&](std::int64_t lo, std::int64_t hi) {
    int ws[4];
    for (std::int64_t row = lo; row < hi; ++row) {
      int nt = 0;
      const int e =
          sq_ashape_row(static_cast<int>(row % o.nqb), lq, lk, off, causal ? 1 : 0, n_init, n_local,
                        ws, o.tstart + row * o.max_tiles, o.max_tiles, &nt);
      o.tcount[row] = nt;
      o.ccount[row] = 0;
      if (e) err.fetch_or(e);
    }
  });
  return err.load();
}

void pool(const In& x, float* out, int B, int H, int L, int D) {
  const int nblk = (L + 63) / 64;
  const std::int64_t blocks = static_cast<std::int64_t>(B) * H * nblk;
  parallel_chunks(blocks, 16, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t it = lo; it < hi; ++it) {
      const int blk = static_cast<int>(it % nblk);
      const int h = static_cast<int>((it / nblk) % H);
      const std::int64_t b = it / (static_cast<std::int64_t>(nblk) * H);
      const int r0 = blk * 64, r1 = std::min(r0 + 64, L);
      for (int d = 0; d < D; ++d) {
        const std::int64_t base = b * x.sb + h * x.sh + d;
        float s = 0.0f;
        for (int r = r0; r < r1; ++r) s = s + load(x, base + r * x.sr);
        out[it * D + d] = s / static_cast<float>(r1 - r0);
      }
    }
  });
}

int build_block_sparse(const IndexOut& o, const float* qbar, const float* kbar, int Hi, int Hq,
                       int Hkv, bool share, int nkb, int D, int top_k, int lq, int lk, int off,
                       bool causal) {
  std::atomic<int> err{0};
  const int nqb = o.nqb;
  parallel_chunks(o.rows, 8, [&](std::int64_t lo, std::int64_t hi_end) {
    std::vector<float> wsf(static_cast<std::size_t>(std::max(top_k, 1)));
    std::vector<int> wsi(static_cast<std::size_t>(sq_block_sparse_ws_ints(top_k)));
    for (std::int64_t row = lo; row < hi_end; ++row) {
      const int qb = static_cast<int>(row % nqb);
      const int hi = static_cast<int>((row / nqb) % Hi);
      const std::int64_t b = row / (static_cast<std::int64_t>(nqb) * Hi);
      const int group = Hq / Hkv;
      const int hk = share ? hi : hi / group;
      const int h0 = share ? hi * group : hi;
      const int nheads = share ? group : 1;
      const float* qv = qbar + ((b * Hq + h0) * nqb + qb) * D;
      const float* kv = kbar + (b * Hkv + hk) * nkb * D;
      int nt = 0;
      const int e = sq_block_sparse_row(qv, static_cast<slong>(nqb) * D, nheads, kv, nkb, D, qb, lq,
                                        lk, off, causal ? 1 : 0, top_k, wsf.data(), wsi.data(),
                                        o.tstart + row * o.max_tiles, o.max_tiles, &nt);
      o.tcount[row] = nt;
      o.ccount[row] = 0;
      if (e) err.fetch_or(e);
    }
  });
  return err.load();
}

}  // namespace sparq::fallback::sparse
