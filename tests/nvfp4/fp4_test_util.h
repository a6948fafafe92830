// Helpers of the NVFP4 tests: host-side float64 accuracy metrics and packed-tensor downloads.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "common/codecs.h"
#include "sparq/nvfp4.h"

namespace sparq::test {

struct Accuracy {
  double cosine = 0, rel_l1 = 0, max_abs = 0;
};

inline Accuracy accuracy(const std::vector<float>& got, const std::vector<double>& want) {
  double dot = 0, ng = 0, nw = 0, l1 = 0, l1w = 0, mx = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    dot += g * w;
    ng += g * g;
    nw += w * w;
    l1 += std::fabs(g - w);
    l1w += std::fabs(w);
    mx = std::max(mx, std::fabs(g - w));
  }
  return {dot / std::sqrt(ng * nw), l1 / l1w, mx};
}

// Packed bytes of both parts, concatenated (codes then scales), for byte-for-byte comparison.
inline std::vector<std::uint8_t> bytes_of(const Tensor& codes, const Tensor& scales) {
  std::vector<std::uint8_t> a = codes.download<std::uint8_t>();
  const std::vector<std::uint8_t> b = scales.download<std::uint8_t>();
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// fp32 values of packed rows [.., D] (codes * scales, exact).
inline std::vector<float> dequantize_rows(const Fp4Packed& p) {
  using namespace sparq::cl_common;
  const auto c = p.codes.download<std::uint8_t>();
  const auto s = p.scales.download<std::uint8_t>();
  std::vector<float> out(c.size() * 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = sq_e2m1_decode(i % 2 ? sq_fp4_hi(c[i / 2]) : sq_fp4_lo(c[i / 2])) *
             sq_e4m3_decode(s[i / 16]);
  return out;
}
// fp32 values [BH, L, D] of a token-packed tensor.
inline std::vector<float> dequantize_tokens(const Fp4PackedT& p, int bh_count, int L, int D) {
  using namespace sparq::cl_common;
  const auto c = p.codes.download<std::uint8_t>();
  const auto s = p.scales.download<std::uint8_t>();
  const std::size_t L64 = (static_cast<std::size_t>(L) + 63) / 64 * 64;
  std::vector<float> out(static_cast<std::size_t>(bh_count) * L * D);
  for (int bh = 0; bh < bh_count; ++bh)
    for (int d = 0; d < D; ++d)
      for (int t = 0; t < L; ++t) {
        const std::size_t i = (static_cast<std::size_t>(bh) * D + d) * L64 + t;
        out[(static_cast<std::size_t>(bh) * L + t) * D + d] =
            sq_e2m1_decode(i % 2 ? sq_fp4_hi(c[i / 2]) : sq_fp4_lo(c[i / 2])) *
            sq_e4m3_decode(s[i / 16]);
      }
  return out;
}

}  // namespace sparq::test
