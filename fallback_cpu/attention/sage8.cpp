// Fallback twin of kernels_cl/attention/sage8.cl and sage8_mma.cl: Precision::int8 attention on
// int8 Q/K/V in the defined order of kernels_cl/attention/sage8_common.h: per row, 4096-key chunk
// states (each the tile walk from a fresh state) merged left to right with attention_common.h's
// sq_att_merge_*. Rows are independent; one item per (batch, query head, block of 64 rows).
#include <algorithm>
#include <vector>

#include "attention/attention_common.h"
#include "attention/sage8_common.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "sage8_fallback.h"

namespace sparq::fallback {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

namespace {

void sage8_row(const Sage8Problem& p, std::int64_t b, std::int64_t h, std::int64_t i,
               std::vector<float>& oc, std::vector<float>& orow) {
  sage8_chunked_row(p, b, h, i, oc.data(), orow.data());
  float* out = p.out + ((b * p.hq + h) * p.lq + i) * p.d;
  std::copy(orow.begin(), orow.end(), out);
}

}  // namespace

void sage8_walk(const Sage8Problem& p, std::int64_t b, std::int64_t h, std::int64_t i,
                std::int64_t j_begin, std::int64_t j_end, float& m, float& l, float* o) {
  const std::int64_t D = p.d, hk = h / (p.hq / p.hkv);
  const std::int64_t lk64 = (p.lk + 63) / 64 * 64;
  const std::int8_t* q = p.q8 + ((b * p.hq + h) * p.lq + i) * D;
  const float sq = p.sq[(b * p.hq + h) * ((p.lq + 127) / 128) + i / 128];
  const float* drow =
      p.delta ? p.delta + ((b * p.hq + h) * p.delta_nblk + i / p.delta_rows - p.delta_blk0) * p.lk
              : nullptr;
  const std::int64_t kv = b * p.hkv + hk;
  for (std::int64_t j0 = j_begin; j0 < j_end; j0 += 64) {
    const int nv = static_cast<int>(std::min<std::int64_t>(j_end - j0, 64));
    const float sk = p.sk[kv * (lk64 / 64) + j0 / 64];
    float s2[64];
    float mt = sq_att_neg_inf();
    for (int jj = 0; jj < nv; ++jj) {
      const std::int8_t* k = p.k8 + (kv * p.lk + j0 + jj) * D;
      int dot = 0;
      for (std::int64_t d = 0; d < D; ++d) dot += int{q[d]} * int{k[d]};
      float s = sq_s8_score(dot, sq, sk);
      if (drow) s = sq_s8_score_delta(s, drow[j0 + jj], p.c);
      s2[jj] = s;
      mt = sq_mx(mt, s);
    }
    const float m_new = sq_mx(m, mt);
    if (m_new == sq_att_neg_inf()) continue;
    const float alpha = sq_exp2(m - m_new);
    int p8[64];
    float sp[4], lg[4];
    for (int g = 0; g < 4; ++g) {
      float pv[16];
      uint amax = 0;
      for (int u = 0; u < 16; ++u) {
        const int jj = 16 * g + u;
        pv[u] = jj < nv ? sq_exp2_q(s2[jj] - m_new) : 0.0f;
        amax = std::max(amax, sq_i8_absbits(pv[u]));
      }
      sp[g] = sq_i8_scale(amax);
      int psum = 0;
      for (int u = 0; u < 16; ++u) {
        p8[16 * g + u] = sq_i8_code(pv[u], sp[g], 0.0f);
        psum += p8[16 * g + u];
      }
      lg[g] = sq_s8_row_term(psum, sp[g]);
    }
    for (std::int64_t d = 0; d < D; ++d) {
      const std::int8_t* v = p.v8 + (kv * D + d) * lk64 + j0;
      const float* sv = p.sv + (kv * D + d) * (lk64 / 16) + j0 / 16;
      float ot = 0.0f;
      for (int g = 0; g < 4; ++g) {
        int dot = 0;
        for (int u = 0; u < 16; ++u) dot += p8[16 * g + u] * int{v[16 * g + u]};
        const float u = sq_s8_pv_term(dot, sp[g], sv[g]);
        ot = g == 0 ? u : ot + u;
      }
      o[d] = sq_fma(o[d], alpha, ot);
    }
    l = sq_fma(l, alpha, ((lg[0] + lg[1]) + lg[2]) + lg[3]);
    m = m_new;
  }
}

void sage8_chunked_row(const Sage8Problem& p, std::int64_t b, std::int64_t h, std::int64_t i,
                       float* oc, float* orow) {
  const std::int64_t D = p.d;
  const std::int64_t ve = sq_att_visible_end(static_cast<int>(i), static_cast<int>(p.lq),
                                             static_cast<int>(p.lk), p.causal ? 1 : 0);
  float lse_r = sq_att_neg_inf();
  std::fill(orow, orow + D, 0.0f);
  for (std::int64_t c0 = 0; c0 < std::min(p.lk, ve); c0 += SQ_ATT_CHUNK) {  // later chunks: empty
    const std::int64_t c1 = std::min<std::int64_t>(p.lk, c0 + SQ_ATT_CHUNK);
    float m = sq_att_neg_inf(), l = 0.0f;
    std::fill(oc, oc + D, 0.0f);
    sage8_walk(p, b, h, i, c0, std::min(c1, ve), m, l, oc);
    const SqAttMerge w = sq_att_merge_weights(lse_r, sq_att_chunk_lse(m, l));
    for (std::int64_t d = 0; d < D; ++d)
      orow[d] = sq_att_merge_out(w, orow[d], sq_att_chunk_out(oc[d], l));
    lse_r = w.lse;
  }
}

void sage8_attention(const Sage8Problem& p) {
  const std::int64_t rows = p.row1 - p.row0;
  const std::int64_t nblk = (rows + 63) / 64;
  parallel_chunks(p.batch * p.hq * nblk, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> oc(static_cast<std::size_t>(p.d)), orow(static_cast<std::size_t>(p.d));
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t bh = item / nblk, blk = item % nblk;
      const std::int64_t i0 = p.row0 + 64 * blk, i1 = std::min(p.row1, i0 + 64);
      for (std::int64_t i = i0; i < i1; ++i) sage8_row(p, bh / p.hq, bh % p.hq, i, oc, orow);
    }
  });
}

}  // namespace sparq::fallback
