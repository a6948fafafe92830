#pragma OPENCL FP_CONTRACT OFF
// sage8.cl — Precision::int8 attention (SageAttention 1/2 style, specs/fp4_attention.md §5) on
// pre-quantized int8 Q/K/V (kernels_cl/quant/int8_quant.cl). The defined arithmetic order is in
// attention/sage8_common.h; every executor (this kernel with or without SAGE8_MMA, and
// fallback_cpu/attention/sage8.cpp) computes it, so all give the same bits.
//
// Macros: HEAD_DIM (64 or 128). SAGE8_MMA (0/1): 1 computes the two integer matrix products
// (QK^T per tile, P.V per 16-key group) with inline PTX mma.sync int8 (m16n8k32, m16n8k16);
// set only on NVIDIA devices (device quirk inline_ptx). The integers are exact either way, and
// all float arithmetic around them is the same code, so both variants give identical bits.
// Launch: local (128), global (128 * nqb, Hq, B); work-group x owns query rows [64 qb, 64 qb + 64)
// with qb = qb0 + nqb - 1 - x (heavy causal blocks first). 64 rows lie in one 128-row Q scale
// block, so sq and the delta row are per work-group; a 64-key tile is one K scale block.
//
// Work split (never changes an operation or its order):
//  - score phase: portable: work-item (rg, cg) = (lid / 16, lid % 16) owns rows rg + 8kk (kk < 8),
//    keys cg + 16t (t < 4); MMA: warp w owns rows 16w..16w+15 (fragment layout of PTX ISA
//    "mma.m16n8k32"). S2 goes to local memory (-inf for invisible keys);
//  - softmax phase: work-items lid and lid + 64 both own row lid % 64 (identical copies of m and
//    l, PoCL note in attention_common.h); each folds the row's max, then quantizes P for its two
//    16-key groups;
//  - P.V phase: portable: (rg, cg) owns rows rg + 8kk, channels cg + 16t; MMA: warp w owns rows
//    16w.., lane (g, t) channels 8n + 2t, 8n + 2t + 1 of rows g, g + 8.
#include "attention/attention_common.h"
#include "attention/sage8_common.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef SAGE8_MMA
#define SAGE8_MMA 0
#endif
#define DH HEAD_DIM
#define BM 64            // query rows per work-group
#define BN SQ_ATT_TILE   // keys per tile
#define NT 128           // work-items per work-group
#define QW (DH / 4 + 4)  // words per Q8 / K8 row in local memory (padded: conflict-free)
#define VW (BN / 4 + 4)  // words per V8 channel row / P8 row (64 codes + pad)
#define SW (BN + 1)      // floats per S2 row
#define AREA (DH * VW > BN * QW ? DH * VW : BN * QW)  // K8 tile, later the V8 tile

static inline int dot4(uint a, uint b) {
  const char4 x = as_char4(a), y = as_char4(b);
  return (int)x.s0 * (int)y.s0 + (int)x.s1 * (int)y.s1 + (int)x.s2 * (int)y.s2 +
         (int)x.s3 * (int)y.s3;
}

#if SAGE8_MMA
// NVIDIA's OpenCL compiler takes GNU `asm` (design/NVIDIA_OPENCL.md); clang's OpenCL mode (used to
// compile-check this path to PTX off the GPU) spells it __asm__.
#ifdef __clang__
#define SQ_ASM __asm__
#else
#define SQ_ASM asm
#endif
// D = A(16x32 int8, row) * B(32x8 int8, col) + C, int32 (exact).
static inline void mma_k32(int* d, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1) {
  int d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
  SQ_ASM volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+r"(d0), "+r"(d1), "+r"(d2), "+r"(d3)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  d[0] = d0;
  d[1] = d1;
  d[2] = d2;
  d[3] = d3;
}
// D = A(16x16 int8, row) * B(16x8 int8, col), int32 (zero C: one 16-key group).
static inline void mma_k16(int* d, uint a0, uint a1, uint b0) {
  int d0 = 0, d1 = 0, d2 = 0, d3 = 0;
  SQ_ASM volatile(
      "mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
      "{%0,%1,%2,%3};"
      : "+r"(d0), "+r"(d1), "+r"(d2), "+r"(d3)
      : "r"(a0), "r"(a1), "r"(b0));
  d[0] = d0;
  d[1] = d1;
  d[2] = d2;
  d[3] = d3;
}
#define OACC (DH / 2)  // per lane: 2 rows x 2 channels x DH/8 n-tiles
#else
#define OACC (8 * (DH / 16))  // per work-item: 8 rows x DH/16 channels
#endif

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void sage8_attention(
    __global const uint* q8, __global const float* sq,  // [B,Hq,Lq,D], [B,Hq,ceil(Lq/128)]
    __global const uint* k8, __global const float* sk,  // [B,Hkv,Lk,D], [B,Hkv,ceil(Lk/64)]
    __global const uint* v8, __global const float* sv,  // [B,Hkv,D,Lk64], [B,Hkv,D,Lk64/16]
    __global const float* delta, int has_delta, int delta_rows, int delta_blk0, int delta_nblk,
    __global float* out, int hq, int group, int lq, int lk, int causal, float c, int qb0, int nqb) {
  __local uint qs[BM * QW];
  __local uint area[AREA];
  __local float sbuf[BM * SW];
  __local uint pq[BM * VW];
  __local float spl[BM * 4], lgl[BM * 4], svs[DH * 4];
  __local float alpha_l[BM], lrow[BM];
  __local int skip_l[BM];

  const int lid = get_local_id(0);
  const int qb = qb0 + nqb - 1 - get_group_id(0), h = get_group_id(1), b = get_group_id(2);
  const int r0 = qb * BM;
  const int nrows = min(BM, lq - r0);
  const int hk = h / group, hkv = hq / group;
  const int lk64 = (lk + 63) / 64 * 64;
  const int kend = sq_att_visible_end(r0 + nrows - 1, lq, lk, causal);
  const int ntiles = kend > 0 ? (kend + BN - 1) / BN : 0;
  const float sq_blk = sq[((long)b * hq + h) * ((lq + 127) / 128) + r0 / 128];
  __global const float* drow =
      delta +
      (has_delta ? (((long)b * hq + h) * delta_nblk + r0 / delta_rows - delta_blk0) * lk : 0);
  const long kv_bh = (long)b * hkv + hk;

  // Q8 rows of the block (rows >= nrows are zero codes: their results are never stored).
  for (int x = lid; x < BM * (DH / 4); x += NT) {
    const int r = x / (DH / 4), w = x % (DH / 4);
    qs[r * QW + w] = r < nrows ? q8[(((long)b * hq + h) * lq + r0 + r) * (DH / 4) + w] : 0u;
  }

#if SAGE8_MMA
  // The warp's A fragments of Q (rows 16w + g, 16w + g + 8), kept in registers for all tiles.
  uint qa[DH / 32][4];
  barrier(CLK_LOCAL_MEM_FENCE);
  {
    const int ra = 16 * (lid >> 5) + ((lid & 31) >> 2), t = lid & 3;
    for (int ks = 0; ks < DH / 32; ++ks) {
      const int w = 8 * ks + t;
      qa[ks][0] = qs[ra * QW + w];
      qa[ks][1] = qs[(ra + 8) * QW + w];
      qa[ks][2] = qs[ra * QW + w + 4];
      qa[ks][3] = qs[(ra + 8) * QW + w + 4];
    }
  }
#endif
  const int own = lid & (BM - 1), side = lid >> 6;
  const int own_end = sq_att_visible_end(r0 + own, lq, lk, causal);
  float m_own = sq_att_neg_inf(), l_own = 0.0f;
  float o[OACC];
  for (int x = 0; x < OACC; ++x) o[x] = 0.0f;

  for (int n = 0; n < ntiles; ++n) {
    const int j0 = n * BN;
    const float sk_t = sk[kv_bh * (lk64 / 64) + n];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = lid; x < BN * (DH / 4); x += NT) {
      const int jj = x / (DH / 4), w = x % (DH / 4);
      area[jj * QW + w] = j0 + jj < lk ? k8[(kv_bh * lk + j0 + jj) * (DH / 4) + w] : 0u;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- scores S2 into sbuf (-inf where invisible) ----
#if SAGE8_MMA
    {
      const int warp = lid >> 5, lane = lid & 31, g = lane >> 2, t = lane & 3;
      const int ra = 16 * warp + g;
      for (int nt = 0; nt < BN / 8; ++nt) {
        int acc[4] = {0, 0, 0, 0};
        for (int ks = 0; ks < DH / 32; ++ks) {
          const int w = 8 * ks + t;
          mma_k32(acc, qa[ks][0], qa[ks][1], qa[ks][2], qa[ks][3], area[(8 * nt + g) * QW + w],
                  area[(8 * nt + g) * QW + w + 4]);
        }
        for (int e = 0; e < 4; ++e) {
          const int row = ra + 8 * (e >> 1), key = 8 * nt + 2 * t + (e & 1);
          const int ve = sq_att_visible_end(r0 + row, lq, lk, causal) - j0;
          float s2 = sq_s8_score(acc[e], sq_blk, sk_t);
          if (has_delta) s2 = sq_s8_score_delta(s2, drow[j0 + (key < ve ? key : 0)], c);
          sbuf[row * SW + key] = key < ve ? s2 : sq_att_neg_inf();
        }
      }
    }
#else
    {
      const int rg = lid >> 4, cg = lid & 15;
      int acc[8][4];
      for (int kk = 0; kk < 8; ++kk)
        for (int t = 0; t < 4; ++t) acc[kk][t] = 0;
      for (int w = 0; w < DH / 4; ++w) {
        uint kw[4];
        for (int t = 0; t < 4; ++t) kw[t] = area[(cg + 16 * t) * QW + w];
        for (int kk = 0; kk < 8; ++kk) {
          const uint qv = qs[(rg + 8 * kk) * QW + w];
          for (int t = 0; t < 4; ++t) acc[kk][t] += dot4(qv, kw[t]);
        }
      }
      for (int kk = 0; kk < 8; ++kk) {
        const int row = rg + 8 * kk;
        const int ve = sq_att_visible_end(r0 + row, lq, lk, causal) - j0;
        for (int t = 0; t < 4; ++t) {
          const int key = cg + 16 * t;
          float s2 = sq_s8_score(acc[kk][t], sq_blk, sk_t);
          if (has_delta) s2 = sq_s8_score_delta(s2, drow[j0 + (key < ve ? key : 0)], c);
          sbuf[row * SW + key] = key < ve ? s2 : sq_att_neg_inf();
        }
      }
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- stage the V8 tile and its scales (K8 is no longer read) ----
    for (int x = lid; x < DH * (BN / 4); x += NT) {
      const int d = x / (BN / 4), w = x % (BN / 4);
      area[d * VW + w] = v8[((kv_bh * DH + d) * lk64 + j0) / 4 + w];
    }
    for (int x = lid; x < DH * 4; x += NT)
      svs[x] = sv[(kv_bh * DH + x / 4) * (lk64 / 16) + 4 * n + (x & 3)];

    // ---- softmax: row max, P, per-16 quantization (row `own`, groups 2 side, 2 side + 1) ----
    {
      const int ve = min(own_end - j0, BN);
      float mt = sq_att_neg_inf();
      for (int jj = 0; jj < ve; ++jj) mt = sq_mx(mt, sbuf[own * SW + jj]);
      const float m_new = sq_mx(m_own, mt);
      const bool skip = ve <= 0 || m_new == sq_att_neg_inf();
      if (side == 0) {
        alpha_l[own] = skip ? 1.0f : sq_exp2(m_own - m_new);
        skip_l[own] = skip;
      }
      for (int gi = 0; gi < 2; ++gi) {
        const int gr = 2 * side + gi;
        float p[16];
        uint amax = 0;
        for (int u = 0; u < 16; ++u) {
          const int jj = 16 * gr + u;
          p[u] = (!skip && jj < ve) ? sq_exp2_q(sbuf[own * SW + jj] - m_new) : 0.0f;
          amax = max(amax, sq_i8_absbits(p[u]));
        }
        const float sp = sq_i8_scale(amax);
        int psum = 0;
        for (int x = 0; x < 4; ++x) {
          uint word = 0;
          for (int e = 0; e < 4; ++e) {
            const int code = sq_i8_code(p[4 * x + e], sp, 0.0f);
            psum += code;
            word |= (uint)code << (8 * e);
          }
          pq[own * VW + 4 * gr + x] = word;
        }
        spl[own * 4 + gr] = sp;
        lgl[own * 4 + gr] = sq_s8_row_term(psum, sp);
      }
      if (!skip) m_own = m_new;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- l, then P.V: Ot[d] = ((U0 + U1) + U2) + U3; O = fma(O, alpha, Ot) ----
    if (!skip_l[own]) {
      const float lt = ((lgl[own * 4] + lgl[own * 4 + 1]) + lgl[own * 4 + 2]) + lgl[own * 4 + 3];
      l_own = fma(l_own, alpha_l[own], lt);
    }
#if SAGE8_MMA
    {
      const int warp = lid >> 5, lane = lid & 31, g = lane >> 2, t = lane & 3;
      const int ra = 16 * warp + g;
      const bool skip0 = skip_l[ra], skip1 = skip_l[ra + 8];
      const float al0 = alpha_l[ra], al1 = alpha_l[ra + 8];
      for (int nt = 0; nt < DH / 8; ++nt) {
        float ot[4];
        for (int gr = 0; gr < 4; ++gr) {
          int dd[4];
          mma_k16(dd, pq[ra * VW + 4 * gr + t], pq[(ra + 8) * VW + 4 * gr + t],
                  area[(8 * nt + g) * VW + 4 * gr + t]);
          for (int e = 0; e < 4; ++e) {
            const int row = ra + 8 * (e >> 1), d = 8 * nt + 2 * t + (e & 1);
            const float u = sq_s8_pv_term(dd[e], spl[row * 4 + gr], svs[d * 4 + gr]);
            ot[e] = gr == 0 ? u : ot[e] + u;
          }
        }
        for (int e = 0; e < 4; ++e) {
          const bool sk_row = (e >> 1) ? skip1 : skip0;
          if (!sk_row) o[4 * nt + e] = fma(o[4 * nt + e], (e >> 1) ? al1 : al0, ot[e]);
        }
      }
    }
#else
    {
      const int rg = lid >> 4, cg = lid & 15;
      for (int kk = 0; kk < 8; ++kk) {
        const int row = rg + 8 * kk;
        if (skip_l[row]) continue;
        const float al = alpha_l[row];
        for (int t = 0; t < DH / 16; ++t) {
          const int d = cg + 16 * t;
          float ot = 0.0f;
          for (int gr = 0; gr < 4; ++gr) {
            int dot = 0;
            for (int x = 0; x < 4; ++x)
              dot += dot4(pq[row * VW + 4 * gr + x], area[d * VW + 4 * gr + x]);
            const float u = sq_s8_pv_term(dot, spl[row * 4 + gr], svs[d * 4 + gr]);
            ot = gr == 0 ? u : ot + u;
          }
          o[kk * (DH / 16) + t] = fma(o[kk * (DH / 16) + t], al, ot);
        }
      }
    }
#endif
  }

  // ---- out = O / l (0 for a row that sees no key) ----
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid < BM) lrow[lid] = l_own;
  barrier(CLK_LOCAL_MEM_FENCE);
  __global float* ob = out + (((long)b * hq + h) * lq + r0) * DH;
#if SAGE8_MMA
  {
    const int warp = lid >> 5, lane = lid & 31, g = lane >> 2, t = lane & 3;
    for (int nt = 0; nt < DH / 8; ++nt)
      for (int e = 0; e < 4; ++e) {
        const int row = 16 * warp + g + 8 * (e >> 1), d = 8 * nt + 2 * t + (e & 1);
        if (row < nrows) ob[row * DH + d] = sq_s8_out(o[4 * nt + e], lrow[row]);
      }
  }
#else
  {
    const int rg = lid >> 4, cg = lid & 15;
    for (int kk = 0; kk < 8; ++kk) {
      const int row = rg + 8 * kk;
      if (row < nrows)
        for (int t = 0; t < DH / 16; ++t)
          ob[row * DH + cg + 16 * t] = sq_s8_out(o[kk * (DH / 16) + t], lrow[row]);
    }
  }
#endif
}
