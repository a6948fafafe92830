// Fallback twin of kernels_cl/mamba/selective_scan.cl: the same defined order (see the .cl
// banner), one (b, d) row at a time: per t, dt/du/acc0, then n = 0..N-1 advancing h_n and the
// acc chain. Rows are independent and run on several threads.
#include <vector>

#include "mamba/outlier_quant_math.h"
#include "mamba/scan_math.h"
#include "mamba_fallback.h"

namespace sparq::fallback::mamba {

using namespace sparq::cl_common;

float QSrc::at(std::int64_t row, std::int64_t j) const {
  const std::int64_t ncodes = bits8 ? C : (C + 1) / 2, vo = row * K;
  return sq_oq_dequant_at(codes + row * ncodes, bits8, scales[row], counts[row], idx + vo, fmt,
                          val_f ? val_f + vo : nullptr, val_h ? val_h + vo : nullptr,
                          val_b ? val_b + vo : nullptr, fmt == 2 ? oscale[row] : 0.0f,
                          static_cast<int>(j));
}

namespace {

void scan_row(const ScanProblem& p, std::int64_t b, std::int64_t d, std::vector<float>& h,
              std::vector<float>& a) {
  const std::int64_t N = p.N, D = p.D, g = d / p.dpg;
  const int total = p.nseq ? p.nseq : 1;
  auto state_row = [&](std::int64_t s) { return ((p.nseq ? s : b) * D + d) * N; };
  auto init = [&](std::int64_t s) {
    for (std::int64_t n = 0; n < N; ++n) h[n] = p.h0 ? p.h0[state_row(s) + n] : 0.0f;
  };
  for (std::int64_t n = 0; n < N; ++n) a[n] = p.A.at(d * N + n);
  int s = 0;
  init(0);
  std::int64_t end = p.nseq ? p.cu[1] : p.L;
  const float bias = p.bias ? p.bias.at(d) : 0.0f;
  const float dsk = p.Dskip ? p.Dskip.at(d) : 0.0f;
  for (std::int64_t t = 0; t < p.L; ++t) {
    while (t >= end) {  // varlen: close sequence s (and empty ones), restart the state
      if (p.last)
        for (std::int64_t n = 0; n < N; ++n) p.last[state_row(s) + n] = h[n];
      ++s;
      init(s);
      end = p.cu[s + 1];
    }
    const std::int64_t row = b * p.L + t;  // token row of quantized inputs
    const float uu = p.qu ? p.qu->at(row, d) : p.u.at(b * p.u.s0 + d * p.u.s1 + t);
    const float x =
        p.qdelta ? p.qdelta->at(row, d) : p.delta.at(b * p.delta.s0 + d * p.delta.s1 + t);
    const float dt = sq_scan_dt(x, bias, p.bias ? 1 : 0, p.softplus ? 1 : 0);
    const float du = dt * uu;
    float acc = sq_scan_acc0(dsk, p.Dskip ? 1 : 0, uu);
    for (std::int64_t n = 0; n < N; ++n) {
      const float bv = p.qB      ? p.qB->at(row, g * N + n)
                       : p.B_var ? p.Bm.at(b * p.Bm.s0 + g * p.Bm.s1 + n * p.Bm.s2 + t)
                                 : p.Bm.at(d * p.Bm.s0 + n);
      const float cv = p.qC      ? p.qC->at(row, g * N + n)
                       : p.C_var ? p.Cm.at(b * p.Cm.s0 + g * p.Cm.s1 + n * p.Cm.s2 + t)
                                 : p.Cm.at(d * p.Cm.s0 + n);
      h[n] = sq_scan_step(h[n], dt, a[n], bv, du);
      acc = sq_fma(h[n], cv, acc);
    }
    const bool has_z = p.z || p.qz;
    const float zz = p.qz ? p.qz->at(row, d) : (p.z ? p.z.at(b * p.z.s0 + d * p.z.s1 + t) : 0.0f);
    store_any(p.out, b * p.out_sb + d * p.out_sd + t, p.out_dtype,
              sq_scan_gate(acc, zz, has_z ? 1 : 0));
  }
  if (!p.last) return;
  for (; s < total; ++s) {  // the open sequence, then any empty sequences after it
    for (std::int64_t n = 0; n < N; ++n) p.last[state_row(s) + n] = h[n];
    if (s + 1 < total) init(s + 1);
  }
}

}  // namespace

void selective_scan(const ScanProblem& p) {
  const std::int64_t rows = p.batch * p.D;
  const std::int64_t chunk =
      std::max<std::int64_t>(1, (1 << 16) / std::max<std::int64_t>(1, p.L * p.N));
  parallel_chunks(rows, chunk, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> h(static_cast<std::size_t>(p.N)), a(static_cast<std::size_t>(p.N));
    for (std::int64_t r = lo; r < hi; ++r) scan_row(p, r / p.D, r % p.D, h, a);
  });
}

}  // namespace sparq::fallback::mamba
