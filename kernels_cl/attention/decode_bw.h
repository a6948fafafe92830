// decode_bw.h — the compile-time layout of decode_bw.cl (from DB_ROWS, DB_THREADS, DB_COLS,
// HEAD_DIM, KV_ES, DB_UNROLL, DB_ASYNC, DB_ASYNC_PTX) and its tile-movement macros. The FETCH_K,
// FETCH_V1, STORE_V1 and COPY_TILE macros expand inside attention_rows and use its variables
// (lid, s_key, s_sl, b, hk, k0, lk, n_end, mode, the K/V and scale arguments, the page table and
// the local tiles); OpenCL C only.
#ifndef SPARQ_ATTENTION_DECODE_BW_H
#define SPARQ_ATTENTION_DECODE_BW_H

#include "attention/decode_vec.h"

#define ROWS DB_ROWS
#define NT DB_THREADS
#define CW DB_COLS
#define DH HEAD_DIM
#define BN SQ_ATT_TILE
#define VR (DH / DV_VEC)    // 16-byte vectors per K/V row
#define KS (NT / BN)        // score work-items per key
#define SR (ROWS / KS)      // score rows per work-item
#define VPT (BN * VR / NT)  // staged V vectors per work-item
#define NCG (DH / CW)       // P.V column groups
#define RG (NT / NCG)       // P.V row groups
#define RPT (ROWS / RG)     // P.V rows per work-item
#define TPR (NT / ROWS)     // partial maxima per row
#define KPRE (VR <= 8)      // K row prefetched in registers
#ifndef DB_VPRE
#define DB_VPRE 1
#endif
#define VPRE (DB_VPRE && VPT <= 8)  // next tile's V prefetched in registers
#if NT % BN != 0 || ROWS % KS != 0 || NT % NCG != 0 || ROWS % RG != 0 || BN % TPR != 0 || \
    (BN * VR) % NT != 0
#error "decode_bw.cl: DB_ROWS / DB_THREADS / DB_COLS do not tile the work"
#endif

// Loops over private arrays are unrolled: constant indices keep them in registers.
#ifndef DB_UNROLL
#define DB_UNROLL 1
#endif
#if DB_UNROLL
#define UNROLL _Pragma("unroll")
#define UNROLL8 _Pragma("unroll 8")  // P.V key loops: loads of 8 keys in flight
#else
#define UNROLL
#define UNROLL8
#endif
// DB_ASYNC=1 (tiles of at most 8 vectors a row): K and V tiles are copied into two local buffers,
// tile n + 1 while tile n is computed, and K rows are read from local memory (rows padded by
// one vector: conflict-free); no prefetch registers. DB_ASYNC_PTX=1 (NVIDIA sm_80+): the copies
// are cp.async; otherwise plain copies (the same data in the same buffers: PoCL tests).
#ifndef DB_ASYNC
#define DB_ASYNC 0
#endif
#ifndef DB_ASYNC_PTX
#define DB_ASYNC_PTX 0
#endif
#define ASYNC (DB_ASYNC && VR <= 8)
// uint4 per K / V row in local memory: async rows are padded by one vector, so the copies of the
// rows of 8 consecutive keys (and K row reads) hit distinct banks.
#if ASYNC
#define KROW (VR + 1)
#else
#define KROW VR
#endif
#if ASYNC && DB_ASYNC_PTX
#ifdef __clang__  // clang's OpenCL mode (off-GPU PTX checks); NVIDIA's compiler takes `asm`
#define DB_ASM __asm__
#else
#define DB_ASM asm
#endif
static inline void cp16(__local uint4* dst, __global const uint4* src) {
  DB_ASM volatile("cp.async.ca.shared.global [%0], [%1], 16;" ::"r"((uint)(size_t)dst),
                  "l"((ulong)(size_t)src)
                  : "memory");
}
static inline void cp4(__local float* dst, __global const float* src) {
  DB_ASM volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"((uint)(size_t)dst),
                  "l"((ulong)(size_t)src)
                  : "memory");
}
#define CP_COMMIT() DB_ASM volatile("cp.async.commit_group;" ::: "memory")
#define CP_WAIT() DB_ASM volatile("cp.async.wait_group 0;" ::: "memory")
#else
#define cp16(dst, src) (*(dst) = *(src))
#define cp4(dst, src) (*(dst) = *(src))
#define CP_COMMIT()
#define CP_WAIT()
#endif
#define VEC_AT(base, at) (((__global const uint4*)(base))[(at) / DV_VEC])
// Element offset of a K/V row (or of its scale) at (page or sequence pg, slot or key position sl).
#define ROW(off, sb, sr, sh, pg, sl) ((off) + (long)(pg) * (sb) + (long)(sl) * (sr) + hk * (sh))
#if CW == 1
#define LOAD_RAW(dst, src) dst[0] = *(src)
#elif CW == 2
#define LOAD_RAW(dst, src)                             \
  {                                                    \
    const dv_raw2 t2 = *(__local const dv_raw2*)(src); \
    dst[0] = t2.x;                                     \
    dst[1] = t2.y;                                     \
  }
#else
#define LOAD_RAW(dst, src)                             \
  {                                                    \
    const dv_raw4 t4 = *(__local const dv_raw4*)(src); \
    dst[0] = t4.x;                                     \
    dst[1] = t4.y;                                     \
    dst[2] = t4.z;                                     \
    dst[3] = t4.w;                                     \
  }
#endif

// The CW values of a P.V work-item's columns of one V row in local memory (raw, row scale scl):
// int8 codes as one word (dv_i8x4_to_f32, times the scale: sq_att_deq_i8), else element-wise.
#if KV_ES == 1
#if CW == 1
#define V_WORD(src) ((uint) * (__local const uchar*)(src))
#elif CW == 2
#define V_WORD(src) ((uint) * (__local const ushort*)(src))
#else
#define V_WORD(src) (*(__local const uint*)(src))
#endif
#define LOAD_V(dst, src, scl)                              \
  {                                                        \
    const float4 f4 = dv_i8x4_to_f32(V_WORD(src)) * (scl); \
    dst[0] = f4.x;                                         \
    if (CW > 1) dst[CW > 1 ? 1 : 0] = f4.y;                \
    if (CW > 2) {                                          \
      dst[CW > 2 ? 2 : 0] = f4.z;                          \
      dst[CW > 2 ? 3 : 0] = f4.w;                          \
    }                                                      \
  }
#else
#define LOAD_V(dst, src, scl)                                                      \
  {                                                                                \
    dv_raw raw[CW];                                                                \
    LOAD_RAW(raw, src);                                                            \
    UNROLL for (int cc = 0; cc < CW; ++cc) dst[cc] = dv_value(raw[cc], scl, v_dt); \
  }
#endif

// The probabilities of a P.V work-item's RPT rows for one key (16-byte aligned when RPT >= 4).
#if RPT >= 4
#define LOAD_P(dst, src)                           \
  UNROLL for (int q4i = 0; q4i < RPT / 4; ++q4i) { \
    const float4 t4 = LD4((src) + 4 * q4i);        \
    dst[4 * q4i] = t4.x;                           \
    dst[4 * q4i + 1] = t4.y;                       \
    dst[4 * q4i + 2] = t4.z;                       \
    dst[4 * q4i + 3] = t4.w;                       \
  }
#elif RPT == 2
#define LOAD_P(dst, src)                             \
  {                                                  \
    const float2 t2 = *(__local const float2*)(src); \
    dst[0] = t2.x;                                   \
    dst[1] = t2.y;                                   \
  }
#else
#define LOAD_P(dst, src) dst[0] = *(src)
#endif

// Page / slot of key s_key of tile n (for this work-item's K row, and kv_pg / kv_sl for V).
#define FETCH_K(n)                                                                      \
  {                                                                                     \
    const int j = (n)*BN + s_key;                                                       \
    const bool in = (n) < n_end && j < lk;                                              \
    const int pg = !in ? 0 : mode == 2 ? pages[pt_off + b * pt_st + j / page_size] : b; \
    const int sl = !in ? 0 : mode == 2 ? j % page_size : (int)k0 + j;                   \
    if (s_sl == 0) {                                                                    \
      kv_pg[((n)&1) * BN + s_key] = pg;                                                 \
      kv_sl[((n)&1) * BN + s_key] = sl;                                                 \
    }                                                                                   \
    k_at = ROW(k_off, k_sb, k_sr, k_sh, pg, sl);                                        \
    kscl = (KV_ES == 1 && in) ? k_sc[ROW(ks_off, ks_sb, ks_sr, ks_sh, pg, sl)] : 1.0f;  \
    if (!in) k_at = -1;                                                                 \
    KLOAD                                                                               \
  }
#if KPRE
#define KLOAD                                   \
  UNROLL for (int i = 0; i < VR; ++i) kpre[i] = \
      k_at >= 0 ? VEC_AT(k, k_at + i * DV_VEC) : (uint4)(0u);
#else
#define KLOAD
#endif
// This work-item's V vectors of tile n (reads kv_pg / kv_sl: after a barrier that follows
// FETCH_K(n)).
#define FETCH_V1(n, i, val, scl)                                                           \
  {                                                                                        \
    const int x = lid + NT * (i), key = x / VR, j = (n)*BN + key;                          \
    val = (uint4)(0u);                                                                     \
    scl = 1.0f;                                                                            \
    if ((n) < n_end && j < lk) {                                                           \
      const int pg = kv_pg[((n)&1) * BN + key], sl = kv_sl[((n)&1) * BN + key];            \
      val = VEC_AT(v, ROW(v_off, v_sb, v_sr, v_sh, pg, sl) + (x % VR) * DV_VEC);           \
      if (KV_ES == 1 && x % VR == 0) scl = v_sc[ROW(vs_off, vs_sb, vs_sr, vs_sh, pg, sl)]; \
    }                                                                                      \
  }
#define STORE_V1(i, val, scl)           \
  {                                     \
    const int x = lid + NT * (i);       \
    vs[x] = val;                        \
    if (x % VR == 0) vsc[x / VR] = scl; \
  }
// Work-item (s_key, s_sl) copies vectors s_sl + KS ii of key s_key's K and V rows (and, slice
// 0, their scales) into buffer n & 1; keys past lk get zeros.
#define COPY_TILE(n)                                                                        \
  {                                                                                         \
    const int j = (n)*BN + s_key, kb = ((n)&1) * BN + s_key;                                \
    __local uint4* kd = kt + kb * KROW;                                                     \
    __local uint4* vd = vs + kb * KROW;                                                     \
    if (j < lk) {                                                                           \
      const int pg = mode == 2 ? pages[pt_off + b * pt_st + j / page_size] : b;             \
      const int sl = mode == 2 ? j % page_size : (int)k0 + j;                               \
      __global const uint4* kg =                                                            \
          (__global const uint4*)k + ROW(k_off, k_sb, k_sr, k_sh, pg, sl) / DV_VEC;         \
      __global const uint4* vg =                                                            \
          (__global const uint4*)v + ROW(v_off, v_sb, v_sr, v_sh, pg, sl) / DV_VEC;         \
      UNROLL for (int ii = 0; ii < VR / KS; ++ii) {                                         \
        cp16(kd + s_sl + KS * ii, kg + s_sl + KS * ii);                                     \
        cp16(vd + s_sl + KS * ii, vg + s_sl + KS * ii);                                     \
      }                                                                                     \
      if (KV_ES == 1 && s_sl == 0) {                                                        \
        cp4(kts + kb, k_sc + ROW(ks_off, ks_sb, ks_sr, ks_sh, pg, sl));                     \
        cp4(vsc + kb, v_sc + ROW(vs_off, vs_sb, vs_sr, vs_sh, pg, sl));                     \
      }                                                                                     \
    } else {                                                                                \
      UNROLL for (int ii = 0; ii < VR / KS; ++ii) kd[s_sl + KS * ii] = vd[s_sl + KS * ii] = \
          (uint4)(0u);                                                                      \
      if (s_sl == 0) kts[kb] = vsc[kb] = 1.0f;                                              \
    }                                                                                       \
  }

#endif  // SPARQ_ATTENTION_DECODE_BW_H
