// decode_vec.h — 16-byte K/V vectors of the bandwidth decode kernels (decode_stream.cl,
// decode_bw.cl), OpenCL C only. KV_ES (bytes per stored element: 4 f32, 2 f16/bf16, 1 int8) is
// fixed at compile time; the values are exactly decode.cl's (sq_att_load_kv4).
#ifndef SPARQ_ATTENTION_DECODE_VEC_H
#define SPARQ_ATTENTION_DECODE_VEC_H

#include "attention/attention_common.h"

#ifndef KV_ES
#error "KV_ES must be defined (4: f32, 2: f16/bf16, 1: int8)"
#endif

#define DV_VEC (16 / KV_ES)  // elements per 16-byte vector
#define DV_PPV (DV_VEC / 4)  // float4 parts per vector

#ifndef DV_MAGIC
#define DV_MAGIC 0
#endif

// int8 codes as floats. DV_MAGIC=1: through the fp32 bit pattern of 2^23 + (code + 128) (a byte
// permute) and one exact subtraction, in place of an int-to-float conversion (a quarter-rate
// instruction on NVIDIA GPUs); both give (float)code exactly (+0 for code 0), so the dequantized
// value fp32(code * scale) of sq_att_deq_i8 is unchanged. DV_MAGIC=2 (NVIDIA inline PTX): the
// same bit patterns, each built by one prmt.
#if DV_MAGIC == 2
#ifdef __clang__  // clang's OpenCL mode (off-GPU PTX checks); NVIDIA's compiler takes `asm`
#define DV_ASM __asm__
#else
#define DV_ASM asm
#endif
// Byte k of a in the low byte of 0x4B0000xx (sel = 0x7440 + k: bytes a.k, 0, 0, 0x4B).
static inline uint dv_prmt(uint a, uint sel) {
  uint d;
  DV_ASM("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(0x4B000000u), "r"(sel));
  return d;
}
#endif
static inline float dv_i8_to_f32(char code) {
#if DV_MAGIC
  return as_float((uint)(uchar)(code ^ 0x80) | 0x4B000000u) - 8388736.0f;
#else
  return (float)code;
#endif
}

static inline float4 dv_i8x4_to_f32(uint w) {
#if DV_MAGIC == 2
  const uint u = w ^ 0x80808080u;
  return (float4)(as_float(dv_prmt(u, 0x7440u)), as_float(dv_prmt(u, 0x7441u)),
                  as_float(dv_prmt(u, 0x7442u)), as_float(dv_prmt(u, 0x7443u))) -
         (float4)(8388736.0f);
#elif DV_MAGIC
  const uchar4 u = as_uchar4(w ^ 0x80808080u);
  return (float4)(as_float((uint)u.x | 0x4B000000u), as_float((uint)u.y | 0x4B000000u),
                  as_float((uint)u.z | 0x4B000000u), as_float((uint)u.w | 0x4B000000u)) -
         (float4)(8388736.0f);
#else
  const char4 c = as_char4(w);
  return (float4)((float)c.x, (float)c.y, (float)c.z, (float)c.w);
#endif
}

// Part p (elements 4p .. 4p + 3) of a 16-byte vector, widened exactly; int8: times the row's
// scale (sq_att_deq_i8).
static inline float4 dv_widen(uint4 raw, float scale, int p, int dt) {
#if KV_ES == 4
  (void)scale;
  (void)p;
  (void)dt;
  return as_float4(raw);
#elif KV_ES == 1
  (void)dt;
  // sq_att_deq_i8: (float)code * scale, one rounding
  return dv_i8x4_to_f32(p == 0 ? raw.x : p == 1 ? raw.y : p == 2 ? raw.z : raw.w) * scale;
#else
  (void)scale;
  const uint a = p == 0 ? raw.x : raw.z, b = p == 0 ? raw.y : raw.w;
  return (float4)(sq_att_widen16(a & 0xffffu, dt), sq_att_widen16(a >> 16, dt),
                  sq_att_widen16(b & 0xffffu, dt), sq_att_widen16(b >> 16, dt));
#endif
}

// One stored element as raw storage (dv_raw) and its value (dv_value), for element-wise reads
// of a tile kept raw in local memory.
#if KV_ES == 4
typedef float dv_raw;
typedef float2 dv_raw2;
typedef float4 dv_raw4;
#elif KV_ES == 2
typedef ushort dv_raw;
typedef ushort2 dv_raw2;
typedef ushort4 dv_raw4;
#else
typedef char dv_raw;
typedef char2 dv_raw2;
typedef char4 dv_raw4;
#endif

static inline float dv_value(dv_raw x, float scale, int dt) {
#if KV_ES == 4
  (void)scale;
  (void)dt;
  return x;
#elif KV_ES == 2
  (void)scale;
  return sq_att_widen16(x, dt);
#else
  (void)dt;
  return dv_i8_to_f32(x) * scale;  // sq_att_deq_i8
#endif
}

// The start of the three bandwidth decode kernels: this work-group's sequence b and kv head hk,
// the varlen (mode 1: cu_q / cu_k) or paged (mode 2: seq_lens) extents q0, k0, lq, lk, the rows
// rr0 .. rr0 + nrows of the GQA group it owns (ROWS at most) and the sequence's 4096-key chunks.
// Uses the kernel's arguments (mode, seq_a, seq_b and their offsets/strides, hq, group, lq, lk).
#define DECODE_CALL_SETUP()                                                          \
  const int lid = get_local_id(0);                                                   \
  const int b = get_group_id(2) / (hq / group), hk = get_group_id(2) % (hq / group); \
  long q0 = 0, k0 = 0;                                                               \
  if (mode == 1) {                                                                   \
    q0 = seq_a[sa_off + b * sa_st];                                                  \
    k0 = seq_b[sb_off + b * sb_st];                                                  \
    lq = seq_a[sa_off + (b + 1) * sa_st] - (int)q0;                                  \
    lk = seq_b[sb_off + (b + 1) * sb_st] - (int)k0;                                  \
  } else if (mode == 2) {                                                            \
    lk = seq_a[sa_off + b * sa_st];                                                  \
  }                                                                                  \
  const int rr0 = get_group_id(0) * ROWS;                                            \
  const int nrows = clamp(group * lq - rr0, 0, ROWS);                                \
  const int lqd = max(lq, 1);                                                        \
  const int nchunks = lk > 0 ? (lk + SQ_ATT_CHUNK - 1) / SQ_ATT_CHUNK : 0

// The chunks this work-group walks: one (c_begin = its split index) when split, else every chunk
// up to the last visible key kend of its rows; none when it has no row or its chunk is past lk.
#define DECODE_CHUNK_RANGE()                                      \
  const int c_begin = split ? (int)get_group_id(1) : 0;           \
  const bool active = nrows > 0 && (!split || c_begin < nchunks); \
  const int c_end = !active ? c_begin                             \
                    : split ? c_begin + 1                         \
                            : (kend + SQ_ATT_CHUNK - 1) / SQ_ATT_CHUNK

// q' = q * c (one rounding) of the rows into local `dst` [ROWS][DH]; padding rows are zero.
#define DECODE_STAGE_Q(dst)                                                              \
  for (int x = lid; x < ROWS * (DH / 4); x += NT) {                                      \
    const int r = x / (DH / 4), dv = (x % (DH / 4)) * 4;                                 \
    float4 y = (float4)(0.0f);                                                           \
    if (r < nrows) {                                                                     \
      const int rr = rr0 + r, h = hk * group + rr / lqd, i = rr % lqd;                   \
      y = sq_att_load4(q, q_off + b * q_sb + (q0 + i) * q_sr + h * q_sh + dv, q_dt) * c; \
    }                                                                                    \
    ST4((dst) + r * DH + dv, y);                                                         \
  }

#endif  // SPARQ_ATTENTION_DECODE_VEC_H
