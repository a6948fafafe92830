#pragma OPENCL FP_CONTRACT OFF
// sage8_decode.cl — Precision::int8 attention for short query blocks (decode, speculative
// verification: Lq = 1..127) against long KV, split at the 4096-key chunks (flash-decoding).
// Mirror: fallback_cpu/attention/sage8_decode.cpp. Inputs: the int8 tensors of
// sparq/int8_attention.h (sage8_quantize's layouts; Lq <= 127, so one Q scale and one delta row
// per (b, h)).
//
// DEFINED ARITHMETIC ORDER. Per query row i of (b, h): the keys are cut into chunks
// [4096c, 4096c + 4096) (attention_common.h's SQ_ATT_CHUNK). Each chunk starts from a fresh state
// (m = -inf, l = 0, O = 0) and walks its 64-key tiles in ascending order with exactly the tile
// step of sage8_common.h (int32 dot, S2 = ((float)I * sq) * sk, delta fma, running max, P by
// sq_exp2_q, per-16 int8 P, U/L group terms folded ((0 + 1) + 2) + 3, alpha = sq_exp2(m - m_new),
// O = fma(O, alpha, Ot), l = fma(l, alpha, Lt)). Chunk result C: o_c = l == 0 ? 0 : O / l,
// lse_c = l == 0 ? -inf : m + sq_log2(l) (m is already in log2 units). Chunks are merged left to
// right (chunk 0 first) into R (starts empty) by sq_att_merge_* (merge.cl's
// attention_merge_chunks); out = R's o. This is sage8_common.h's definition, which the prefill
// kernels sage8.cl / sage8_mma.cl follow too: this op equals sage8_attention_packed bit for bit
// at every Lk (and runs dense int8 calls with Lq <= 127, host run_sage8_slice).
//
// Macros: HEAD_DIM (64 or 128), QD_ROWS (query rows per work-group, 16). Launch: local (64),
// global (64 * ceil(G * Lq / QD_ROWS), nchunks, B * Hkv). Work-group (x, c, b * Hkv + hk) owns the
// rows r = QD_ROWS * x + 0..QD_ROWS-1 of the G * Lq rows of KV head hk (row r: query head
// hk * G + r / Lq, query row r % Lq; these rows are consecutive in Q and O) and chunk c, so K/V
// tiles are read once for all heads of a GQA group and padding rows cost no arithmetic. split =
// 1: the chunk state goes to the workspace (ws_o [rows, nchunks, D], ws_lse [rows, nchunks]);
// split = 0 (one chunk): out is written directly. Work split (no effect on any operation):
// scores: work-item = key; softmax: work-item = (row, 16-key group), the row max folded by
// each of the row's 4 work-items (identical copies); P.V: work-item = (row, channel) pairs.
#include "attention/attention_common.h"
#include "attention/sage8_common.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef QD_ROWS
#define QD_ROWS 16
#endif
#define DH HEAD_DIM
#define RB QD_ROWS
#define NT 64            // work-items; also the keys of a tile
#define BN SQ_ATT_TILE   // 64
#define QW (DH / 4 + 1)  // words per Q8 / K8 row in local memory (odd: conflict-free)
#define VW (BN / 4 + 1)  // words per V8 channel / P8 row
#define SW (BN + 1)      // floats per score row
#define OACC (RB * DH / NT)

static inline int dot4(uint a, uint b) {
  const char4 x = as_char4(a), y = as_char4(b);
  return (int)x.s0 * (int)y.s0 + (int)x.s1 * (int)y.s1 + (int)x.s2 * (int)y.s2 +
         (int)x.s3 * (int)y.s3;
}

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void sage8_decode(
    __global const uint* q8, __global const float* sq,  // [B,Hq,Lq,D], [B,Hq,1]
    __global const uint* k8, __global const float* sk,  // [B,Hkv,Lk,D], [B,Hkv,ceil(Lk/64)]
    __global const uint* v8, __global const float* sv,  // [B,Hkv,D,Lk64], [B,Hkv,D,Lk64/16]
    __global const float* delta, int has_delta,         // [B,Hq,1,Lk]
    __global float* out, __global float* ws_o, __global float* ws_lse, int split, int nchunks,
    int hq, int group, int lq, int lk, int causal, float c) {
  __local uint qs[RB * QW], ks[BN * QW], vs[DH * VW], pq[RB * VW];
  __local float sbuf[RB * SW], spl[RB * 4], lgl[RB * 4], svs[DH * 4];
  __local float m_l[RB], l_l[RB], mn_l[RB], alpha_l[RB], sq_l[RB];
  __local int skip_l[RB], ve_l[RB];

  const int lid = get_local_id(0);
  const int ch = get_group_id(1), bk = get_group_id(2);
  const int hkv = hq / group, b = bk / hkv;
  const int rows = group * lq, r0 = get_group_id(0) * RB, nr = min(RB, rows - r0);
  const int lk64 = (lk + 63) / 64 * 64;
  const int c0 = ch * SQ_ATT_CHUNK, c1 = min(lk, c0 + SQ_ATT_CHUNK);

  // The tiles of this chunk that some row of the block sees: [c0, kend).
  int kend = c0;
  for (int r = 0; r < nr; ++r)
    kend = max(kend, min(c1, sq_att_visible_end((r0 + r) % lq, lq, lk, causal)));
  const int nsteps = (kend - c0 + BN - 1) / BN;

  for (int x = lid; x < RB * (DH / 4); x += NT) {
    const int r = x / (DH / 4), w = x % (DH / 4);
    qs[r * QW + w] = r < nr ? q8[((long)bk * rows + r0 + r) * (DH / 4) + w] : 0u;
  }
  if (lid < RB) {
    const int r = lid, h = bk % hkv * group + (r0 + r) / lq;
    m_l[r] = sq_att_neg_inf();
    l_l[r] = 0.0f;
    sq_l[r] = r < nr ? sq[((long)b * hq + h) * ((lq + 127) / 128) + (r0 + r) % lq / 128] : 0.0f;
    ve_l[r] = r < nr ? sq_att_visible_end((r0 + r) % lq, lq, lk, causal) : 0;
  }
  float o[OACC];
  for (int u = 0; u < OACC; ++u) o[u] = 0.0f;

  for (int n = 0; n < nsteps; ++n) {
    const int j0 = c0 + n * BN;
    const float sk_t = sk[(long)bk * (lk64 / 64) + j0 / 64];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = lid; x < BN * (DH / 16); x += NT) {  // K8 tile (keys >= Lk: zero codes)
      const int jj = x / (DH / 16), w = 4 * (x % (DH / 16));
      const uint4 y =
          j0 + jj < lk ? vload4(0, k8 + ((long)bk * lk + j0 + jj) * (DH / 4) + w) : (uint4)(0u);
      ks[jj * QW + w] = y.x;
      ks[jj * QW + w + 1] = y.y;
      ks[jj * QW + w + 2] = y.z;
      ks[jj * QW + w + 3] = y.w;
    }
    for (int x = lid; x < DH * (BN / 16); x += NT) {  // V8 tile, channel rows
      const int d = x / (BN / 16), w = 4 * (x % (BN / 16));
      const uint4 y = vload4(0, v8 + (((long)bk * DH + d) * lk64 + j0) / 4 + w);
      vs[d * VW + w] = y.x;
      vs[d * VW + w + 1] = y.y;
      vs[d * VW + w + 2] = y.z;
      vs[d * VW + w + 3] = y.w;
    }
    for (int x = lid; x < DH * 4; x += NT)
      svs[x] = sv[((long)bk * DH + x / 4) * (lk64 / 16) + j0 / 16 + (x & 3)];
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- scores S2 (-inf where invisible): work-item = key lid ----
    for (int r = 0; r < nr; ++r) {
      int acc = 0;
      for (int w = 0; w < DH / 4; ++w) acc += dot4(qs[r * QW + w], ks[lid * QW + w]);
      const int key = j0 + lid, vis = key < ve_l[r];
      float s2 = sq_s8_score(acc, sq_l[r], sk_t);
      if (has_delta) {
        const long h = bk % hkv * group + (r0 + r) / lq;
        s2 = sq_s8_score_delta(s2, delta[((long)b * hq + h) * lk + (vis ? key : j0)], c);
      }
      sbuf[r * SW + lid] = vis ? s2 : sq_att_neg_inf();
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- softmax: row max, P, per-16 int8 P (work-item = row x >> 2, group x & 3) ----
    for (int x = lid; x < RB * 4; x += NT) {
      const int r = x >> 2, gr = x & 3;
      const int ve = min(ve_l[r] - j0, BN);
      float mt = sq_att_neg_inf();
      for (int jj = 0; jj < ve; ++jj) mt = sq_mx(mt, sbuf[r * SW + jj]);
      const float m_old = m_l[r], m_new = sq_mx(m_old, mt);
      const bool skip = ve <= 0 || m_new == sq_att_neg_inf();
      if (gr == 0) {
        alpha_l[r] = skip ? 1.0f : sq_exp2(m_old - m_new);
        skip_l[r] = skip;
        mn_l[r] = m_new;
      }
      float p[16];
      uint amax = 0;
      for (int u = 0; u < 16; ++u) {
        const int jj = 16 * gr + u;
        p[u] = (!skip && jj < ve) ? sq_exp2_q(sbuf[r * SW + jj] - m_new) : 0.0f;
        amax = max(amax, sq_i8_absbits(p[u]));
      }
      const float sp = sq_i8_scale(amax);
      int psum = 0;
      for (int w = 0; w < 4; ++w) {
        uint word = 0;
        for (int e = 0; e < 4; ++e) {
          const int code = sq_i8_code(p[4 * w + e], sp, 0.0f);
          psum += code;
          word |= (uint)code << (8 * e);
        }
        pq[r * VW + 4 * gr + w] = word;
      }
      spl[r * 4 + gr] = sp;
      lgl[r * 4 + gr] = sq_s8_row_term(psum, sp);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- l and m, then P.V: Ot[d] = ((U0 + U1) + U2) + U3; O = fma(O, alpha, Ot) ----
    if (lid < RB && !skip_l[lid]) {
      const float lt = ((lgl[lid * 4] + lgl[lid * 4 + 1]) + lgl[lid * 4 + 2]) + lgl[lid * 4 + 3];
      l_l[lid] = fma(l_l[lid], alpha_l[lid], lt);
      m_l[lid] = mn_l[lid];
    }
    for (int u = 0; u < OACC; ++u) {
      const int x = lid + u * NT, r = x / DH, d = x % DH;
      if (skip_l[r]) continue;
      float ot = 0.0f;
      for (int gr = 0; gr < 4; ++gr) {
        int dot = 0;
        for (int w = 0; w < 4; ++w) dot += dot4(pq[r * VW + 4 * gr + w], vs[d * VW + 4 * gr + w]);
        const float t = sq_s8_pv_term(dot, spl[r * 4 + gr], svs[d * 4 + gr]);
        ot = gr == 0 ? t : ot + t;
      }
      o[u] = fma(o[u], alpha_l[r], ot);
    }
  }

  // ---- the chunk state: to the workspace (split) or, as the only chunk, the output ----
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int u = 0; u < OACC; ++u) {
    const int x = lid + u * NT, r = x / DH, d = x % DH;
    if (r >= nr) continue;
    const long row = (long)bk * rows + r0 + r;
    const float oc = sq_att_chunk_out(o[u], l_l[r]);
    if (split) {
      ws_o[(row * nchunks + ch) * DH + d] = oc;
      if (d == 0) ws_lse[row * nchunks + ch] = sq_att_chunk_lse(m_l[r], l_l[r]);
    } else {
      out[row * DH + d] = oc;
    }
  }
}
