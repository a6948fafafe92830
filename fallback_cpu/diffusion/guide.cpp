// Fallback twin of kernels_cl/diffusion/guide.cl: the same §6.4 tree for the guidance-rescale
// sums (guide_math.h), and the exact order statistics of the |x0| bit patterns for the dynamic
// threshold (a selection: no arithmetic, so std::nth_element gives the radix select's values).
#include <algorithm>
#include <bit>
#include <cstring>

#include "common/convert.h"
#include "diffusion/guide_math.h"
#include "diffusion_fallback.h"

namespace sparq::fallback::diffusion {

using namespace sparq::cl_common;

namespace {

float load_any(const std::byte* base, std::int64_t i, int dt) {
  if (dt == 0) {
    float v;
    std::memcpy(&v, base + i * 4, 4);
    return v;
  }
  std::uint16_t h;
  std::memcpy(&h, base + i * 2, 2);
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

}  // namespace

void rescale_rho(const std::byte* model, int dt, const SqStepCoef* coefs, bool per_sample,
                 std::int64_t s, std::int64_t n, float rn, float rn1, float* rho) {
  const std::int64_t batch = n / s;
  const std::int64_t chunks = (s + SQ_RS_CHUNK - 1) / SQ_RS_CHUNK;
  std::int64_t pow2 = 1;
  while (pow2 < chunks) pow2 *= 2;
  parallel_chunks(batch, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> part(static_cast<std::size_t>(pow2) * 4, 0.0f);
    for (std::int64_t b = lo; b < hi; ++b) {
      const SqStepCoef& k = coefs[per_sample ? b : 0];
      for (std::int64_t q = 0; q < pow2; ++q) {
        float acc[4][SQ_RS_LANES];
        for (int t = 0; t < SQ_RS_LANES; ++t) {
          float sc = 0.0f, sc2 = 0.0f, sm = 0.0f, sm2 = 0.0f;
          for (int r = 0; r < 4; ++r) {
            const std::int64_t e = q * SQ_RS_CHUNK + t + SQ_RS_LANES * r;
            if (e >= s) break;
            const float u = load_any(model, b * s + e, dt);
            const float c = load_any(model, n + b * s + e, dt);
            const float m = sq_cfg(u, c, k.guidance);
            sc = sc + c;
            sc2 = sq_fma(c, c, sc2);
            sm = sm + m;
            sm2 = sq_fma(m, m, sm2);
          }
          acc[0][t] = sc;
          acc[1][t] = sc2;
          acc[2][t] = sm;
          acc[3][t] = sm2;
        }
        for (int w = SQ_RS_LANES / 2; w >= 1; w >>= 1)
          for (int t = 0; t < w; ++t)
            for (int v = 0; v < 4; ++v) acc[v][t] = acc[v][t] + acc[v][t + w];
        for (int v = 0; v < 4; ++v) part[static_cast<std::size_t>(q * 4 + v)] = acc[v][0];
      }
      float* p = part.data();
      for (std::int64_t w = pow2 / 2; w >= 1; w >>= 1)
        for (std::int64_t t = 0; t < w; ++t)
          for (int v = 0; v < 4; ++v) p[t * 4 + v] = p[t * 4 + v] + p[(t + w) * 4 + v];
      rho[b] = sq_rescale_rho(p[0], p[1], p[2], p[3], rn, rn1, k.phi, k.keep);
    }
  });
}

void thresh_scale(const float* x0, std::int64_t s, std::int64_t batch, const ThreshRank* ranks,
                  float* thr) {
  parallel_chunks(batch, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::uint32_t> bits(static_cast<std::size_t>(s));
    for (std::int64_t b = lo; b < hi; ++b) {
      for (std::int64_t e = 0; e < s; ++e)
        bits[static_cast<std::size_t>(e)] =
            std::bit_cast<std::uint32_t>(x0[b * s + e]) & 0x7FFFFFFFu;
      const ThreshRank& r = ranks[b];
      std::nth_element(bits.begin(), bits.begin() + r.lo, bits.end());
      const std::uint32_t vlo = bits[r.lo];
      std::uint32_t vhi = vlo;
      if (r.hi != r.lo) vhi = *std::min_element(bits.begin() + r.lo + 1, bits.end());
      thr[b] = sq_th_scale(std::bit_cast<float>(vlo), std::bit_cast<float>(vhi), r.frac, r.smax);
    }
  });
}

}  // namespace sparq::fallback::diffusion
