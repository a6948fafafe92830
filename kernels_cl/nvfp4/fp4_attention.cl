#pragma OPENCL FP_CONTRACT OFF
// fp4_attention.cl — FP4 (NVFP4, SageAttention3-style) attention forward on packed inputs
// (specs/fp4_attention.md §3-§4). Mirror: fallback_cpu/nvfp4/fp4_attention.cpp.
//
// Macros: HEAD_DIM (64 or 128); FP4_MMA (0: portable integer loops; 1: NVIDIA inline PTX
// mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32, one MMA per 16-group; 2: the MMA path with
// the MMA emulated in local memory, so PoCL checks its fragment indexing; all give the same bits).
// Work-group: 256 work-items, 64 query rows of one (b, h); work-item (r, q) = (lid / 4, lid % 4).
//
// Defined arithmetic order, per query row i (kv head h / (Hq/Hkv), delta row i / delta_rows,
// delta_rows = 128 for per-block Q smoothing, Lq for per-head):
//   visible keys j < limit(i) = Lk, or min(Lk, i + Lk - Lq + 1) when causal;
//   tiles of 64 keys n = 0, 1, ... while 64n < limit(i); per tile:
//   S_j = delta_j (0 without delta), then S_j = S_j + T_g for g = 0..D/16-1, where
//     T_g = (sa == 0 || sb == 0) ? +0 : (((float)I_g * sa) * sb) * 0.25f and I_g the exact int
//     dot of the twice values of Q row i and K row j in group g (any order: it is exact);
//   masked keys S = -inf; m_new = mx(m, max of the tile's S) (NaN-propagating, order-free up to
//     the sign of zero, which no result depends on); skip the tile when m_new == -inf;
//   mu_new = m_new * c; Pt_j = sq_exp2_q(S_j * c - mu_new) * 2688 (masked: 0);
//   quant16 of each group h of 16 keys -> P codes, scale sP_h; L_h = ((float)sum tw * sP_h) * 0.5;
//   U_{h,d} = T of (P group h, V group of those 16 keys, channel d);
//   Ot_d = ((U_0 + U_1) + U_2) + U_3; Lt = ((L_0 + L_1) + L_2) + L_3;
//   alpha = sq_exp2(mu_old - mu_new) (mu_old = -inf before the first processed tile);
//   O_d = fma(O_d, alpha, Ot_d); l = fma(l, alpha, Lt);
//   out_d = (l == 0) ? 0 : O_d / l.
// The row-to-work-item mapping and the MMA/portable choice change no result: every rounding
// above happens on one value in the stated order, and the integer dots are exact.
#include "nvfp4/fp4_math.h"

#define ROWS 64
#define WG 256
#define D HEAD_DIM
#define G (HEAD_DIM / 16)
#define QD (HEAD_DIM / 4)  // channels per work-item in the portable P·V

#if FP4_MMA
// D = A(16x16, s8, row) * B(16x8, s8, col) with zero C. Fragments (g = lane >> 2, t = lane & 3):
// a0 row g, k 4t..4t+3; a1 row g+8, same k; b0 column g, k 4t..4t+3; d0, d1 row g, columns
// 2t, 2t+1; d2, d3 row g+8. int8 lanes packed little-endian (lowest k in the low byte).
// Called by every work-item of the work-group in uniform control flow.
#if FP4_MMA == 1
// NVIDIA's OpenCL compiler takes GNU `asm volatile` (design/NVIDIA_OPENCL.md, verified on the
// H100); the off-GPU compile check (clang OpenCL -> NVPTX -> ptxas, docs/fp4_attention.md) spells
// it __asm__ and defines SQ_PTX_CHECK.
#ifdef SQ_PTX_CHECK
#define FP4_ASM __asm__
#else
#define FP4_ASM asm
#endif
static inline int4 fp4_mma16(uint a0, uint a1, uint b0) {
  int d0, d1, d2, d3;
  const int zero = 0;
  FP4_ASM volatile(
      "mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
      "{%7,%7,%7,%7};"
      : "=r"(d0), "=r"(d1), "=r"(d2), "=r"(d3)
      : "r"(a0), "r"(a1), "r"(b0), "r"(zero));
  return (int4)(d0, d1, d2, d3);
}
#define MMA16(I, a0, a1, b0, sa, sb) (I) = fp4_mma16((a0), (a1), (b0));
#else
// The same fragment contract emulated for PoCL tests: before a phase, every work-item
// publishes the fragments it would feed the MMAs (xa: its A register pairs by slot, xb: its B
// registers by slot), one barrier, then each MMA is computed from the published registers of
// the warp's lanes. No barrier sits inside a loop and the exchange arrays are read in the
// kernel body, not through a __local pointer parameter: PoCL 3.1 gave nondeterministic or zero
// results for both of those variants.
#define XA_SLOTS 16  // >= max(G, 4) A pairs
#define XB_SLOTS 32  // >= max(4 * G, 4 * D / 16) B registers
static inline int fp4_s8(uint w, int e) {
  return (int)(((w >> (8 * e)) & 255u) ^ 128u) - 128;
}
#define MMA16(I, a0, a1, b0, sa, sb)                                                   \
  {                                                                                    \
    const int lane_ = lid & 31, base_ = lid - lane_, g_ = lane_ >> 2, t_ = lane_ & 3;  \
    int d0_ = 0, d1_ = 0, d2_ = 0, d3_ = 0;                                            \
    for (int tt_ = 0; tt_ < 4; ++tt_)                                                  \
      for (int e_ = 0; e_ < 4; ++e_) {                                                 \
        const int ai_ = ((base_ + 4 * g_ + tt_) * XA_SLOTS + (sa)) * 2;                \
        const int ar_ = fp4_s8(xa[ai_], e_), ar8_ = fp4_s8(xa[ai_ + 1], e_);           \
        const int bc0_ = fp4_s8(xb[(base_ + 8 * t_ + tt_) * XB_SLOTS + (sb)], e_);     \
        const int bc1_ = fp4_s8(xb[(base_ + 8 * t_ + 4 + tt_) * XB_SLOTS + (sb)], e_); \
        d0_ += ar_ * bc0_;                                                             \
        d1_ += ar_ * bc1_;                                                             \
        d2_ += ar8_ * bc0_;                                                            \
        d3_ += ar8_ * bc1_;                                                            \
      }                                                                                \
    (I) = (int4)(d0_, d1_, d2_, d3_);                                                  \
  }
#endif
static inline uint fp4_pack4(__local const char* p) {
  return as_uint(vload4(0, p));
}
#endif

static inline int fp4_dot16(__local const char* a, __local const char* b) {
  int s = 0;
  for (int e = 0; e < 16; ++e) s += (int)a[e] * (int)b[e];
  return s;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void fp4_attention(
    __global const uchar* qc, __global const uchar* qs, __global const uchar* kc,
    __global const uchar* ks, __global const uchar* vc, __global const uchar* vs,
    __global const float* delta, int has_delta, int delta_rows, int delta_blk0, int delta_nblk,
    __global float* out, int hq, int hkv, int lq, int lk, int lk64, int row_begin, int row_end,
    int causal, float c) {
  __local char ktw[64 * D];       // K tile twice values [key][d]
  __local float ksc[64 * G];      // K tile scales [key][g]
  __local char vtw[D * 64];       // V tile twice values [d][key]
  __local float vsc[D * 4];       // V tile scales [d][group]
  __local float pmax[ROWS * 4];   // partial tile maxima [r][q]
  __local char ptw[ROWS * 64];    // P twice values [r][key]
  __local float psc[ROWS * 4];    // P scales [r][group]
  __local float plsum[ROWS * 4];  // L_h [r][group]
  __local float qsc[ROWS * G];    // Q scales [r][g]
#if FP4_MMA
  __local float sco[ROWS * 64];  // scores [r][key]
  __local float alpha_l[ROWS];
  __local int act_l[ROWS];
#if FP4_MMA == 2
  __local uint xa[WG * XA_SLOTS * 2];
  __local uint xb[WG * XB_SLOTS];
#endif
#else
  __local char qtw[ROWS * D];  // Q twice values [r][d]
#endif

  const int lid = (int)get_local_id(0);
  const int r = lid >> 2, q = lid & 3;
  const int row0 = row_begin + (int)get_group_id(0) * ROWS;
  const int h = (int)get_group_id(1), b = (int)get_group_id(2);
  const int kvh = b * hkv + h / (hq / hkv);
  const long bh = (long)b * hq + h;
  const int i = row0 + r;
  const int lim_raw = causal ? i + (lk - lq) + 1 : lk;
  const int limit = i < row_end ? (lim_raw < lk ? (lim_raw > 0 ? lim_raw : 0) : lk) : 0;
  // Keys the whole work-group needs: the largest limit of its rows.
  const int last_row = (row0 + ROWS < row_end ? row0 + ROWS : row_end) - 1;
  const int wg_raw = causal ? last_row + (lk - lq) + 1 : lk;
  const int wg_limit = wg_raw < lk ? (wg_raw > 0 ? wg_raw : 0) : lk;
  __global const float* drow =
      has_delta ? delta + (bh * delta_nblk + (i < row_end ? i : row0) / delta_rows - delta_blk0) *
                              (long)lk
                : delta;

  // Q rows of the block: twice values and scales (rows >= Lq: zeros).
#if !FP4_MMA
  for (int idx = lid; idx < ROWS * (D / 2); idx += WG) {
    const int rr = idx / (D / 2), k2 = idx % (D / 2);
    const uint byte = row0 + rr < row_end ? qc[((bh * lq) + row0 + rr) * (D / 2) + k2] : 0u;
    qtw[rr * D + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
    qtw[rr * D + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
  }
#endif
  for (int idx = lid; idx < ROWS * G; idx += WG) {
    const int rr = idx / G;
    qsc[idx] = row0 + rr < row_end ? sq_e4m3_decode(qs[(bh * lq + row0 + rr) * G + idx % G]) : 0.0f;
  }

#if FP4_MMA
  const int lane = lid & 31, warp = lid >> 5;
  const int fg = lane >> 2, ft = lane & 3;
  const int slab = warp >> 1;  // rows 16*slab .. 16*slab+15
  const int whalf = warp & 1;  // scores: keys 32*whalf..; P·V: channels (D/2)*whalf..
  // Q fragments for all groups: rows 16*slab + fg (+8), elements 16g + 4ft .. +3.
  uint qa0[G], qa1[G];
  for (int g = 0; g < G; ++g) {
    uint w0 = 0u, w1 = 0u;
    const int ra = row0 + 16 * slab + fg, rb = ra + 8;
    for (int e = 0; e < 4; e += 2) {
      const int k2 = (16 * g + 4 * ft + e) / 2;
      const uint ba = ra < row_end ? qc[((bh * lq) + ra) * (D / 2) + k2] : 0u;
      const uint bb = rb < row_end ? qc[((bh * lq) + rb) * (D / 2) + k2] : 0u;
      w0 |= ((uint)(sq_e2m1_twice(sq_fp4_lo(ba)) & 255) |
             ((uint)(sq_e2m1_twice(sq_fp4_hi(ba)) & 255) << 8))
            << (8 * e);
      w1 |= ((uint)(sq_e2m1_twice(sq_fp4_lo(bb)) & 255) |
             ((uint)(sq_e2m1_twice(sq_fp4_hi(bb)) & 255) << 8))
            << (8 * e);
    }
    qa0[g] = w0;
    qa1[g] = w1;
  }
  float O[D / 16][4];  // channels (D/2)*whalf + 8nt + 2ft (+1), rows fg and fg+8 of the slab
  for (int nt = 0; nt < D / 16; ++nt) O[nt][0] = O[nt][1] = O[nt][2] = O[nt][3] = 0.0f;
  float lrow[2] = {0.0f, 0.0f};
#else
  float O[QD];
  for (int dd = 0; dd < QD; ++dd) O[dd] = 0.0f;
  float l = 0.0f;
#endif
  float m = -INFINITY, mu_old = -INFINITY;

  for (int j0 = 0; j0 < wg_limit; j0 += SQ_FP4_TILE) {
    barrier(CLK_LOCAL_MEM_FENCE);
    // K tile (keys >= Lk: zero codes and scales), V tile (padded to Lk64 by the format).
    for (int idx = lid; idx < 64 * (D / 2); idx += WG) {
      const int key = idx / (D / 2), k2 = idx % (D / 2);
      const int j = j0 + key;
      const uint byte = j < lk ? kc[((long)kvh * lk + j) * (D / 2) + k2] : 0u;
      ktw[key * D + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
      ktw[key * D + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
    }
    for (int idx = lid; idx < 64 * G; idx += WG) {
      const int j = j0 + idx / G;
      ksc[idx] = j < lk ? sq_e4m3_decode(ks[((long)kvh * lk + j) * G + idx % G]) : 0.0f;
    }
    for (int idx = lid; idx < D * 32; idx += WG) {
      const int d = idx >> 5, k2 = idx & 31;
      const uint byte = vc[((long)kvh * D + d) * (lk64 / 2) + j0 / 2 + k2];
      vtw[d * 64 + 2 * k2] = (char)sq_e2m1_twice(sq_fp4_lo(byte));
      vtw[d * 64 + 2 * k2 + 1] = (char)sq_e2m1_twice(sq_fp4_hi(byte));
    }
    for (int idx = lid; idx < D * 4; idx += WG) {
      const int d = idx >> 2;
      vsc[idx] = sq_e4m3_decode(vs[((long)kvh * D + d) * (lk64 / 16) + j0 / 16 + (idx & 3)]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // Scores of row r, keys 16q .. 16q+15 of the tile.
    float S[16];
#if FP4_MMA
#if FP4_MMA == 2
    for (int g = 0; g < G; ++g) {
      xa[(lid * XA_SLOTS + g) * 2] = qa0[g];
      xa[(lid * XA_SLOTS + g) * 2 + 1] = qa1[g];
      for (int nt = 0; nt < 4; ++nt)
        xb[lid * XB_SLOTS + nt * G + g] =
            fp4_pack4(ktw + (32 * whalf + 8 * nt + fg) * D + 16 * g + 4 * ft);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
    {
      // Warp: rows 16*slab.., keys 32*whalf + 8nt + (2ft, 2ft+1) for nt = 0..3.
      for (int nt = 0; nt < 4; ++nt) {
        const int kb = 32 * whalf + 8 * nt;
        const int ra = 16 * slab + fg, rb = ra + 8;
        const int ia = row0 + ra < row_end ? row0 + ra : row0;
        const int ib = row0 + rb < row_end ? row0 + rb : row0;
        __global const float* da =
            has_delta ? delta + (bh * delta_nblk + ia / delta_rows - delta_blk0) * (long)lk : delta;
        __global const float* db =
            has_delta ? delta + (bh * delta_nblk + ib / delta_rows - delta_blk0) * (long)lk : delta;
        const int c0 = kb + 2 * ft, c1 = c0 + 1;
        float s00 = 0.0f, s01 = 0.0f, s10 = 0.0f, s11 = 0.0f;
        if (has_delta) {
          if (j0 + c0 < lk) s00 = da[j0 + c0], s10 = db[j0 + c0];
          if (j0 + c1 < lk) s01 = da[j0 + c1], s11 = db[j0 + c1];
        }
        for (int g = 0; g < G; ++g) {
          const uint kb0 = fp4_pack4(ktw + (kb + fg) * D + 16 * g + 4 * ft);
          int4 I;
          MMA16(I, qa0[g], qa1[g], kb0, g, nt * G + g)
          s00 = s00 + sq_fp4_group_term(I.x, qsc[ra * G + g], ksc[c0 * G + g]);
          s01 = s01 + sq_fp4_group_term(I.y, qsc[ra * G + g], ksc[c1 * G + g]);
          s10 = s10 + sq_fp4_group_term(I.z, qsc[rb * G + g], ksc[c0 * G + g]);
          s11 = s11 + sq_fp4_group_term(I.w, qsc[rb * G + g], ksc[c1 * G + g]);
        }
        sco[ra * 64 + c0] = s00;
        sco[ra * 64 + c1] = s01;
        sco[rb * 64 + c0] = s10;
        sco[rb * 64 + c1] = s11;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = 0; e < 16; ++e)
      S[e] = j0 + 16 * q + e < limit ? sco[r * 64 + 16 * q + e] : -INFINITY;
#else
    for (int e = 0; e < 16; ++e) {
      const int t = 16 * q + e, j = j0 + t;
      float s = -INFINITY;
      if (j < limit) {
        s = has_delta ? drow[j] : 0.0f;
        for (int g = 0; g < G; ++g)
          s = s + sq_fp4_group_term(fp4_dot16(qtw + r * D + 16 * g, ktw + t * D + 16 * g),
                                    qsc[r * G + g], ksc[t * G + g]);
      }
      S[e] = s;
    }
#endif
    float pm = -INFINITY;
    for (int e = 0; e < 16; ++e) pm = sq_mx(pm, S[e]);
    pmax[r * 4 + q] = pm;
    barrier(CLK_LOCAL_MEM_FENCE);

    // Softmax step and two-level quantization of P group q of row r.
    const float tmax =
        sq_mx(sq_mx(sq_mx(pmax[r * 4], pmax[r * 4 + 1]), pmax[r * 4 + 2]), pmax[r * 4 + 3]);
    const float m_new = sq_mx(m, tmax);
    const int act = j0 < limit && m_new != -INFINITY;
    float alpha = 0.0f;
    if (act) {
      const float mu_new = m_new * c;
      float pt[16];
      for (int e = 0; e < 16; ++e)
        pt[e] = j0 + 16 * q + e < limit ? sq_fp4_p_level1(S[e], c, mu_new) : 0.0f;
      uchar bytes[8];
      const uint sc = sq_fp4_quant16(pt, bytes);
      int sum = 0;
      for (int k = 0; k < 8; ++k) {
        const int lo = sq_e2m1_twice(sq_fp4_lo(bytes[k])), hi = sq_e2m1_twice(sq_fp4_hi(bytes[k]));
        ptw[r * 64 + 16 * q + 2 * k] = (char)lo;
        ptw[r * 64 + 16 * q + 2 * k + 1] = (char)hi;
        sum += lo + hi;
      }
      const float sp = sq_e4m3_decode(sc);
      psc[r * 4 + q] = sp;
      plsum[r * 4 + q] = sq_fp4_p_group_sum(sum, sp);
      alpha = sq_exp2(mu_old - mu_new);
      m = m_new;
      mu_old = mu_new;
    } else {
      for (int e = 0; e < 16; ++e) ptw[r * 64 + 16 * q + e] = 0;
      psc[r * 4 + q] = 0.0f;
      plsum[r * 4 + q] = 0.0f;
    }
#if FP4_MMA
    if (q == 0) {
      alpha_l[r] = alpha;
      act_l[r] = act;
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    // P·V and the online update.
#if FP4_MMA
    {
      const int ra = 16 * slab + fg, rb = ra + 8;
      const int acta = act_l[ra], actb = act_l[rb];
      const float ala = alpha_l[ra], alb = alpha_l[rb];
      uint pa0[4], pa1[4];
      for (int hg = 0; hg < 4; ++hg) {
        pa0[hg] = fp4_pack4(ptw + ra * 64 + 16 * hg + 4 * ft);
        pa1[hg] = fp4_pack4(ptw + rb * 64 + 16 * hg + 4 * ft);
      }
#if FP4_MMA == 2
      for (int hg = 0; hg < 4; ++hg) {
        xa[(lid * XA_SLOTS + hg) * 2] = pa0[hg];
        xa[(lid * XA_SLOTS + hg) * 2 + 1] = pa1[hg];
        for (int nt = 0; nt < D / 16; ++nt)
          xb[lid * XB_SLOTS + nt * 4 + hg] =
              fp4_pack4(vtw + ((D / 2) * whalf + 8 * nt + fg) * 64 + 16 * hg + 4 * ft);
      }
      barrier(CLK_LOCAL_MEM_FENCE);
#endif
      for (int nt = 0; nt < D / 16; ++nt) {
        const int cb = (D / 2) * whalf + 8 * nt;
        const int d0 = cb + 2 * ft, d1 = d0 + 1;
        float u00 = 0.0f, u01 = 0.0f, u10 = 0.0f, u11 = 0.0f;
        for (int hg = 0; hg < 4; ++hg) {
          const uint vb0 = fp4_pack4(vtw + (cb + fg) * 64 + 16 * hg + 4 * ft);
          int4 I;
          MMA16(I, pa0[hg], pa1[hg], vb0, hg, nt * 4 + hg)
          const float t00 = sq_fp4_group_term(I.x, psc[ra * 4 + hg], vsc[d0 * 4 + hg]);
          const float t01 = sq_fp4_group_term(I.y, psc[ra * 4 + hg], vsc[d1 * 4 + hg]);
          const float t10 = sq_fp4_group_term(I.z, psc[rb * 4 + hg], vsc[d0 * 4 + hg]);
          const float t11 = sq_fp4_group_term(I.w, psc[rb * 4 + hg], vsc[d1 * 4 + hg]);
          // ((U0 + U1) + U2) + U3: the first group is taken as is (0 + U0 would turn -0 to +0;
          // U is never -0, but keep the fold literal).
          u00 = hg == 0 ? t00 : u00 + t00;
          u01 = hg == 0 ? t01 : u01 + t01;
          u10 = hg == 0 ? t10 : u10 + t10;
          u11 = hg == 0 ? t11 : u11 + t11;
        }
        if (acta) {
          O[nt][0] = fma(O[nt][0], ala, u00);
          O[nt][1] = fma(O[nt][1], ala, u01);
        }
        if (actb) {
          O[nt][2] = fma(O[nt][2], alb, u10);
          O[nt][3] = fma(O[nt][3], alb, u11);
        }
      }
      if (acta)
        lrow[0] =
            fma(lrow[0], ala,
                ((plsum[ra * 4] + plsum[ra * 4 + 1]) + plsum[ra * 4 + 2]) + plsum[ra * 4 + 3]);
      if (actb)
        lrow[1] =
            fma(lrow[1], alb,
                ((plsum[rb * 4] + plsum[rb * 4 + 1]) + plsum[rb * 4 + 2]) + plsum[rb * 4 + 3]);
    }
#else
    if (act) {
      for (int dd = 0; dd < QD; ++dd) {
        const int d = q * QD + dd;
        float ot = 0.0f;
        for (int hg = 0; hg < 4; ++hg) {
          const float u =
              sq_fp4_group_term(fp4_dot16(ptw + r * 64 + 16 * hg, vtw + d * 64 + 16 * hg),
                                psc[r * 4 + hg], vsc[d * 4 + hg]);
          ot = hg == 0 ? u : ot + u;
        }
        O[dd] = fma(O[dd], alpha, ot);
      }
      const float lt = ((plsum[r * 4] + plsum[r * 4 + 1]) + plsum[r * 4 + 2]) + plsum[r * 4 + 3];
      l = fma(l, alpha, lt);
    }
#endif
  }

  // out_d = (l == 0) ? 0 : O_d / l.
#if FP4_MMA
  {
    const int ra = row0 + 16 * slab + fg, rb = ra + 8;
    for (int nt = 0; nt < D / 16; ++nt) {
      const int d0 = (D / 2) * whalf + 8 * nt + 2 * ft;
      if (ra < row_end) {
        __global float* o = out + (bh * lq + ra) * D + d0;
        o[0] = lrow[0] == 0.0f ? 0.0f : O[nt][0] / lrow[0];
        o[1] = lrow[0] == 0.0f ? 0.0f : O[nt][1] / lrow[0];
      }
      if (rb < row_end) {
        __global float* o = out + (bh * lq + rb) * D + d0;
        o[0] = lrow[1] == 0.0f ? 0.0f : O[nt][2] / lrow[1];
        o[1] = lrow[1] == 0.0f ? 0.0f : O[nt][3] / lrow[1];
      }
    }
  }
#else
  if (i < row_end) {
    __global float* o = out + (bh * lq + i) * D + q * QD;
    for (int dd = 0; dd < QD; ++dd) o[dd] = l == 0.0f ? 0.0f : O[dd] / l;
  }
#endif
}
