#pragma OPENCL FP_CONTRACT OFF
// xattention.cl — XAttention's index builder (specs/sparse_attention.md §6.1-6.2): antidiagonal
// block scoring with stride S, probe softmax per query group, 128-block sums, threshold selection
// and conversion to the common index. Run in order by host/src/sparse/xattention.cpp; fallback
// twin: fallback_cpu/sparse/xattention.cpp. Macros: HEAD_DIM (64, 128), STRIDE (4, 8, 16).
//
// Defined order, per query head (b, h), KV head h / G; groups gi (rows [gi S, gi S + S)) and gj
// (keys [gj S, gj S + S)); rows >= Lq and keys >= Lk are zero vectors; cx = c / S (exact):
//   A[gi][gj] = one fma chain from +0 over t = 0..S-1 ascending, then d ascending, of
//               (q[gi S + S-1-t][d] * cx) * k[gj S + t][d]        (q * cx rounded once)
//   visible   = gj < nGJ && (!causal || gj <= gi + off / S), else A = -INF (never computed)
//   m, Z, p   = the §4 probe softmax of row gi over gj (two-level sum: chunks of 64 gj from 0)
//   R[gi][kb] = sum over gj in [kb Bg, kb Bg + Bg) ∩ visible, ascending, of p   (Bg = 128 / S)
//   Sb[qb][kb]= sum over gi in [qb Bg, qb Bg + Bg), gi S < Lq, ascending, of R[gi][kb]
// kv_group: Sb of the index head = ((0 + Sb_h0) + Sb_h1) + ..., heads ascending. Then per
// (index head, qb) sq_sb_xattn_convert (builder_math.h): total, need = tau * total, forced first
// and diagonal blocks, the walk in §4 order keeping the crossing block, 64-row conversion.
//
// Work split (never changes a chain): xattn_scores: 64 gi x 64 gj per work-group of 256, each
// work-item 4 x 4 chains, (t, d) staged through local memory 32 d at a time in chain order.
// Work-groups of invisible tiles run zero steps (no early return ahead of a barrier).
// xattn_softmax: one work-group (64) per group row; xattn_blocksum: one work-item per
// (unit, qb, kb); xattn_group: one per (index head, qb, kb); xattn_select: one per (index head,
// qb).
#include "attention/attention_common.h"
#include "sparse/builder_math.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef STRIDE
#error "STRIDE must be defined (4, 8 or 16)"
#endif
#define DH HEAD_DIM
#define GT 64                       // groups per score tile side
#define BG (SQ_SB_XBLOCK / STRIDE)  // groups per 128-block
#define DS 32
#define DSP (DS + 1)

// A pass covers units u = unit0 + group(1); unit u = (pair u / ngt, group tile u % ngt) holds
// group rows [64 gt, 64 gt + 64) of query head pair = (b, h). Scores go to
// a[(u - unit0)][gl][gj] (row stride as_), tile maxima to tmax[(u - unit0)][gl][gjt].
__kernel __attribute__((reqd_work_group_size(256, 1, 1))) void sparse_xattn_scores(
    gbytes q, long q_off, long q_sb, long q_sh, long q_sr, int q_dt,               //
    gbytes k, long k_off, long k_sb, long k_sh, long k_sr, int k_dt,               //
    int hq, int group, int lq, int lk, int causal, long unit0, int ngt, float cx,  //
    __global float* a, long as_, __global float* tmax, int ngjt) {
  __local float qs[GT * DSP];
  __local float ks[GT * DSP];
  __local float pm[GT * 16];
  const int lid = get_local_id(0);
  const int ty = lid >> 4, tx = lid & 15;
  const int gjt = get_group_id(0);
  const long ul = get_group_id(1);
  const long u = unit0 + ul;
  const long pair = u / ngt;
  const int gt = (int)(u % ngt);
  const long b = pair / hq;
  const int h = (int)(pair % hq);
  const int ngi = (lq + STRIDE - 1) / STRIDE, ngj = (lk + STRIDE - 1) / STRIDE;
  const int gshift = (lk - lq) / STRIDE;
  const int gi0 = gt * GT, gj0 = gjt * GT;
  const int active = gj0 < ngj && (!causal || gj0 <= gi0 + GT - 1 + gshift);
  const long qbase = q_off + b * q_sb + h * q_sh;
  const long kbase = k_off + b * k_sb + (h / group) * k_sh;
  float acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int v = 0; v < 4; ++v) acc[i][v] = 0.0f;
  const int nsteps = active ? STRIDE * (DH / DS) : 0;
  for (int step = 0; step < nsteps; ++step) {
    const int t = step / (DH / DS), d0 = (step % (DH / DS)) * DS;
    for (int e = lid; e < GT * DS; e += 256) {
      const int r = e / DS, d = e % DS;
      const long qr = (long)(gi0 + r) * STRIDE + STRIDE - 1 - t;
      const long kr = (long)(gj0 + r) * STRIDE + t;
      qs[r * DSP + d] = qr < lq ? sq_att_load1(q, qbase + qr * q_sr + d0 + d, q_dt) * cx : 0.0f;
      ks[r * DSP + d] = kr < lk ? sq_att_load1(k, kbase + kr * k_sr + d0 + d, k_dt) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int d = 0; d < DS; ++d) {
      float qa[4], kv[4];
      for (int i = 0; i < 4; ++i) qa[i] = qs[(ty + 16 * i) * DSP + d];
      for (int v = 0; v < 4; ++v) kv[v] = ks[(tx + 16 * v) * DSP + d];
      for (int i = 0; i < 4; ++i)
        for (int v = 0; v < 4; ++v) acc[i][v] = fma(qa[i], kv[v], acc[i][v]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  __global float* ap = a + ul * GT * as_;
  for (int i = 0; i < 4; ++i) {
    const int gl = ty + 16 * i, gi = gi0 + gl;
    float rm = sq_sb_neg_inf();
    for (int v = 0; v < 4; ++v) {
      const int gj = gj0 + tx + 16 * v;
      const int vis = gj < ngj && (!causal || gj <= gi + gshift);
      const float s = vis ? acc[i][v] : sq_sb_neg_inf();
      if (active && gi < ngi && gj < ngj) ap[(long)gl * as_ + gj] = s;
      rm = sq_mx(rm, s);
    }
    pm[gl * 16 + tx] = rm;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const int row = lid & 63;
  float m = sq_sb_neg_inf();
  for (int t = 0; t < 16; ++t) m = sq_mx(m, pm[row * 16 + t]);
  if (active && lid < GT) tmax[(ul * GT + row) * ngjt + gjt] = m;
}

// Probe softmax of group row (unit ul, gl) and its 128-block sums R[ul][gl][kb].
// Launch: local (64), global (64 * 64, units in pass).
__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void sparse_xattn_softmax(
    __global const float* a, long as_, __global const float* tmax, int ngjt, int lq, int lk,
    int causal, long unit0, int ngt, __global float* part, __global float* rb, int nkb) {
  __local float lm[64];
  const int lid = get_local_id(0);
  const int gl = get_group_id(0);
  const long ul = get_group_id(1);
  const int gt = (int)((unit0 + ul) % ngt);
  const int gi = gt * GT + gl;
  const int ngi = (lq + STRIDE - 1) / STRIDE, ngj = (lk + STRIDE - 1) / STRIDE;
  const int valid = gi < ngi;
  int vend = causal ? gi + (lk - lq) / STRIDE + 1 : ngj;
  vend = vend < ngj ? vend : ngj;
  if (!valid) vend = 0;
  const int nt = (vend + GT - 1) / GT;
  const long row = ul * GT + gl;
  __global const float* ar = a + row * as_;
  float m = sq_sb_neg_inf();
  for (int t = lid; t < nt; t += 64) m = sq_mx(m, tmax[row * ngjt + t]);
  lm[lid] = m;
  barrier(CLK_LOCAL_MEM_FENCE);
  m = sq_sb_neg_inf();
  for (int t = 0; t < 64; ++t) m = sq_mx(m, lm[t]);
  for (int cidx = lid; cidx < nt; cidx += 64) {
    float s = 0.0f;
    const int j1 = cidx * GT + GT < vend ? cidx * GT + GT : vend;
    for (int j = cidx * GT; j < j1; ++j) s = s + sq_exp2(ar[j] - m);
    part[row * ngjt + cidx] = s;
  }
  barrier(CLK_GLOBAL_MEM_FENCE);
  float z = 0.0f;
  for (int cidx = 0; cidx < nt; ++cidx) z = z + part[row * ngjt + cidx];
  for (int kb = lid; kb < nkb; kb += 64) {
    float s = 0.0f;
    const int j1 = kb * BG + BG < vend ? kb * BG + BG : vend;
    for (int j = kb * BG; j < j1; ++j) s = s + sq_sb_prob(ar[j], m, z);
    rb[row * nkb + kb] = s;
  }
}

// Sb[pair][qb][kb] of the qbs of each unit. Launch: global (nkb, GT / BG, units in pass).
__kernel void sparse_xattn_blocksum(__global const float* rb, int nkb, int lq, long unit0, int ngt,
                                    int nqb128, __global float* sb) {
  const int kb = get_global_id(0);
  const int ql = get_global_id(1);
  const long ul = get_global_id(2);
  const long u = unit0 + ul;
  const long pair = u / ngt;
  const int gt = (int)(u % ngt);
  const int qb = gt * (GT / BG) + ql;
  if (kb >= nkb || qb >= nqb128) return;
  float s = 0.0f;
  for (int t = 0; t < BG; ++t) {
    const int gl = ql * BG + t;
    if ((gt * GT + gl) * STRIDE >= lq) break;
    s = s + rb[(ul * GT + gl) * nkb + kb];
  }
  sb[(pair * nqb128 + qb) * nkb + kb] = s;
}

// kv_group: Sb of index head ip = ((0 + Sb_h0) + Sb_h1) + ... Launch: global (nkb, nqb128, nip).
__kernel void sparse_xattn_group(__global const float* sb, int nkb, int nqb128, int gi,
                                 __global float* sbi) {
  const int kb = get_global_id(0);
  const int qb = get_global_id(1);
  const long ip = get_global_id(2);
  if (kb >= nkb) return;
  float s = 0.0f;
  for (int g = 0; g < gi; ++g) s = s + sb[((ip * gi + g) * nqb128 + qb) * nkb + kb];
  sbi[(ip * nqb128 + qb) * nkb + kb] = s;
}

// Selection + conversion of (index head ip, qb). Launch: global (nqb128 rounded up, nip).
__kernel void sparse_xattn_select(__global const float* sbi, int nkb, int nqb128, int nqb, int lq,
                                  int lk, int causal, __global const float* tau, int hi_count,
                                  __global int* tile_start, int max_tiles, __global int* tile_count,
                                  __global int* col_count) {
  const int qb = get_global_id(0);
  const long ip = get_global_id(1);
  if (qb >= nqb128) return;
  const long r = ip * nqb + 2 * qb;
  sq_sb_xattn_convert(sbi + (ip * nqb128 + qb) * nkb, nkb, qb, nqb, lq, lk, causal,
                      tau[ip % hi_count], tile_start + r * max_tiles, max_tiles, tile_count + r);
  col_count[r] = 0;
  if (2 * qb + 1 < nqb) col_count[r + 1] = 0;
}
