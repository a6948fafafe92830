// Fallback twin of kernels_cl/mamba/ssd_scan.cl: the same defined order (see the .cl banner), one
// (b, h, p) row at a time: per t, dt and dA of (b, t, h), du and acc0, then n = 0..N-1 advancing
// h[p, n] and the acc chain. Rows are independent and run on several threads.
#include <vector>

#include "mamba/scan_math.h"
#include "mamba_fallback.h"

namespace sparq::fallback::mamba {

namespace {

using namespace sparq::cl_common;

void ssd_row(const SsdProblem& p, std::int64_t b, std::int64_t hh, std::int64_t pp,
             std::vector<float>& h) {
  const std::int64_t N = p.N, H = p.H, P = p.P, g = hh / p.hpg;
  const int total = p.nseq ? p.nseq : 1;
  auto state_row = [&](std::int64_t s) { return (((p.nseq ? s : b) * H + hh) * P + pp) * N; };
  auto init = [&](std::int64_t s) {
    for (std::int64_t n = 0; n < N; ++n) h[n] = p.h0 ? p.h0[state_row(s) + n] : 0.0f;
  };
  const float a = p.A.at(hh);
  const float bias = p.bias ? p.bias.at(hh) : 0.0f;
  const float dsk = p.D_mode == 0 ? 0.0f : p.Dskip.at(p.D_mode == 1 ? hh : hh * P + pp);
  int s = 0;
  init(0);
  std::int64_t end = p.nseq ? p.cu[1] : p.L;
  for (std::int64_t t = 0; t < p.L; ++t) {
    while (t >= end) {  // varlen: close sequence s (and empty ones), restart the state
      if (p.last)
        for (std::int64_t n = 0; n < N; ++n) p.last[state_row(s) + n] = h[n];
      ++s;
      init(s);
      end = p.cu[s + 1];
    }
    const float dt = sq_scan_dt(p.dt.at(b * p.dt.s0 + t * p.dt.s1 + hh), bias, p.bias ? 1 : 0,
                                p.softplus ? 1 : 0);
    const float da = sq_exp(dt * a);
    const float xv = p.x.at(b * p.x.s0 + t * p.x.s1 + hh * p.x.s2 + pp);
    const float du = dt * xv;
    float acc = sq_scan_acc0(dsk, p.D_mode != 0 ? 1 : 0, xv);
    const std::int64_t brow = b * p.Bm.s0 + t * p.Bm.s1 + g * p.Bm.s2;
    const std::int64_t crow = b * p.Cm.s0 + t * p.Cm.s1 + g * p.Cm.s2;
    for (std::int64_t n = 0; n < N; ++n) {
      h[n] = sq_fma(da, h[n], p.Bm.at(brow + n) * du);
      acc = sq_fma(h[n], p.Cm.at(crow + n), acc);
    }
    const float zz = p.z ? p.z.at(b * p.z.s0 + t * p.z.s1 + hh * p.z.s2 + pp) : 0.0f;
    store_any(p.out, ((b * p.L + t) * H + hh) * P + pp, p.out_dtype,
              sq_scan_gate(acc, zz, p.z ? 1 : 0));
  }
  if (!p.last) return;
  for (; s < total; ++s) {  // the open sequence, then any empty sequences after it
    for (std::int64_t n = 0; n < N; ++n) p.last[state_row(s) + n] = h[n];
    if (s + 1 < total) init(s + 1);
  }
}

}  // namespace

void ssd_scan(const SsdProblem& p) {
  const std::int64_t rows = p.batch * p.H * p.P;
  const std::int64_t chunk =
      std::max<std::int64_t>(1, (1 << 16) / std::max<std::int64_t>(1, p.L * p.N));
  parallel_chunks(rows, chunk, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> h(static_cast<std::size_t>(p.N));
    for (std::int64_t r = lo; r < hi; ++r) {
      const std::int64_t pp = r % p.P, bh = r / p.P;
      ssd_row(p, bh / p.H, bh % p.H, pp, h);
    }
  });
}

}  // namespace sparq::fallback::mamba
