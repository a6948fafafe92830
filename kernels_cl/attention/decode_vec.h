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
  const char4 c = as_char4(p == 0 ? raw.x : p == 1 ? raw.y : p == 2 ? raw.z : raw.w);
  return (float4)(sq_att_deq_i8(c.x, scale), sq_att_deq_i8(c.y, scale), sq_att_deq_i8(c.z, scale),
                  sq_att_deq_i8(c.w, scale));
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
  return sq_att_deq_i8(x, scale);
#endif
}

#endif  // SPARQ_ATTENTION_DECODE_VEC_H
