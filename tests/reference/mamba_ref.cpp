// Float64 selective scan (specs/mamba_scan.md §1), sequence by sequence.
#include "reference/mamba_ref.h"

#include <cmath>

namespace sparq::test::ref {

ScanOutput selective_scan_ref(const ScanInput& in) {
  const std::int64_t Bt = in.batch, D = in.D, L = in.L, N = in.N, dpg = D / in.G;
  std::vector<std::int32_t> cu = in.cu;
  const bool varlen = !cu.empty();
  if (!varlen) cu = {0, static_cast<std::int32_t>(L)};
  const std::int64_t nseq = static_cast<std::int64_t>(cu.size()) - 1;
  const std::int64_t states = varlen ? nseq : Bt;
  ScanOutput o;
  o.out.assign(static_cast<std::size_t>(Bt * D * L), 0.0);
  o.abs_terms.assign(o.out.size(), 0.0);
  o.last.assign(static_cast<std::size_t>(states * D * N), 0.0);
  o.abs_last = o.last;
  std::vector<double> h(static_cast<std::size_t>(N)), ha(h.size());
  auto bc = [&](const std::vector<float>& m, bool var, std::int64_t b, std::int64_t d,
                std::int64_t n, std::int64_t t) {
    const std::int64_t g = d / dpg;
    return var ? static_cast<double>(m[static_cast<std::size_t>(((b * in.G + g) * N + n) * L + t)])
               : static_cast<double>(m[static_cast<std::size_t>(d * N + n)]);
  };
  for (std::int64_t b = 0; b < Bt; ++b)
    for (std::int64_t d = 0; d < D; ++d)
      for (std::int64_t s = 0; s < nseq; ++s) {
        const std::int64_t st = varlen ? s : b;
        for (std::int64_t n = 0; n < N; ++n) {
          h[n] = in.h0.empty() ? 0.0 : in.h0[static_cast<std::size_t>((st * D + d) * N + n)];
          ha[n] = std::fabs(h[n]);
        }
        for (std::int64_t t = cu[s]; t < cu[s + 1]; ++t) {
          const std::size_t i = static_cast<std::size_t>((b * D + d) * L + t);
          double dt = in.delta[i];
          if (!in.bias.empty()) dt += in.bias[d];
          if (in.softplus) dt = dt > 20.0 ? dt : std::log1p(std::exp(dt));
          const double u = in.u[i];
          double y = in.Dskip.empty() ? 0.0 : in.Dskip[d] * u, terms = 0.0;
          for (std::int64_t n = 0; n < N; ++n) {
            const double da = std::exp(dt * in.A[static_cast<std::size_t>(d * N + n)]);
            const double dbu = dt * bc(in.B, in.B_var, b, d, n, t) * u;
            h[n] = da * h[n] + dbu;
            ha[n] = da * ha[n] + std::fabs(dbu);
            const double c = bc(in.C, in.C_var, b, d, n, t);
            y += c * h[n];
            terms += std::fabs(c * h[n]);
          }
          if (!in.z.empty()) y *= in.z[i] / (1.0 + std::exp(-static_cast<double>(in.z[i])));
          o.out[i] = y;
          o.abs_terms[i] = terms;
        }
        for (std::int64_t n = 0; n < N; ++n) {
          o.last[static_cast<std::size_t>((st * D + d) * N + n)] = h[n];
          o.abs_last[static_cast<std::size_t>((st * D + d) * N + n)] = ha[n];
        }
      }
  return o;
}

ConvOutput causal_conv1d_ref(const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>& bias, const std::vector<float>& init,
                             const std::vector<std::int32_t>& cu, std::int64_t batch,
                             std::int64_t D, std::int64_t L, std::int64_t W, bool silu) {
  ConvOutput o;
  o.out.assign(static_cast<std::size_t>(batch * D * L), 0.0);
  o.abs_terms = o.out;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t d = 0; d < D; ++d)
      for (std::int64_t t = 0; t < L; ++t) {
        std::int64_t s = 0;
        while (!cu.empty() && s + 2 < static_cast<std::int64_t>(cu.size()) && cu[s + 1] <= t) ++s;
        const std::int64_t start = cu.empty() ? 0 : cu[s], st = cu.empty() ? b : s;
        double y = bias.empty() ? 0.0 : bias[d], a = std::fabs(y);
        for (std::int64_t k = 0; k < W; ++k) {
          const std::int64_t p = t - (W - 1) + k;
          double v = 0.0;
          if (p >= start)
            v = x[static_cast<std::size_t>((b * D + d) * L + p)];
          else if (!init.empty())
            v = init[static_cast<std::size_t>((st * D + d) * (W - 1) + (W - 1) + (p - start))];
          y += w[static_cast<std::size_t>(d * W + k)] * v;
          a += std::fabs(w[static_cast<std::size_t>(d * W + k)] * v);
        }
        const std::size_t i = static_cast<std::size_t>((b * D + d) * L + t);
        o.out[i] = silu ? y / (1.0 + std::exp(-y)) : y;
        o.abs_terms[i] = a;
      }
  return o;
}

}  // namespace sparq::test::ref
