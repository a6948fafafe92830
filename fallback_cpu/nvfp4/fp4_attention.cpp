// Mirror of kernels_cl/nvfp4/fp4_attention.cl: FP4 attention (specs/fp4_attention.md §3-§4), one
// query row at a time, in the order the .cl banner defines (scores per key as delta + left fold
// of group terms; 64-key tiles ascending; tile max, two-level P quantization, P·V per group of
// 16 keys folded over the tile's 4 groups, online update with fma; final division).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "fallback_cpu/common/parallel_chunks.h"
#include "fallback_cpu/nvfp4/nvfp4_fallback.h"
#include "nvfp4/fp4_math.h"

namespace sparq::fallback::nvfp4 {

using namespace cl_common;

namespace {

// Twice values of a packed code array (element 2k low nibble).
void decode_twice(const std::uint8_t* packed, std::int64_t n, std::int8_t* out) {
  for (std::int64_t k = 0; k < n / 2; ++k) {
    out[2 * k] = static_cast<std::int8_t>(sq_e2m1_twice(sq_fp4_lo(packed[k])));
    out[2 * k + 1] = static_cast<std::int8_t>(sq_e2m1_twice(sq_fp4_hi(packed[k])));
  }
}
void decode_scales(const std::uint8_t* codes, std::int64_t n, float* out) {
  for (std::int64_t k = 0; k < n; ++k) out[k] = sq_e4m3_decode(codes[k]);
}

}  // namespace

void fp4_attention(const Fp4AttentionProblem& p) {
  const int D = p.d, G = D / SQ_FP4_GROUP, Lq = p.lq, Lk = p.lk, Lk64 = p.lk64;
  const int group = p.hq / p.hkv;
  const std::int64_t kv_heads = static_cast<std::int64_t>(p.batch) * p.hkv;
  // K and V decoded once: twice values (int8) and scales (fp32).
  std::vector<std::int8_t> ktw(static_cast<std::size_t>(kv_heads * Lk * D));
  std::vector<float> ksc(static_cast<std::size_t>(kv_heads * Lk * G));
  std::vector<std::int8_t> vtw(static_cast<std::size_t>(kv_heads * D * Lk64));
  std::vector<float> vsc(static_cast<std::size_t>(kv_heads * D * (Lk64 / SQ_FP4_GROUP)));
  parallel_chunks(kv_heads, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t bh = lo; bh < hi; ++bh) {
      const std::int64_t kn = static_cast<std::int64_t>(Lk) * D,
                         vn = static_cast<std::int64_t>(D) * Lk64;
      decode_twice(p.kc + bh * kn / 2, kn, ktw.data() + bh * kn);
      decode_scales(p.ks + bh * kn / SQ_FP4_GROUP, kn / SQ_FP4_GROUP,
                    ksc.data() + bh * kn / SQ_FP4_GROUP);
      decode_twice(p.vc + bh * vn / 2, vn, vtw.data() + bh * vn);
      decode_scales(p.vs + bh * vn / SQ_FP4_GROUP, vn / SQ_FP4_GROUP,
                    vsc.data() + bh * vn / SQ_FP4_GROUP);
    }
  });
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int nrows = p.row_end - p.row_begin;
  const std::int64_t rows = static_cast<std::int64_t>(p.batch) * p.hq * nrows;
  parallel_chunks(rows, 16, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::int8_t> qtw(static_cast<std::size_t>(D));
    std::vector<float> qsc(static_cast<std::size_t>(G)), O(static_cast<std::size_t>(D));
    for (std::int64_t task = lo; task < hi; ++task) {
      const std::int64_t bh = task / nrows;
      const int i = p.row_begin + static_cast<int>(task - bh * nrows);
      const std::int64_t row = bh * Lq + i;
      const std::int64_t b = bh / p.hq;
      const int h = static_cast<int>(bh - b * p.hq);
      const std::int64_t kvh = b * p.hkv + h / group;
      decode_twice(p.qc + row * D / 2, D, qtw.data());
      decode_scales(p.qs + row * G, G, qsc.data());
      const float* delta =
          p.delta ? p.delta + (bh * p.delta_nblk + i / p.delta_rows - p.delta_blk0) * Lk : nullptr;
      const std::int8_t* kt = ktw.data() + kvh * Lk * D;
      const float* ks = ksc.data() + kvh * Lk * G;
      const std::int8_t* vt = vtw.data() + kvh * D * Lk64;
      const float* vs = vsc.data() + kvh * D * (Lk64 / SQ_FP4_GROUP);
      // Keys j < limit are visible (causal: bottom-right aligned).
      const std::int64_t limit =
          p.causal ? std::min<std::int64_t>(Lk, static_cast<std::int64_t>(i) + (Lk - Lq) + 1) : Lk;
      float m = neg_inf, mu_old = neg_inf, l = 0.0f;
      for (float& o : O) o = 0.0f;
      for (std::int64_t j0 = 0; j0 < limit; j0 += SQ_FP4_TILE) {
        float S[SQ_FP4_TILE];
        float tmax = neg_inf;
        for (int t = 0; t < SQ_FP4_TILE; ++t) {
          const std::int64_t j = j0 + t;
          float s = neg_inf;
          if (j < limit) {
            s = delta ? delta[j] : 0.0f;
            for (int g = 0; g < G; ++g) {
              int I = 0;
              for (int e = 0; e < SQ_FP4_GROUP; ++e)
                I += qtw[g * SQ_FP4_GROUP + e] * kt[j * D + g * SQ_FP4_GROUP + e];
              s = s + sq_fp4_group_term(I, qsc[g], ks[j * G + g]);
            }
          }
          S[t] = s;
          tmax = sq_mx(tmax, s);
        }
        const float m_new = sq_mx(m, tmax);
        if (m_new == neg_inf) continue;
        const float mu_new = m_new * p.c;
        // Two-level P quantization per group of 16 keys (twice values, scales, row sums).
        int ptw[SQ_FP4_TILE];
        float sp[4], Lh[4];
        for (int hgrp = 0; hgrp < 4; ++hgrp) {
          float pt[SQ_FP4_GROUP];
          for (int e = 0; e < SQ_FP4_GROUP; ++e) {
            const int t = hgrp * SQ_FP4_GROUP + e;
            pt[e] = j0 + t < limit ? sq_fp4_p_level1(S[t], p.c, mu_new) : 0.0f;
          }
          std::uint8_t bytes[SQ_FP4_GROUP / 2];
          const std::uint32_t sc = sq_fp4_quant16(pt, bytes);
          sp[hgrp] = sq_e4m3_decode(sc);
          int sum = 0;
          for (int k = 0; k < SQ_FP4_GROUP / 2; ++k) {
            ptw[hgrp * SQ_FP4_GROUP + 2 * k] = sq_e2m1_twice(sq_fp4_lo(bytes[k]));
            ptw[hgrp * SQ_FP4_GROUP + 2 * k + 1] = sq_e2m1_twice(sq_fp4_hi(bytes[k]));
            sum += ptw[hgrp * SQ_FP4_GROUP + 2 * k] + ptw[hgrp * SQ_FP4_GROUP + 2 * k + 1];
          }
          Lh[hgrp] = sq_fp4_p_group_sum(sum, sp[hgrp]);
        }
        const float Lt = ((Lh[0] + Lh[1]) + Lh[2]) + Lh[3];
        const float alpha = sq_exp2(mu_old - mu_new);
        const std::int64_t vg0 = j0 / SQ_FP4_GROUP;
        for (int d = 0; d < D; ++d) {
          const std::int8_t* vrow = vt + static_cast<std::int64_t>(d) * Lk64 + j0;
          const float* vsrow = vs + static_cast<std::int64_t>(d) * (Lk64 / SQ_FP4_GROUP) + vg0;
          float U[4];
          for (int hgrp = 0; hgrp < 4; ++hgrp) {
            int I = 0;
            for (int e = 0; e < SQ_FP4_GROUP; ++e)
              I += ptw[hgrp * SQ_FP4_GROUP + e] * vrow[hgrp * SQ_FP4_GROUP + e];
            U[hgrp] = sq_fp4_group_term(I, sp[hgrp], vsrow[hgrp]);
          }
          const float Ot = ((U[0] + U[1]) + U[2]) + U[3];
          O[d] = sq_fma(O[d], alpha, Ot);
        }
        l = sq_fma(l, alpha, Lt);
        m = m_new;
        mu_old = mu_new;
      }
      float* out = p.out + row * D;
      for (int d = 0; d < D; ++d) out[d] = l == 0.0f ? 0.0f : O[d] / l;
    }
  });
}

}  // namespace sparq::fallback::nvfp4
