// decode_stage.h — the K and V loads of kernels_cl/attention/decode.cl: one slice of a tile's K
// rows (KD d at a time) or V rows (jn keys) staged in local memory as fp32, from contiguous, varlen
// or paged storage, any dtype (f32 / f16 / bf16, int8 or NVFP4 pages dequantized exactly by
// sq_att_load_kv4; keys >= Lk and d >= D: zeros). Loads only: no arithmetic order lives here.
// OpenCL C only; the macros expand inside the kernel's tile loop and use its variables (lid, b,
// hk, k0, j0, lk, d, d4, mode, the K/V, scale and page-table arguments, kv).
#ifndef SPARQ_ATTENTION_DECODE_STAGE_H
#define SPARQ_ATTENTION_DECODE_STAGE_H

// K slice: d in [d0, d0 + KD) of the tile's 64 keys, [key][KS].
#define DECODE_STAGE_K_SLICE()                                              \
  for (int x = lid; x < BN * (KD / 4); x += NT) {                           \
    const int jj = x / (KD / 4), dv = d0 + (x % (KD / 4)) * 4;              \
    const int j = j0 + jj;                                                  \
    float4 y = (float4)(0.0f);                                              \
    if (j < lk && dv < d) {                                                 \
      long at, sat;                                                         \
      if (mode == 2) {                                                      \
        const long page = pages[pt_off + b * pt_st + j / page_size];        \
        at = k_off + page * k_sb + (j % page_size) * k_sr + hk * k_sh;      \
        sat = ks_off + page * ks_sb + (j % page_size) * ks_sr + hk * ks_sh; \
      } else {                                                              \
        at = k_off + b * k_sb + (k0 + j) * k_sr + hk * k_sh;                \
        sat = ks_off + b * ks_sb + (k0 + j) * ks_sr + hk * ks_sh;           \
      }                                                                     \
      y = sq_att_load_kv4(k, at, k_dt, dv, d - dv, k_sc, sat);              \
    }                                                                       \
    ST4(kv + jj * KS + (dv - d0), y);                                       \
  }

// V slice: keys j0 + js + [0, jn), all d, [key][d4].
#define DECODE_STAGE_V_SLICE()                                              \
  for (int x = lid; x < jn * (d4 / 4); x += NT) {                           \
    const int jj = x / (d4 / 4), dv = (x % (d4 / 4)) * 4;                   \
    const int j = j0 + js + jj;                                             \
    float4 y = (float4)(0.0f);                                              \
    if (j < lk) {                                                           \
      long at, sat;                                                         \
      if (mode == 2) {                                                      \
        const long page = pages[pt_off + b * pt_st + j / page_size];        \
        at = v_off + page * v_sb + (j % page_size) * v_sr + hk * v_sh;      \
        sat = vs_off + page * vs_sb + (j % page_size) * vs_sr + hk * vs_sh; \
      } else {                                                              \
        at = v_off + b * v_sb + (k0 + j) * v_sr + hk * v_sh;                \
        sat = vs_off + b * vs_sb + (k0 + j) * vs_sr + hk * vs_sh;           \
      }                                                                     \
      y = sq_att_load_kv4(v, at, v_dt, dv, d - dv, v_sc, sat);              \
    }                                                                       \
    ST4(kv + jj * d4 + dv, y);                                              \
  }

#endif  // SPARQ_ATTENTION_DECODE_STAGE_H
