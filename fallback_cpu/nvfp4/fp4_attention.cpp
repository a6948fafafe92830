// Mirror of kernels_cl/nvfp4/fp4_attention.cl: FP4 attention (specs/fp4_attention.md §3-§4), one
// query row at a time, in the order the .cl banner defines (scores per key as delta + left fold
// of group terms; 64-key tiles ascending; tile max, two-level P quantization, P·V per group of
// 16 keys folded over the tile's 4 groups, online update with fma; the state restarted at each
// 4096-key chunk (sparse: segment) and the chunk states (O / l, mu + log2 l) merged left to
// right by merge_states' formula, attention_common.h). fp4_decode.cl computes the same bits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention/attention_common.h"
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
    std::vector<float> qsc(static_cast<std::size_t>(G)), O(static_cast<std::size_t>(D)),
        R(static_cast<std::size_t>(D));
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
      float m = neg_inf, mu_old = neg_inf, l = 0.0f;
      for (float& o : O) o = 0.0f;
      // One step: 64 slots holding keys key[t] (-1: none), vis[t] = visible to row i; a tile
      // (keys j0 + t, j0 % 16 == 0) or a column chunk (P·V per column, §4.6).
      auto step = [&](const int* key, const bool* vis, bool is_tile, std::int64_t j0) {
        float S[SQ_FP4_TILE];
        float tmax = neg_inf;
        for (int t = 0; t < SQ_FP4_TILE; ++t) {
          float s = neg_inf;
          if (vis[t]) {
            const std::int64_t j = key[t];
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
        if (m_new == neg_inf) return;
        const float mu_new = m_new * p.c;
        // Two-level P quantization per group of 16 slots (twice values, scales, row sums).
        int ptw[SQ_FP4_TILE];
        float sp[4], Lh[4];
        for (int hgrp = 0; hgrp < 4; ++hgrp) {
          float pt[SQ_FP4_GROUP];
          for (int e = 0; e < SQ_FP4_GROUP; ++e) {
            const int t = hgrp * SQ_FP4_GROUP + e;
            pt[e] = vis[t] ? sq_fp4_p_level1(S[t], p.c, mu_new) : 0.0f;
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
        const std::int64_t nvg = Lk64 / SQ_FP4_GROUP;
        for (int d = 0; d < D; ++d) {
          const std::int8_t* vrow = vt + static_cast<std::int64_t>(d) * Lk64;
          const float* vsrow = vs + static_cast<std::int64_t>(d) * nvg;
          float U[4];
          for (int hgrp = 0; hgrp < 4; ++hgrp) {
            if (is_tile) {  // one exact group product; tokens >= Lk64: code 0, scale 0
              const std::int64_t vg = j0 / SQ_FP4_GROUP + hgrp;
              int I = 0;
              for (int e = 0; e < SQ_FP4_GROUP; ++e) {
                const std::int64_t j = j0 + hgrp * SQ_FP4_GROUP + e;
                I += ptw[hgrp * SQ_FP4_GROUP + e] * (j < Lk64 ? vrow[j] : 0);
              }
              U[hgrp] = sq_fp4_group_term(I, sp[hgrp], vg < nvg ? vsrow[vg] : 0.0f);
            } else {  // columns: left fold of per-column terms over slots with a nonzero P code
              float u = 0.0f;
              for (int e = 0; e < SQ_FP4_GROUP; ++e) {
                const int t = hgrp * SQ_FP4_GROUP + e;
                if (ptw[t] == 0) continue;
                u = u + sq_fp4_group_term(ptw[t] * vrow[key[t]], sp[hgrp],
                                          vsrow[key[t] / SQ_FP4_GROUP]);
              }
              U[hgrp] = u;
            }
          }
          const float Ot = ((U[0] + U[1]) + U[2]) + U[3];
          O[d] = sq_fma(O[d], alpha, Ot);
        }
        l = sq_fma(l, alpha, Lt);
        m = m_new;
        mu_old = mu_new;
      };
      // Chunk boundaries: the state (m, mu, l, O) restarts from empty; the closed chunk's
      // (O / l, mu + log2 l) is merged into R (starts empty) by merge_states' formula.
      float lse_r = neg_inf;
      for (float& x : R) x = 0.0f;
      auto close_chunk = [&] {
        const SqAttMerge w = sq_att_merge_weights(lse_r, sq_att_chunk_lse(mu_old, l));
        for (int d = 0; d < D; ++d) R[d] = sq_att_merge_out(w, R[d], sq_att_chunk_out(O[d], l));
        lse_r = w.lse;
        m = neg_inf;
        mu_old = neg_inf;
        l = 0.0f;
        for (float& o : O) o = 0.0f;
      };
      int key[SQ_FP4_TILE];
      bool vis[SQ_FP4_TILE];
      if (!p.sparse) {
        // Keys j < limit are visible (causal: bottom-right aligned); 4096-key chunks, each from
        // a fresh state, tiles while j0 < limit.
        const std::int64_t limit =
            p.causal ? std::min<std::int64_t>(Lk, static_cast<std::int64_t>(i) + (Lk - Lq) + 1)
                     : Lk;
        for (std::int64_t c0 = 0; c0 < Lk; c0 += SQ_ATT_CHUNK) {
          for (std::int64_t j0 = c0; j0 < std::min(limit, c0 + SQ_ATT_CHUNK); j0 += SQ_FP4_TILE) {
            for (int t = 0; t < SQ_FP4_TILE; ++t) {
              key[t] = static_cast<int>(j0) + t;
              vis[t] = j0 + t < limit;
            }
            step(key, vis, true, j0);
          }
          close_chunk();
        }
      } else {
        const Fp4SparseSteps& x = *p.sparse;
        const int nqb = (Lq + SQ_FP4_TILE - 1) / SQ_FP4_TILE;
        const std::int64_t irow = (b * x.hi_n + (x.share ? h / group : h)) * nqb + i / SQ_FP4_TILE;
        const int nt = std::clamp(x.tcount[irow], 0, x.max_tiles);
        const int ncol = std::clamp(x.ccount[irow], 0, x.max_cols);
        const int qp = x.qpos ? x.qpos[b * Lq + i] : x.off + i;
        auto slot = [&](int t, int j) {
          key[t] = j >= 0 && j < Lk ? j : -1;
          const int kp = key[t] < 0 ? 0 : (x.kpos ? x.kpos[b * Lk + j] : j);
          vis[t] = key[t] >= 0 && (!p.causal || kp <= qp) &&
                   (x.window <= 0 || kp < x.sink || kp > qp - x.window);
        };
        // Segments: a tile whose start / 4096 differs from the previous tile's closes the
        // chunk before it; the columns continue the last segment.
        for (int n = 0; n < nt; ++n) {
          const int j0 = x.tstart[irow * x.max_tiles + n];
          if (n > 0 && j0 / SQ_ATT_CHUNK != x.tstart[irow * x.max_tiles + n - 1] / SQ_ATT_CHUNK)
            close_chunk();
          for (int t = 0; t < SQ_FP4_TILE; ++t) slot(t, j0 + t);
          step(key, vis, true, j0);
        }
        for (int c0 = 0; c0 < ncol; c0 += SQ_FP4_TILE) {
          for (int t = 0; t < SQ_FP4_TILE; ++t)
            slot(t, c0 + t < ncol ? x.cidx[irow * x.max_cols + c0 + t] : -1);
          step(key, vis, false, 0);
        }
        close_chunk();
      }
      std::copy(R.begin(), R.end(), p.out + row * D);
    }
  });
}

}  // namespace sparq::fallback::nvfp4
