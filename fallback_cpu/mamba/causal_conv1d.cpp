// Fallback twin of kernels_cl/mamba/causal_conv1d.cl: the same defined order per output (bias,
// then taps k = 0..W-1 with fma, no term before a sequence start without an initial state, then
// silu), and the same raw-copy state rows (increasing j, so in place is safe).
#include "mamba/conv_math.h"
#include "mamba_fallback.h"

namespace sparq::fallback::mamba {

using namespace sparq::cl_common;

void causal_conv1d(const ConvProblem& p) {
  const std::int64_t n = p.batch * p.D * p.L;
  parallel_chunks(n, 1 << 14, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const std::int64_t row = i / p.L, t = i - row * p.L, b = row / p.D, d = row - b * p.D;
      const int s = p.nseq ? sq_seq_of(p.cu, p.nseq, t) : 0;
      const std::int64_t start = p.nseq ? p.cu[s] : 0, st = p.nseq ? s : b;
      float acc = p.bias ? p.bias.at(d) : 0.0f;
      for (std::int64_t k = 0; k < p.W; ++k) {
        const std::int64_t pos = t - (p.W - 1) + k;
        const float wk = p.w.at(d * p.W + k);
        if (pos >= start)
          acc = sq_fma(wk, p.x.at(b * p.x.s0 + d * p.x.s1 + pos), acc);
        else if (p.init)
          acc = sq_fma(wk, p.init.at(st * p.init.s0 + d * p.init.s1 + (p.W - 1) + (pos - start)),
                       acc);
      }
      store_any(p.out, i, p.out_dtype, sq_conv_act(acc, p.silu ? 1 : 0));
    }
  });
}

void conv1d_states(const ConvStateProblem& p) {
  const std::size_t es = p.x.dtype == 0 ? 4 : 2;
  parallel_chunks(p.states * p.D, 256, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const std::int64_t st = r / p.D, d = r - st * p.D, b = p.nseq ? 0 : st;
      const std::int64_t start = p.nseq ? p.cu[st] : 0;
      const std::int64_t len = p.nseq ? p.cu[st + 1] - start : p.L;
      for (std::int64_t j = 0; j < p.S_out; ++j) {
        const std::int64_t e = p.S_src + len - p.S_out + j;
        const std::byte* from = nullptr;
        if (e >= p.S_src)
          from = p.x.p + (b * p.x.s0 + d * p.x.s1 + start + (e - p.S_src)) * es;
        else if (e >= 0 && p.S_src > 0)
          from = p.src.p + (st * p.src.s0 + d * p.src.s1 + e) * es;
        std::byte* to = p.dst + (st * p.dst_s0 + d * p.dst_s1 + j) * es;
        if (from)
          std::memmove(to, from, es);
        else
          std::memset(to, 0, es);
      }
    }
  });
}

}  // namespace sparq::fallback::mamba
