#pragma OPENCL FP_CONTRACT OFF
// sage8_mma.cl — Precision::int8 attention for NVIDIA (inline PTX mma.sync int8), with the
// softmax in registers in the MMA fragment layout. The defined arithmetic order is in
// attention/sage8_common.h (the 64-key tile step inside 4096-key chunks, chunk states merged
// left to right); this kernel, the portable sage8.cl, sage8_decode.cl (Lq <= 127) and
// fallback_cpu/attention/sage8.cpp give the same bits (the integer products are exact, the float
// code is the same).
//
// Macros: HEAD_DIM (64 or 128). SAGE8_EMULATE (0/1): 1 emulates mma.sync and shfl.sync in local
// memory with the PTX ISA's layouts ("mma.m16n8k32" / "mma.m16n8k16" for .s8, shfl.sync.bfly),
// so PoCL tests every index of this kernel; 0 (NVIDIA sm_80+ only) uses the instructions.
// SAGE8_ROWS (64 or 128): query rows per work-group (NT = 2 * SAGE8_ROWS work-items, one warp per
// 16 rows); the rows' arithmetic does not depend on it.
// SAGE8_PREFETCH (0/1): 1 loads tile n + 1's K, V and V scales from global memory into registers
// while tile n is computed (stored to local memory at the next step), hiding load latency; it only
// moves loads earlier, so every staged value and every bit is the same.
// Same-bits arithmetic forms (speed knobs, 1 by default, defaults in sage8_mma.h; SPARQ_TUNE_SAGE8
// div, exp, svflag, bias, dstage, mx; docs/quantized_attention.md has the table):
// SAGE8_FAST_DIV: group scales and P codes by Markstein's correction from a correctly rounded
// reciprocal (quant/int8_codec.h sq_i8_scale_rcp, sq_i8_code_pg; one division per group, no
// branch per group; groups with amax outside {0} and [2^-53, 2^50] are redone as written).
// SAGE8_FAST_EXP: sq_exp2_q_le0 and sq_exp2_le0 (common/exact_math.h: sq_exp2_q's and sq_exp2's
// bits for x <= 0, no branch or conversion) and the row max without per-key visibility tests
// (hidden keys hold -inf).
// SAGE8_SV_FLAG (dense mode): a tile whose V scales are all finite runs P.V without the sP == 0
// test (sage8_mma.h sq_s8_pv_f_fin); a per-tile flag in local memory sends the others to it.
// SAGE8_MMA_BIAS: the MMA accumulators start at bits(1.5 * 2^23), so the int -> float step of
// every score and P.V term is one subtraction (sage8_mma.h SQ_S8_ACC0). SAGE8_DELTA_STAGE (dense
// mode): the tile's delta row slice is staged in local memory with K and V (one load per key).
// SAGE8_FAST_MAX (NVIDIA path): the row max by max.NaN.f32 (sage8_mma.h sq_s8_mx).
// SAGE8_SPARSE (0/1): 1 walks a sparq::SparseIndex (definition and staging helpers:
// attention/sage8_sparse.h, as sage8.cl's sparse mode; 64 rows, no prefetch). A column step runs
// the tile MMAs too (uniform control flow around the emulation's barriers) but takes Ot from the
// per-column terms, folded per lane from the P codes and scales every sparse step writes to local
// memory.
// Launch: local (NT), global (NT * nqb, Hq, B); nqb blocks of SAGE8_ROWS query rows.
//
// Work split: warp w owns rows 16w + g and 16w + g + 8 (g = lane / 4, t = lane % 4); the four
// lanes of a quad hold identical copies of their two rows' m and l. QK^T n-tile nt's column c is
// key 16(nt / 2) + 4(c / 2) + 2(nt % 2) + c % 2 of the tile (the K tile is read in that order),
// so lane t ends up holding keys 16gr + 4t .. 4t + 3 of every 16-key group gr: exactly its A
// fragment of the P.V MMA (m16n8k16). Row max, group absmax and code sums are folded over the
// quad with shfl.sync.bfly (max is exact in any order; the sums are integers). A lane holds the
// state (m, l) and the O registers of its two rows, so a chunk's end (every 64 tiles and the last
// step; sparse: where the next tile's start >> 12 changes) is a per-lane merge, then a fresh
// state, with no barrier. The merged output R lives in `out` (each element read and written only
// by the lane that owns it, as prefill_body.h's scratch) and R's lse in registers: a second set of
// O registers would push the kernel past 255 registers into spills in the tile loop (ptxas,
// sm_90), while R in `out` costs nothing for Lk <= 4096 (the first chunk's merge is the plain
// store of O / l) and one read + write of the row per later chunk.
#include "attention/attention_common.h"
#include "attention/sage8_common.h"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined (64 or 128)"
#endif
#ifndef SAGE8_EMULATE
#define SAGE8_EMULATE 0
#endif
#ifndef SAGE8_PREFETCH
#define SAGE8_PREFETCH 0
#endif
#ifndef SAGE8_ROWS
#define SAGE8_ROWS 64
#endif
#ifndef SAGE8_SPARSE
#define SAGE8_SPARSE 0
#endif
#if SAGE8_SPARSE && (SAGE8_ROWS != 64 || SAGE8_PREFETCH)
#error "the sparse mode runs 64 rows per work-group (the index's query blocks), no prefetch"
#endif
#if SAGE8_EMULATE
#define SQ_UNROLL  // PoCL builds the emulated test variant much faster without unrolling
#else
#define SQ_UNROLL _Pragma("unroll")  // constant indices keep s[], o[], pa[], sp[] in registers
#endif
#define DH HEAD_DIM
#define BM SAGE8_ROWS  // query rows per work-group: 64 or 128 (16 per warp)
#define BN SQ_ATT_TILE
#define NT (2 * BM)
#define QW (DH / 4 + 4)  // words per K8 row in local memory (padded: conflict-free fragments)
#define VW (BN / 4 + 4)  // words per V8 channel row
#define ST4U(p, x) (*(__local uint4*)(p) = (x))
#if SQ_ATT_CHUNK % BN != 0
#error "the 4096-key chunks must be whole tiles"
#endif
#include "attention/sage8_mma.h"
#include "attention/sage8_sparse.h"

__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void sage8_attention(
    __global const uint* q8, __global const float* sq,  // [B,Hq,Lq,D], [B,Hq,ceil(Lq/128)]
    __global const uint* k8, __global const float* sk,  // [B,Hkv,Lk,D], [B,Hkv,ceil(Lk/64)]
    __global const uint* v8, __global const float* sv,  // [B,Hkv,D,Lk64], [B,Hkv,D,Lk64/16]
    __global const float* delta, int has_delta, int delta_rows, int delta_blk0, int delta_nblk,
    __global float* out, int hq, int group, int lq, int lk, int causal, float c, int qb0,
    int nqb SAGE8_SPARSE_ARGS) {
  __local uint ks[BN * QW] SQ_ATT_LOCAL_ALIGN;
  __local uint vs[DH * VW] SQ_ATT_LOCAL_ALIGN;
  __local float svs[DH * 4] SQ_ATT_LOCAL_ALIGN;
  __local uint emu[EMU_WORDS];
#if SQ_S8_DST
  __local float dls[BN] SQ_ATT_LOCAL_ALIGN;  // the tile's delta (0 past Lk or without delta)
#endif
#if SQ_S8_SVF
  __local int
      svbad[2];  // svbad[n & 1]: a V scale of tile n is not finite (P.V keeps sP == 0 tests)
  if (get_local_id(0) == 0) svbad[0] = 0;
#endif

  const int lid = get_local_id(0), lane = lid & 31, g = lane >> 2, t = lane & 3;
  const int qb = qb0 + nqb - 1 - get_group_id(0), h = get_group_id(1), b = get_group_id(2);
  const int r0 = qb * BM;
  const int nrows = min(BM, lq - r0);
  const int hk = h / group, hkv = hq / group;
  const int lk64 = (lk + 63) / 64 * 64;
#if SAGE8_SPARSE
  __local int kid[BN], kps[BN];
  __local float skl[BN], spl[BM * 4];
  __local uint pcl[BM * VW];
  const long irow = ((long)b * hi_n + (share ? hk : h)) * ((lq + BM - 1) / BM) + qb;
  const int ntl = clamp(tcount[irow], 0, max_tiles), ncol = clamp(ccount[irow], 0, max_cols);
  const int nsteps = ntl + (ncol + BN - 1) / BN;
#else
  const int kend = sq_att_visible_end(r0 + nrows - 1, lq, lk, causal);
  const int nsteps = kend > 0 ? (kend + BN - 1) / BN : 0;
#endif
  const float sq_blk = sq[((long)b * hq + h) * ((lq + 127) / 128) + r0 / 128];
  __global const float* drow =
      delta +
      (has_delta ? (((long)b * hq + h) * delta_nblk + r0 / delta_rows - delta_blk0) * lk : 0);
  const long kv_bh = (long)b * hkv + hk;
  const int ra = 16 * (lid >> 5) + g;  // this lane's rows: ra (fragment half 0), ra + 8 (half 1)

  // Q A-fragments (rows ra, ra + 8; rows past Lq are zero codes and never stored).
  uint qa[DH / 32][4];
  {
    __global const uint* q0 = q8 + (((long)b * hq + h) * lq + r0 + ra) * (DH / 4);
    __global const uint* q1 = q0 + 8 * (DH / 4);
    SQ_UNROLL
    for (int kb = 0; kb < DH / 32; ++kb) {
      const int w = 8 * kb + t;
      qa[kb][0] = ra < nrows ? q0[w] : 0u;
      qa[kb][1] = ra + 8 < nrows ? q1[w] : 0u;
      qa[kb][2] = ra < nrows ? q0[w + 4] : 0u;
      qa[kb][3] = ra + 8 < nrows ? q1[w + 4] : 0u;
    }
  }
#if SAGE8_SPARSE
  int qpr[2];  // positions of rows ra, ra + 8 (-1 past Lq: never stored)
  for (int hf = 0; hf < 2; ++hf) {
    const int row = ra + 8 * hf;
    qpr[hf] = row < nrows ? (has_pos ? qpos[(long)b * lq + r0 + row] : lk - lq + r0 + row) : -1;
  }
#define KVIS(key, hf) SAGE8_VIS(key, qpr[hf])
#define TILE_STEP is_tile
#else
  const int vend[2] = {sq_att_visible_end(r0 + ra, lq, lk, causal),
                       sq_att_visible_end(r0 + ra + 8, lq, lk, causal)};
#define KVIS(key, hf) ((key) < vend[hf] - j0)
#define TILE_STEP 1
#endif
  float m[2] = {sq_att_neg_inf(), sq_att_neg_inf()}, l[2] = {0.0f, 0.0f};
  float lse_r[2] = {sq_att_neg_inf(), sq_att_neg_inf()};  // R's lse of rows ra, ra + 8
  float o[DH / 2];  // [nt][e]: row ra + 8 (e / 2), channel 8 nt + 2t + e % 2 (this chunk)
  SQ_UNROLL
  for (int x = 0; x < DH / 2; ++x) o[x] = 0.0f;
  __global float* ob =
      out + (((long)b * hq + h) * lq + r0) * DH;  // also R between chunks

#if !SAGE8_SPARSE
                                                  // Tile staging: work-item lid moves K words (x =
                                                  // lid + NT i), V words and V scales of a tile.
#if (BN * (DH / 16)) % NT != 0 || (DH * 4) % NT != 0
#error "tile staging needs NT to divide the tile's word counts"
#endif
#define KX (BN * (DH / 16) / NT)
#define VX (DH * (BN / 16) / NT)
#define SX (DH * 4 / NT)
#define LOAD_K(n, i)                                                                      \
  ((n)*BN + (lid + NT * (i)) / (DH / 16) < lk                                             \
       ? vload4(0, k8 + (kv_bh * lk + (n)*BN + (lid + NT * (i)) / (DH / 16)) * (DH / 4) + \
                       4 * ((lid + NT * (i)) % (DH / 16)))                                \
       : (uint4)(0u))
#define LOAD_V(n, i)                                                                 \
  vload4(0, v8 + ((kv_bh * DH + (lid + NT * (i)) / (BN / 16)) * lk64 + (n)*BN) / 4 + \
                4 * ((lid + NT * (i)) % (BN / 16)))
#define LOAD_D(n) \
  (has_delta && lid < BN && (n)*BN + lid < lk ? drow[(n)*BN + lid] : 0.0f)  // SQ_S8_DST
#define LOAD_S(n, i) sv[(kv_bh * DH + (lid + NT * (i)) / 4) * (lk64 / 16) + 4 * (n) + (lid & 3)]
#define STORE_K(i, y) \
  ST4U(ks + ((lid + NT * (i)) / (DH / 16)) * QW + 4 * ((lid + NT * (i)) % (DH / 16)), y)
#define STORE_V(i, y) \
  ST4U(vs + ((lid + NT * (i)) / (BN / 16)) * VW + 4 * ((lid + NT * (i)) % (BN / 16)), y)
#if SQ_S8_SVF
#define STORE_S(i, y)                         \
  do {                                        \
    const float y_ = (y);                     \
    svs[lid + NT * (i)] = y_;                 \
    svnf |= sq_i8_absbits(y_) >= 0x7f800000u; \
  } while (0)
#else
#define STORE_S(i, y) (svs[lid + NT * (i)] = (y))
#endif
#if SAGE8_PREFETCH
  uint4 kpre[KX], vpre[VX];
  float spre[SX], dpre = 0.0f;
  if (nsteps > 0) {
    SQ_UNROLL
    for (int i = 0; i < KX; ++i) kpre[i] = LOAD_K(0, i);
    SQ_UNROLL
    for (int i = 0; i < VX; ++i) vpre[i] = LOAD_V(0, i);
    SQ_UNROLL
    for (int i = 0; i < SX; ++i) spre[i] = LOAD_S(0, i);
    if (SQ_S8_DST) dpre = LOAD_D(0);
  }
#endif
#endif
  for (int n = 0; n < nsteps; ++n) {
#if SAGE8_SPARSE
    __global const int* ts = tstart + irow * max_tiles;
    const int is_tile = n < ntl, j0 = is_tile ? ts[n] : 0;
    // chunks (segments) by tile start >> 12; the column steps continue the last one
    const int chunk_end = n == nsteps - 1 || (n + 1 < ntl && (ts[n + 1] >> 12) != (j0 >> 12));
    barrier(CLK_LOCAL_MEM_FENCE);
    sq_s8_stage_slots(n, ntl, ncol, j0, cidx + irow * max_cols, lk, has_pos, kpos + (long)b * lk,
                      sk + kv_bh * (lk64 / 64), kid, kps, skl);
    barrier(CLK_LOCAL_MEM_FENCE);
    sq_s8_stage_k(ks, k8 + kv_bh * lk * (DH / 4), kid);
    sq_s8_stage_v(vs, svs, is_tile, j0, lk64, v8 + kv_bh * DH * lk64 / 4,
                  sv + kv_bh * DH * (lk64 / 16), kid);
#else
    const int j0 = n * BN;
    const int chunk_end =
        n == nsteps - 1 || n % SQ_ATT_TILES_PER_CHUNK == SQ_ATT_TILES_PER_CHUNK - 1;
    const float sk_t = sk[kv_bh * (lk64 / 64) + n];
    int svnf = 0;  // a V scale this work-item stages is not finite (SQ_S8_SVF)
    barrier(CLK_LOCAL_MEM_FENCE);
#if SAGE8_PREFETCH
    SQ_UNROLL
    for (int i = 0; i < KX; ++i) STORE_K(i, kpre[i]);
    SQ_UNROLL
    for (int i = 0; i < VX; ++i) STORE_V(i, vpre[i]);
    SQ_UNROLL
    for (int i = 0; i < SX; ++i) STORE_S(i, spre[i]);
#if SQ_S8_DST
    if (lid < BN) dls[lid] = dpre;
#endif
    if (n + 1 < nsteps) {
      SQ_UNROLL
      for (int i = 0; i < KX; ++i) kpre[i] = LOAD_K(n + 1, i);
      SQ_UNROLL
      for (int i = 0; i < VX; ++i) vpre[i] = LOAD_V(n + 1, i);
      SQ_UNROLL
      for (int i = 0; i < SX; ++i) spre[i] = LOAD_S(n + 1, i);
      if (SQ_S8_DST) dpre = LOAD_D(n + 1);
    }
#else
    SQ_UNROLL
    for (int i = 0; i < KX; ++i) STORE_K(i, LOAD_K(n, i));
    SQ_UNROLL
    for (int i = 0; i < VX; ++i) STORE_V(i, LOAD_V(n, i));
    SQ_UNROLL
    for (int i = 0; i < SX; ++i) STORE_S(i, LOAD_S(n, i));
#if SQ_S8_DST
    if (lid < BN) dls[lid] = LOAD_D(n);
#endif
#endif
#if SQ_S8_SVF
    if (lid == 0) svbad[(n + 1) & 1] = 0;  // read at tile n - 1 (before this step's barrier)
    if (svnf) svbad[n & 1] = 1;
#endif
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // ---- S2 in registers: s[half][16 gr + 4 t + u] held as s[half][4 gr + u] ----
    float s[2][16];
    SQ_UNROLL
    for (int nt = 0; nt < BN / 8; ++nt) {
      int acc[4] = {SQ_S8_ACC0, SQ_S8_ACC0, SQ_S8_ACC0, SQ_S8_ACC0};
      const int kr = 16 * (nt >> 1) + 4 * (g >> 1) + 2 * (nt & 1) + (g & 1);  // key of column g
      SQ_UNROLL
      for (int kb = 0; kb < DH / 32; ++kb)
        mma_k32(acc, qa[kb][0], qa[kb][1], qa[kb][2], qa[kb][3], ks[kr * QW + 8 * kb + t],
                ks[kr * QW + 8 * kb + 4 + t], emu);
#if SQ_S8_DST
      const float2 dl = vload2(0, dls + 16 * (nt >> 1) + 4 * t + 2 * (nt & 1));  // keys u, u + 1
#endif
      SQ_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int hf = e >> 1, u = 2 * (nt & 1) + (e & 1);
        const int key = 16 * (nt >> 1) + 4 * t + u;
        const bool vis = KVIS(key, hf);
#if SAGE8_SPARSE
        float s2 = sq_s8_score_f(sq_s8_acc2f(acc[e]), sq_blk, skl[key]);
        if (has_delta) s2 = sq_s8_score_delta(s2, drow[vis ? kid[key] : 0], c);
#else
        float s2 = sq_s8_score_f(sq_s8_acc2f(acc[e]), sq_blk, sk_t);
#if SQ_S8_DST
        // 0 staged without delta: fma(+0, c, s2) is s2 (c is finite) but turns -0 into +0, a
        // zero's sign that no output sees (S2 only enters the max and x = S2 - m_new; exp2(±0) = 1)
        s2 = sq_s8_score_delta(s2, (e & 1) ? dl.y : dl.x, c);  // hidden keys: masked below
#else
        if (has_delta) s2 = sq_s8_score_delta(s2, drow[j0 + (vis ? key : 0)], c);
#endif
#endif
        s[hf][4 * (nt >> 1) + u] = vis ? s2 : sq_att_neg_inf();
      }
    }

    // ---- per row: max, skip, alpha; P (in s) and its codes per 16-key group (4 keys a lane) ----
    uint pa[2][4], am[2][4];
    int ps[2][4];
    float sp[2][4], alpha[2], m_new[2];
    bool skip[2];
    SQ_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
#if SAGE8_FAST_EXP  // hidden keys hold -inf, which changes no max: a tree over all 16
      float mx[8];
      SQ_UNROLL
      for (int w = 8; w >= 1; w >>= 1) SQ_UNROLL
      for (int x = 0; x < w; ++x)
        mx[x] = sq_s8_mx(w == 8 ? s[hf][x] : mx[x], w == 8 ? s[hf][x + 8] : mx[x + w]);
      float mt = mx[0];
#else
      float mt = sq_att_neg_inf();
      SQ_UNROLL
      for (int x = 0; x < 16; ++x)
        if (KVIS(16 * (x >> 2) + 4 * t + (x & 3), hf)) mt = sq_s8_mx(mt, s[hf][x]);
#endif
      mt = quad_mx(mt, emu);
      m_new[hf] = sq_s8_mx(m[hf], mt);
#if SAGE8_SPARSE
      uint any = 0;  // a slot of the step visible to the row
      SQ_UNROLL
      for (int x = 0; x < 16; ++x) any |= KVIS(16 * (x >> 2) + 4 * t + (x & 3), hf) ? 1u : 0u;
      skip[hf] = !quad_umax(any, emu) || m_new[hf] == sq_att_neg_inf();
#else
      skip[hf] = vend[hf] - j0 <= 0 || m_new[hf] == sq_att_neg_inf();
#endif
      alpha[hf] = skip[hf] ? 1.0f : SQ_S8_EXP2(m[hf] - m_new[hf]);  // m <= m_new
      SQ_UNROLL
      for (int gr = 0; gr < 4; ++gr) {
        uint amax = 0;
        SQ_UNROLL
        for (int u = 0; u < 4; ++u) {
          const int x = 4 * gr + u;
          s[hf][x] = SQ_S8_P(VIS_P(16 * gr + 4 * t + u, hf), s[hf][x] - m_new[hf]);
          amax = max(amax, SQ_S8_PBITS(s[hf][x]));
        }
        am[hf][gr] = quad_umax(amax, emu);
      }
    }
    // Codes of the 8 groups without a branch (the rare groups outside sq_i8_fast_ok are redone
    // as defined), then the row sums.
    SQ_UNROLL
    for (int x = 0; x < 8; ++x)
      pa[x >> 2][x & 3] = SQ_S8_PCODES(&s[x >> 2][4 * (x & 3)], am[x >> 2][x & 3],
                                       &sp[x >> 2][x & 3], &ps[x >> 2][x & 3]);
#if SAGE8_FAST_DIV
    uint slow = 0;
    SQ_UNROLL
    for (int x = 0; x < 8; ++x) slow |= !sq_i8_fast_ok(am[x >> 2][x & 3]);
    if (slow) {
      SQ_UNROLL
      for (int x = 0; x < 8; ++x)
        if (!sq_i8_fast_ok(am[x >> 2][x & 3]))
          pa[x >> 2][x & 3] = sq_s8_pcodes_d(&s[x >> 2][4 * (x & 3)], am[x >> 2][x & 3],
                                             &sp[x >> 2][x & 3], &ps[x >> 2][x & 3]);
    }
#endif
    SQ_UNROLL
    for (int hf = 0; hf < 2; ++hf) {
      float lt = 0.0f;
      SQ_UNROLL
      for (int gr = 0; gr < 4; gr += 2) {  // two code sums (<= 4 * 508 each) per 32-bit fold
        const int q = quad_sum(ps[hf][gr] | (ps[hf][gr + 1] << 16), emu);
        const float lg0 = sq_s8_row_term(q & 0xffff, sp[hf][gr]);
        const float lg1 = sq_s8_row_term(q >> 16, sp[hf][gr + 1]);
        lt = gr == 0 ? lg0 + lg1 : (lt + lg0) + lg1;
      }
      if (!skip[hf]) {
        l[hf] = fma(l[hf], alpha[hf], lt);
        m[hf] = m_new[hf];
      }
    }

#if SAGE8_SPARSE
    // P codes and scales of every row to local memory (read by column steps' per-lane folds).
    SQ_UNROLL
    for (int hf = 0; hf < 2; ++hf) SQ_UNROLL
    for (int gr = 0; gr < 4; ++gr) {
      pcl[(ra + 8 * hf) * VW + 4 * gr + t] = pa[hf][gr];
      if (t == 0) spl[(ra + 8 * hf) * 4 + gr] = sp[hf][gr];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#endif

    // ---- P.V: Ot[d] = ((U0 + U1) + U2) + U3; O = fma(O, alpha, Ot) ----
#if SQ_S8_SVF
    if (!svbad[n & 1]) {
      SQ_S8_PV_TILE(sq_s8_pv_f_fin)
    } else {
      SQ_S8_PV_TILE(sq_s8_pv_f)
    }
#else
    SQ_S8_PV_TILE(sq_s8_pv_f)
#endif
#if SAGE8_SPARSE
    if (!is_tile) {  // column step: per-column terms (sage8_sparse.h), no barrier in here
      SQ_UNROLL
      for (int x = 0; x < DH / 2;
           ++x) {  // x = 4 nt + e: row ra + 8 (e / 2), channel 8 nt + 2t + e % 2
        const int hf = (x >> 1) & 1, d = 8 * (x >> 2) + 2 * t + (x & 1), row = ra + 8 * hf;
        if (!skip[hf])
          o[x] = fma(o[x], alpha[hf],
                     sq_s8_column_pv(qpr[hf], pcl + row * VW, spl + row * 4, vs + d * VW, kid, kps,
                                     sv + (kv_bh * DH + d) * (lk64 / 16), causal, sink, window));
      }
    }
#endif
    if (chunk_end) {  // R = merge(R, C), C = (O / l, m + log2 l), in out; then a fresh state
      SqAttMerge w[2];
      SQ_UNROLL
      for (int hf = 0; hf < 2; ++hf) {
        w[hf] = sq_att_merge_weights(lse_r[hf], sq_att_chunk_lse(m[hf], l[hf]));
        lse_r[hf] = w[hf].lse;
      }
      SQ_UNROLL
      for (int x = 0; x < DH / 2; ++x) {  // mode 0: R = C (no read); 1: R unchanged; 2: weighted
        const int hf = (x >> 1) & 1, row = ra + 8 * hf;
        __global float* po = ob + row * DH + 8 * (x >> 2) + 2 * t + (x & 1);
        if (row < nrows && w[hf].mode != 1)
          *po =
              sq_att_merge_out(w[hf], w[hf].mode == 2 ? *po : 0.0f, sq_att_chunk_out(o[x], l[hf]));
        o[x] = 0.0f;
      }
      SQ_UNROLL
      for (int hf = 0; hf < 2; ++hf) {
        m[hf] = sq_att_neg_inf();
        l[hf] = 0.0f;
      }
    }
  }

  // ---- out = R, written by the last chunk's merge; a block with no step sees no key: 0 ----
  if (nsteps == 0) {
    SQ_UNROLL
    for (int x = 0; x < DH / 2; ++x) {
      const int row = ra + 8 * ((x >> 1) & 1);
      if (row < nrows) ob[row * DH + 8 * (x >> 2) + 2 * t + (x & 1)] = 0.0f;
    }
  }
}
