#pragma OPENCL FP_CONTRACT OFF
// sage8.cl — Precision::int8 attention (SageAttention 1/2 style, specs/fp4_attention.md §5) on
// pre-quantized int8 Q/K/V (kernels_cl/quant/int8_quant.cl), portable integer path (any OpenCL
// device). The defined arithmetic order is in attention/sage8_common.h (the 64-key tile step
// inside 4096-key chunks, chunk states merged left to right); this kernel, the NVIDIA kernel
// sage8_mma.cl (inline PTX mma.sync), sage8_decode.cl (Lq <= 127) and
// fallback_cpu/attention/sage8.cpp compute it, so all give the same bits.
//
// Macros: HEAD_DIM (64 or 128). SAGE8_SPARSE (0/1): 1 walks a sparq::SparseIndex instead of the
// dense tiles (definition and staging helpers: attention/sage8_sparse.h; extra arguments
// SAGE8_SPARSE_ARGS). Launch: local (128), global (128 * nqb, Hq, B); work-group x owns query rows
// [64 qb, 64 qb + 64) with qb = qb0 + nqb - 1 - x (heavy causal blocks first). 64 rows lie in one
// 128-row Q scale block, so sq and the delta row are per work-group; a dense 64-key tile is one K
// scale block (a sparse step stages each slot's key, position and K scale in local memory).
//
// Work split (never changes an operation or its order):
//  - score phase: work-item (rg, cg) = (lid / 16, lid % 16) owns rows rg + 8kk (kk < 8), keys
//    cg + 16t (t < 4); S2 goes to local memory (-inf for invisible keys);
//  - softmax phase: work-items lid and lid + 64 both own row lid % 64 (identical copies of m and
//    l, PoCL note in attention_common.h); each folds the row's max, then quantizes P for its two
//    16-key groups;
//  - P.V phase: (rg, cg) owns rows rg + 8kk, channels cg + 16t;
//  - chunk end (every 64 tiles, and the last step; sparse: where the next tile's start >> 12
//    changes): the row's owners fold the chunk's (m, l) into the merge weights and the merged
//    lse (registers, identical copies) and publish the weights in local memory; after the next
//    barrier each (rg, cg) merges its O registers into its merged-output registers R and
//    restarts O at 0 (no extra barrier: the next step's first one, or the one after the loop).
#include "attention/attention_common.h"
#include "attention/sage8_common.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef SAGE8_SPARSE
#define SAGE8_SPARSE 0
#endif
#define DH HEAD_DIM
#define BM 64            // query rows per work-group
#define BN SQ_ATT_TILE   // keys per tile
#define NT 128           // work-items per work-group
#define QW (DH / 4 + 4)  // words per Q8 / K8 row in local memory (padded: conflict-free)
#define VW (BN / 4 + 4)  // words per V8 channel row / P8 row (64 codes + pad)
#define SW (BN + 1)      // floats per S2 row
#define AREA (DH * VW > BN * QW ? DH * VW : BN * QW)  // K8 tile, later the V8 tile

// 16-byte local stores (row strides QW, VW are multiples of 4 words; arrays 16-byte aligned).
#define ST4U(p, x) (*(__local uint4*)(p) = (x))
#include "attention/sage8_merge.h"  // chunk merges, the output
#include "attention/sage8_p.h"      // softmax step, P quantization
#include "attention/sage8_sparse.h"

static inline int dot4(uint a, uint b) {
  const char4 x = as_char4(a), y = as_char4(b);
  return (int)x.s0 * (int)y.s0 + (int)x.s1 * (int)y.s1 + (int)x.s2 * (int)y.s2 +
         (int)x.s3 * (int)y.s3;
}

#define OACC (8 * (DH / 16))  // per work-item: 8 rows x DH/16 channels
#if SQ_ATT_CHUNK % BN != 0
#error "the 4096-key chunks must be whole tiles"
#endif

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void sage8_attention(
    __global const uint* q8, __global const float* sq,  // [B,Hq,Lq,D], [B,Hq,ceil(Lq/128)]
    __global const uint* k8, __global const float* sk,  // [B,Hkv,Lk,D], [B,Hkv,ceil(Lk/64)]
    __global const uint* v8, __global const float* sv,  // [B,Hkv,D,Lk64], [B,Hkv,D,Lk64/16]
    __global const float* delta, int has_delta, int delta_rows, int delta_blk0, int delta_nblk,
    __global float* out, int hq, int group, int lq, int lk, int causal, float c, int qb0,
    int nqb SAGE8_SPARSE_ARGS) {
  __local uint qs[BM * QW] SQ_ATT_LOCAL_ALIGN;
  __local uint area[AREA] SQ_ATT_LOCAL_ALIGN;
  __local float sbuf[BM * SW];
  __local uint pq[BM * VW];
  __local float spl[BM * 4] SQ_ATT_LOCAL_ALIGN, svs[DH * 4] SQ_ATT_LOCAL_ALIGN, lgl[BM * 4];
  __local float alpha_l[BM];
  __local int skip_l[BM];
  __local float mw_wa[BM], mw_wb[BM], mw_s[BM], mw_l[BM];  // chunk merge weights per row
  __local int mw_mode[BM];

  const int lid = get_local_id(0);
  const int qb = qb0 + nqb - 1 - get_group_id(0), h = get_group_id(1), b = get_group_id(2);
  const int r0 = qb * BM;
  const int nrows = min(BM, lq - r0);
  const int hk = h / group, hkv = hq / group;
  const int lk64 = (lk + 63) / 64 * 64;
#if SAGE8_SPARSE
  __local int kid[BN], kps[BN], qpl[BM];
  __local float skl[BN];
  const long irow = ((long)b * hi_n + (share ? hk : h)) * ((lq + BM - 1) / BM) + qb;
  const int ntl = clamp(tcount[irow], 0, max_tiles), ncol = clamp(ccount[irow], 0, max_cols);
  const int nsteps = ntl + (ncol + BN - 1) / BN;
  for (int x = lid; x < BM; x += NT)  // rows past Lq: -1 (their results are never stored)
    qpl[x] = x < nrows ? (has_pos ? qpos[(long)b * lq + r0 + x] : lk - lq + r0 + x) : -1;
#else
  const int kend = sq_att_visible_end(r0 + nrows - 1, lq, lk, causal);
  const int nsteps = kend > 0 ? (kend + BN - 1) / BN : 0;
#endif
  const float sq_blk = sq[((long)b * hq + h) * ((lq + 127) / 128) + r0 / 128];
  __global const float* drow =
      delta +
      (has_delta ? (((long)b * hq + h) * delta_nblk + r0 / delta_rows - delta_blk0) * lk : 0);
  const long kv_bh = (long)b * hkv + hk;

  // Q8 rows of the block (rows >= nrows are zero codes: their results are never stored).
  for (int x = lid; x < BM * (DH / 16); x += NT) {
    const int r = x / (DH / 16), w = 4 * (x % (DH / 16));
    const uint4 y =
        r < nrows ? vload4(0, q8 + (((long)b * hq + h) * lq + r0 + r) * (DH / 4) + w) : (uint4)(0u);
    ST4U(qs + r * QW + w, y);
  }

  const int own = lid & (BM - 1), side = lid >> 6;
#if !SAGE8_SPARSE
  const int own_end = sq_att_visible_end(r0 + own, lq, lk, causal);
#endif
  float m_own = sq_att_neg_inf(), l_own = 0.0f, lse_r = sq_att_neg_inf();
  float o[OACC], o_r[OACC];  // this chunk's O; the merged output R of the chunks before it
  for (int x = 0; x < OACC; ++x) o[x] = o_r[x] = 0.0f;

  for (int n = 0; n < nsteps; ++n) {
#if SAGE8_SPARSE
    __global const int* ts = tstart + irow * max_tiles;
    const int is_tile = n < ntl, j0 = is_tile ? ts[n] : 0;
    // chunks (segments) by tile start >> 12; the column steps continue the last one
    const int merge_in = n > 0 && is_tile && (j0 >> 12) != (ts[n - 1] >> 12);
    const int chunk_end = n == nsteps - 1 || (n + 1 < ntl && (ts[n + 1] >> 12) != (j0 >> 12));
    barrier(CLK_LOCAL_MEM_FENCE);
    if (merge_in) MERGE_CHUNK();
    sq_s8_stage_slots(n, ntl, ncol, j0, cidx + irow * max_cols, lk, has_pos, kpos + (long)b * lk,
                      sk + kv_bh * (lk64 / 64), kid, kps, skl);
    barrier(CLK_LOCAL_MEM_FENCE);
    sq_s8_stage_k(area, k8 + kv_bh * lk * (DH / 4), kid);
#else
    const int j0 = n * BN;
    const int merge_in = n > 0 && n % SQ_ATT_TILES_PER_CHUNK == 0;
    const int chunk_end =
        n == nsteps - 1 || n % SQ_ATT_TILES_PER_CHUNK == SQ_ATT_TILES_PER_CHUNK - 1;
    const float sk_t = sk[kv_bh * (lk64 / 64) + n];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (merge_in) MERGE_CHUNK();
    for (int x = lid; x < BN * (DH / 16); x += NT) {
      const int jj = x / (DH / 16), w = 4 * (x % (DH / 16));
      const uint4 y =
          j0 + jj < lk ? vload4(0, k8 + (kv_bh * lk + j0 + jj) * (DH / 4) + w) : (uint4)(0u);
      ST4U(area + jj * QW + w, y);
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- scores S2 into sbuf (-inf where invisible) ----
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
#if SAGE8_SPARSE
        for (int t = 0; t < 4; ++t) {
          const int key = cg + 16 * t, vis = SAGE8_VIS(key, qpl[row]);
          float s2 = sq_s8_score(acc[kk][t], sq_blk, skl[key]);
          if (has_delta) s2 = sq_s8_score_delta(s2, drow[vis ? kid[key] : 0], c);
          sbuf[row * SW + key] = vis ? s2 : sq_att_neg_inf();
        }
#else
        const int ve = sq_att_visible_end(r0 + row, lq, lk, causal) - j0;
        for (int t = 0; t < 4; ++t) {
          const int key = cg + 16 * t;
          float s2 = sq_s8_score(acc[kk][t], sq_blk, sk_t);
          if (has_delta) s2 = sq_s8_score_delta(s2, drow[j0 + (key < ve ? key : 0)], c);
          sbuf[row * SW + key] = key < ve ? s2 : sq_att_neg_inf();
        }
#endif
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- stage the V8 tile and its scales (K8 is no longer read) ----
#if SAGE8_SPARSE
    sq_s8_stage_v(area, svs, is_tile, j0, lk64, v8 + kv_bh * DH * lk64 / 4,
                  sv + kv_bh * DH * (lk64 / 16), kid);
#else
    for (int x = lid; x < DH * (BN / 16); x += NT) {
      const int d = x / (BN / 16), w = 4 * (x % (BN / 16));
      ST4U(area + d * VW + w, vload4(0, v8 + ((kv_bh * DH + d) * lk64 + j0) / 4 + w));
    }
    for (int x = lid; x < DH * 4; x += NT)
      svs[x] = sv[(kv_bh * DH + x / 4) * (lk64 / 16) + 4 * n + (x & 3)];
#endif

    // ---- softmax: row max, P, per-16 quantization (row `own`, groups 2 side, 2 side + 1) ----
    {
      SAGE8_ROW_MAX();
      SAGE8_QUANTIZE_P();
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- l, then P.V: Ot[d] = ((U0 + U1) + U2) + U3; O = fma(O, alpha, Ot) ----
    if (!skip_l[own]) {
      const float lt = ((lgl[own * 4] + lgl[own * 4 + 1]) + lgl[own * 4 + 2]) + lgl[own * 4 + 3];
      l_own = fma(l_own, alpha_l[own], lt);
    }
    SAGE8_CLOSE_CHUNK();
    {
      const int rg = lid >> 4, cg = lid & 15;
      for (int kk = 0; kk < 8; ++kk) {
        const int row = rg + 8 * kk;
        if (skip_l[row]) continue;
        const float al = alpha_l[row];
        for (int t = 0; t < DH / 16; ++t) {
          const int d = cg + 16 * t;
#if SAGE8_SPARSE
          if (!is_tile) {  // column step: per-column terms (sage8_sparse.h)
            const float ot =
                sq_s8_column_pv(qpl[row], pq + row * VW, spl + row * 4, area + d * VW, kid, kps,
                                sv + (kv_bh * DH + d) * (lk64 / 16), causal, sink, window);
            o[kk * (DH / 16) + t] = fma(o[kk * (DH / 16) + t], al, ot);
            continue;
          }
#endif
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
  }

  // ---- out = R, after the last chunk's merge (0 for a row that sees no key) ----
  barrier(CLK_LOCAL_MEM_FENCE);
  if (nsteps > 0) MERGE_CHUNK();
  SAGE8_STORE_OUT();
}
