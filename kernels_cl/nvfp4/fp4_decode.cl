#pragma OPENCL FP_CONTRACT OFF
// fp4_decode.cl — NVFP4 attention for short query blocks (decode, speculative verification:
// Lq = 1..127) against long KV, split at the 4096-key chunks (flash-decoding). Mirror:
// fallback_cpu/nvfp4/fp4_attention.cpp (dense rows). Inputs: the packed
// tensors of sparq/nvfp4.h (Q and K per row in groups of 16 along D, V per 16 tokens); delta
// (Q smoothing, Lq <= 127 rows are one 128-row block) f32 [B, Hq, 1, Lk] or none.
//
// DEFINED ARITHMETIC ORDER. Per query row i of (b, h): the keys are cut into chunks
// [4096c, 4096c + 4096). Each chunk starts from a fresh state (m = -inf, mu = -inf, l = 0, O = 0)
// and walks its 64-key tiles in ascending order with exactly the dense step of fp4_attention.cl
// (S_j = delta_j + left fold of the exact 16-group terms; m_new = mx(m, tile max); skip when
// -inf; mu_new = m_new * c; Pt = sq_exp2_q(S * c - mu_new) * 2688; quant16 per 16 keys; U/L
// group terms folded ((0 + 1) + 2) + 3; alpha = sq_exp2(mu - mu_new); O = fma(O, alpha, Ot);
// l = fma(l, alpha, Lt)). Chunk result: o_c = l == 0 ? 0 : O / l, lse_c = l == 0 ? -inf :
// mu + sq_log2(l) (l carries the level-1 factor 2688 in every chunk alike). Chunks merge left to
// right by sq_att_merge_* (merge.cl's attention_merge_chunks): the chunked order of ARCHITECTURE
// §2, which fp4_attention.cl follows too, so every length gives fp4_attention_packed's bits (one
// chunk, Lk <= 4096: out = o_c).
//
// Macros: HEAD_DIM (64 or 128), QD_ROWS (16). Launch and work split as sage8_decode.cl: local
// (64), global (64 * ceil(G * Lq / QD_ROWS), nchunks, B * Hkv); rows r of KV head hk are query head
// hk * G + r / Lq, row r % Lq (consecutive in Q and O). split = 1: chunk states to ws_o / ws_lse
// ([rows, nchunks, D] / [rows, nchunks]); split = 0: out directly.
#include "attention/attention_common.h"
#include "nvfp4/fp4_math.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef QD_ROWS
#define QD_ROWS 16
#endif
#define DH HEAD_DIM
#define G (HEAD_DIM / 16)
#define RB QD_ROWS
#define NT 64
#define BN SQ_FP4_TILE
#define KS (DH + 4)  // chars per Q / K row of twice values in local memory
#define VS (BN + 4)  // chars per V channel / P row
#define SW (BN + 1)
#define OACC (RB * DH / NT)

static inline int dot16(__local const char* a, __local const char* b) {
  int s = 0;
  for (int e = 0; e < 16; ++e) s += (int)a[e] * (int)b[e];
  return s;
}

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void fp4_decode(
    __global const uchar* qc, __global const uchar* qsg,  // [B,Hq,Lq,D/2], [B,Hq,Lq,D/16]
    __global const uchar* kc, __global const uchar* ksg,  // [B,Hkv,Lk,D/2], [B,Hkv,Lk,D/16]
    __global const uchar* vc, __global const uchar* vsg,  // [B,Hkv,D,Lk64/2], [..,Lk64/16]
    __global const float* delta, int has_delta,           // [B,Hq,1,Lk]
    __global float* out, __global float* ws_o, __global float* ws_lse, int split, int nchunks,
    int hq, int group, int lq, int lk, int causal, float c) {
  __local char qtw[RB * KS], ktw[BN * KS], vtw[DH * VS], ptw[RB * VS];
  __local float qsl[RB * G], ksl[BN * G], vsl[DH * 4];
  __local float sbuf[RB * SW], spl[RB * 4], lgl[RB * 4];
  __local float m_l[RB], mu_l[RB], l_l[RB], mn_l[RB], alpha_l[RB];
  __local int skip_l[RB], ve_l[RB];

  const int lid = get_local_id(0);
  const int ch = get_group_id(1), bk = get_group_id(2);
  const int hkv = hq / group, b = bk / hkv;
  const int rows = group * lq, r0 = get_group_id(0) * RB, nr = min(RB, rows - r0);
  const int lk64 = (lk + 63) / 64 * 64;
  const int c0 = ch * SQ_ATT_CHUNK, c1 = min(lk, c0 + SQ_ATT_CHUNK);

  int kend = c0;
  for (int r = 0; r < nr; ++r)
    kend = max(kend, min(c1, sq_att_visible_end((r0 + r) % lq, lq, lk, causal)));
  const int nsteps = (kend - c0 + BN - 1) / BN;

  for (int x = lid; x < RB * (DH / 2); x += NT) {
    const int r = x / (DH / 2), k2 = x % (DH / 2);
    const uint byte = r < nr ? qc[((long)bk * rows + r0 + r) * (DH / 2) + k2] : 0u;
    qtw[r * KS + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
    qtw[r * KS + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
  }
  for (int x = lid; x < RB * G; x += NT) {
    const int r = x / G;
    qsl[x] = r < nr ? sq_e4m3_decode(qsg[((long)bk * rows + r0 + r) * G + x % G]) : 0.0f;
  }
  if (lid < RB) {
    m_l[lid] = sq_att_neg_inf();
    mu_l[lid] = sq_att_neg_inf();
    l_l[lid] = 0.0f;
    ve_l[lid] = lid < nr ? sq_att_visible_end((r0 + lid) % lq, lq, lk, causal) : 0;
  }
  float o[OACC];
  for (int u = 0; u < OACC; ++u) o[u] = 0.0f;

  for (int n = 0; n < nsteps; ++n) {
    const int j0 = c0 + n * BN;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = lid; x < BN * (DH / 2); x += NT) {  // K twice values (keys >= Lk: 0)
      const int jj = x / (DH / 2), k2 = x % (DH / 2);
      const uint byte = j0 + jj < lk ? kc[((long)bk * lk + j0 + jj) * (DH / 2) + k2] : 0u;
      ktw[jj * KS + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
      ktw[jj * KS + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
    }
    for (int x = lid; x < BN * G; x += NT) {
      const int jj = x / G;
      ksl[x] = j0 + jj < lk ? sq_e4m3_decode(ksg[((long)bk * lk + j0 + jj) * G + x % G]) : 0.0f;
    }
    for (int x = lid; x < DH * (BN / 2); x += NT) {  // V twice values, channel rows
      const int d = x / (BN / 2), k2 = x % (BN / 2);
      const uint byte = vc[((long)bk * DH + d) * (lk64 / 2) + j0 / 2 + k2];
      vtw[d * VS + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
      vtw[d * VS + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
    }
    for (int x = lid; x < DH * 4; x += NT)
      vsl[x] = sq_e4m3_decode(vsg[((long)bk * DH + x / 4) * (lk64 / 16) + j0 / 16 + (x & 3)]);
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- scores (-inf where invisible): work-item = key lid ----
    for (int r = 0; r < nr; ++r) {
      const int key = j0 + lid;
      float s = sq_att_neg_inf();
      if (key < ve_l[r]) {
        const long h = bk % hkv * group + (r0 + r) / lq;
        s = has_delta ? delta[((long)b * hq + h) * lk + key] : 0.0f;
        for (int g = 0; g < G; ++g)
          s = s + sq_fp4_group_term(dot16(qtw + r * KS + 16 * g, ktw + lid * KS + 16 * g),
                                    qsl[r * G + g], ksl[lid * G + g]);
      }
      sbuf[r * SW + lid] = s;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- softmax: row max, two-level P (work-item = row x >> 2, group x & 3) ----
    for (int x = lid; x < RB * 4; x += NT) {
      const int r = x >> 2, gr = x & 3;
      const int ve = min(ve_l[r] - j0, BN);
      float mt = sq_att_neg_inf();
      for (int jj = 0; jj < ve; ++jj) mt = sq_mx(mt, sbuf[r * SW + jj]);
      const float m_new = sq_mx(m_l[r], mt), mu_new = m_new * c;
      const bool skip = ve <= 0 || m_new == sq_att_neg_inf();
      if (gr == 0) {
        alpha_l[r] = skip ? 1.0f : sq_exp2(mu_l[r] - mu_new);
        skip_l[r] = skip;
        mn_l[r] = m_new;
      }
      float pt[16];
      for (int e = 0; e < 16; ++e) {
        const int jj = 16 * gr + e;
        pt[e] = (!skip && jj < ve) ? sq_fp4_p_level1(sbuf[r * SW + jj], c, mu_new) : 0.0f;
      }
      uchar bytes[8];
      const float sp = sq_e4m3_decode(sq_fp4_quant16(pt, bytes));
      int sum = 0;
      for (int k2 = 0; k2 < 8; ++k2) {
        const int lo = sq_e2m1_twice(sq_fp4_lo(bytes[k2])),
                  hi = sq_e2m1_twice(sq_fp4_hi(bytes[k2]));
        ptw[r * VS + 16 * gr + 2 * k2] = (char)lo;
        ptw[r * VS + 16 * gr + 2 * k2 + 1] = (char)hi;
        sum += lo + hi;
      }
      spl[r * 4 + gr] = sp;
      lgl[r * 4 + gr] = sq_fp4_p_group_sum(sum, sp);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- l, m, mu; then P.V: Ot[d] = ((U0 + U1) + U2) + U3; O = fma(O, alpha, Ot) ----
    if (lid < RB && !skip_l[lid]) {
      const float lt = ((lgl[lid * 4] + lgl[lid * 4 + 1]) + lgl[lid * 4 + 2]) + lgl[lid * 4 + 3];
      l_l[lid] = fma(l_l[lid], alpha_l[lid], lt);
      m_l[lid] = mn_l[lid];
      mu_l[lid] = mn_l[lid] * c;
    }
    for (int u = 0; u < OACC; ++u) {
      const int x = lid + u * NT, r = x / DH, d = x % DH;
      if (skip_l[r]) continue;
      float ot = 0.0f;
      for (int hg = 0; hg < 4; ++hg) {
        const float t = sq_fp4_group_term(dot16(ptw + r * VS + 16 * hg, vtw + d * VS + 16 * hg),
                                          spl[r * 4 + hg], vsl[d * 4 + hg]);
        ot = hg == 0 ? t : ot + t;
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
      if (d == 0) ws_lse[row * nchunks + ch] = sq_att_chunk_lse(mu_l[r], l_l[r]);
    } else {
      out[row * DH + d] = oc;
    }
  }
}
