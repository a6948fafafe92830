// fp4_attention_pv.h — P·V and the online update of one step of kernels_cl/nvfp4/fp4_attention.cl,
// in the order of that file's banner: a tile's U_{h,d} from the exact integer dot of P group h
// with V group h, a column chunk's U_{h,d} folded slot by slot (fp4_col_out); Ot_d = ((U_0 + U_1)
// + U_2) + U_3, Lt = ((L_0 + L_1) + L_2) + L_3; O_d = fma(O_d, alpha, Ot_d), l = fma(l, alpha,
// Lt) for an active row. The MMA path (FP4_MMA 1, 2: fp4_mma.h; rows ra, rb of the lane, columns
// of nt) and the portable loops (row r, channels q * QD ..) give the same bits: every rounding
// happens on one value in that order. OpenCL C only; FP4_PV_UPDATE() expands inside a block of
// the kernel's step loop and uses its variables (lid, r, q, act, alpha, is_tile, tile_groups, O,
// l / lrow, the local P and V tiles; MMA: lane layout, act_l, alpha_l, xa, xb) and, in MMA mode,
// declares ra, rb for the chunk merge that follows it (fp4_attention_merge.h).
#ifndef SPARQ_NVFP4_FP4_ATTENTION_PV_H
#define SPARQ_NVFP4_FP4_ATTENTION_PV_H

// Ot of a column chunk (§4.6): per group hg, u = +0, then u = u + term for each slot with a
// nonzero P code (term: the exact per-column product with that key's V scale, code in vsc);
// Ot = ((U0 + U1) + U2) + U3.
static inline float fp4_col_out(__local const char* p, __local const float* sp,
                                __local const char* v, __local const char* vsc) {
  float ot = 0.0f;
  for (int hg = 0; hg < 4; ++hg) {
    float u = 0.0f;
    for (int e = 0; e < 16; ++e) {
      const int t = 16 * hg + e;
      if (p[t] != 0)
        u = u + sq_fp4_group_term((int)p[t] * (int)v[t], sp[hg], sq_e4m3_decode((uchar)vsc[t]));
    }
    ot = hg == 0 ? u : ot + u;
  }
  return ot;
}

#if FP4_MMA
#if FP4_MMA == 2
// The emulated MMA reads every lane's published fragments (fp4_mma.h).
#define FP4_PUBLISH_PV_FRAGMENTS()                                                  \
  for (int hg = 0; hg < 4; ++hg) {                                                  \
    xa[(lid * XA_SLOTS + hg) * 2] = pa0[hg];                                        \
    xa[(lid * XA_SLOTS + hg) * 2 + 1] = pa1[hg];                                    \
    for (int nt = 0; nt < D / 16; ++nt)                                             \
      xb[lid * XB_SLOTS + nt * 4 + hg] =                                            \
          fp4_pack4(vtw + ((D / 2) * whalf + 8 * nt + fg) * 64 + 16 * hg + 4 * ft); \
  }                                                                                 \
  barrier(CLK_LOCAL_MEM_FENCE)
#else
#define FP4_PUBLISH_PV_FRAGMENTS()
#endif
// The tile groups of a P.V lane pair; TERM: FP4_MMA_TERM, or FP4_MMA_TERM_N in a tile whose V
// scales are all > 0 (sflag: vbad[n & 1] == 0, fp4_attention_stage.h): then the test fires only
// for sP == 0, whose P codes are all 0, so the term is (+0 * +0) * sV * 0.25 = +0 as defined.
#define FP4_PV_GROUPS(TERM)                                              \
  for (int hg = 0; hg < tile_groups; ++hg) {                             \
    const uint vb0 = fp4_pack4(vtw + (cb + fg) * 64 + 16 * hg + 4 * ft); \
    int4 I;                                                              \
    MMA16(I, pa0[hg], pa1[hg], vb0, hg, nt * 4 + hg)                     \
    const float t00 = TERM(I.x, psc[ra * 4 + hg], vsc[d0 * 4 + hg]);     \
    const float t01 = TERM(I.y, psc[ra * 4 + hg], vsc[d1 * 4 + hg]);     \
    const float t10 = TERM(I.z, psc[rb * 4 + hg], vsc[d0 * 4 + hg]);     \
    const float t11 = TERM(I.w, psc[rb * 4 + hg], vsc[d1 * 4 + hg]);     \
    u00 = hg == 0 ? t00 : u00 + t00;                                     \
    u01 = hg == 0 ? t01 : u01 + t01;                                     \
    u10 = hg == 0 ? t10 : u10 + t10;                                     \
    u11 = hg == 0 ? t11 : u11 + t11;                                     \
  }
#if FP4_FORMS & FP4_F_SFLAG
#define FP4_PV_TERMS()            \
  if (!vbad[n & 1]) {             \
    FP4_PV_GROUPS(FP4_MMA_TERM_N) \
  } else {                        \
    FP4_PV_GROUPS(FP4_MMA_TERM)   \
  }
#else
#define FP4_PV_TERMS() FP4_PV_GROUPS(FP4_MMA_TERM)
#endif
// ((U0 + U1) + U2) + U3 in the tile loop: the first group is taken as is (0 + U0 would turn -0
// to +0; U is never -0, but the fold stays literal).
#define FP4_PV_UPDATE()                                                                           \
  const int ra = 16 * slab + fg, rb = ra + 8;                                                     \
  const int acta = act_l[ra], actb = act_l[rb];                                                   \
  const float ala = alpha_l[ra], alb = alpha_l[rb];                                               \
  uint pa0[4], pa1[4];                                                                            \
  for (int hg = 0; hg < 4; ++hg) {                                                                \
    pa0[hg] = fp4_pack4(ptw + ra * 64 + 16 * hg + 4 * ft);                                        \
    pa1[hg] = fp4_pack4(ptw + rb * 64 + 16 * hg + 4 * ft);                                        \
  }                                                                                               \
  FP4_PUBLISH_PV_FRAGMENTS();                                                                     \
  for (int nt = 0; nt < D / 16; ++nt) {                                                           \
    const int cb = (D / 2) * whalf + 8 * nt;                                                      \
    const int d0 = cb + 2 * ft, d1 = d0 + 1;                                                      \
    float u00 = 0.0f, u01 = 0.0f, u10 = 0.0f, u11 = 0.0f;                                         \
    if (!is_tile) {                                                                               \
      u00 = fp4_col_out(ptw + ra * 64, psc + ra * 4, vtw + d0 * 64, ktw + d0 * 64);               \
      u01 = fp4_col_out(ptw + ra * 64, psc + ra * 4, vtw + d1 * 64, ktw + d1 * 64);               \
      u10 = fp4_col_out(ptw + rb * 64, psc + rb * 4, vtw + d0 * 64, ktw + d0 * 64);               \
      u11 = fp4_col_out(ptw + rb * 64, psc + rb * 4, vtw + d1 * 64, ktw + d1 * 64);               \
    }                                                                                             \
    FP4_PV_TERMS()                                                                                \
    if (acta) {                                                                                   \
      O[nt][0] = fma(O[nt][0], ala, u00);                                                         \
      O[nt][1] = fma(O[nt][1], ala, u01);                                                         \
    }                                                                                             \
    if (actb) {                                                                                   \
      O[nt][2] = fma(O[nt][2], alb, u10);                                                         \
      O[nt][3] = fma(O[nt][3], alb, u11);                                                         \
    }                                                                                             \
  }                                                                                               \
  if (acta)                                                                                       \
    lrow[0] = fma(lrow[0], ala,                                                                   \
                  ((plsum[ra * 4] + plsum[ra * 4 + 1]) + plsum[ra * 4 + 2]) + plsum[ra * 4 + 3]); \
  if (actb)                                                                                       \
  lrow[1] = fma(lrow[1], alb,                                                                     \
                ((plsum[rb * 4] + plsum[rb * 4 + 1]) + plsum[rb * 4 + 2]) + plsum[rb * 4 + 3])
#else
#define FP4_PV_UPDATE()                                                                         \
  if (act) {                                                                                    \
    for (int dd = 0; dd < QD; ++dd) {                                                           \
      const int d = q * QD + dd;                                                                \
      float ot =                                                                                \
          is_tile ? 0.0f : fp4_col_out(ptw + r * 64, psc + r * 4, vtw + d * 64, ktw + d * 64);  \
      for (int hg = 0; hg < tile_groups; ++hg) {                                                \
        const float u =                                                                         \
            sq_fp4_group_term(fp4_dot16(ptw + r * 64 + 16 * hg, vtw + d * 64 + 16 * hg),        \
                              psc[r * 4 + hg], vsc[d * 4 + hg]);                                \
        ot = hg == 0 ? u : ot + u;                                                              \
      }                                                                                         \
      O[dd] = fma(O[dd], alpha, ot);                                                            \
    }                                                                                           \
    const float lt = ((plsum[r * 4] + plsum[r * 4 + 1]) + plsum[r * 4 + 2]) + plsum[r * 4 + 3]; \
    l = fma(l, alpha, lt);                                                                      \
  }
#endif

#endif  // SPARQ_NVFP4_FP4_ATTENTION_PV_H
