// attention_common.h — the per-row arithmetic of sparq's exact fp32 attention, shared by
// dense.cl, decode.cl, merge.cl and fallback_cpu/attention/*.cpp (OpenCL C 1.2 and C++20).
//
// THE DEFINITION (docs/attention.md explains it; every executor computes exactly this).
// Per query row i of (sequence b, query head h); kv head h / (Hq / Hkv); Lq, Lk of sequence b:
//   c     = fp32(scale * log2(e))            host, in double, rounded once (scale > 0, finite)
//   q'[d] = q[i][d] * c                      one rounding
//   s_j   = dot(q', k_j): acc = 0; for d ascending: acc = fma(q'[d], k_j[d], acc)
//   visible(i, j) = j < Lk && (!causal || j <= i + (Lk - Lq))          (bottom-right causal)
// Keys are split into chunks of SQ_ATT_CHUNK = 4096 positions [4096c, 4096c + 4096). Each chunk
// starts from a fresh state (m = -inf, l = 0, acc[.] = 0) and walks its tiles of SQ_ATT_TILE = 64
// keys [64n, 64n + 64) in ascending order:
//   m_t   = mx over the tile of (visible ? s_j : -inf)        (sq_mx: NaN-propagating, any order)
//   m_new = mx(m, m_t); if m_new == -inf: the tile is skipped (state unchanged)
//   alpha = sq_exp2(m - m_new)
//   p_j   = visible ? sq_exp2(s_j - m_new) : 0
//   r     = 0; for j ascending: r = r + p_j
//   l     = fma(l, alpha, r)
//   acc[d]: a = acc[d] * alpha; for visible j ascending: a = fma(p_j, v_j[d], a); acc[d] = a
//   m     = m_new
// Chunk result C: empty when l == 0 (lse_c = -inf, o_c = 0); else o_c[d] = acc[d] / l and
// lse_c = m + sq_log2(l). Chunks are merged left to right into R (starts empty) by
// sq_att_merge_* below (also the public merge_states op). Output: R's o (0 and lse -inf for a
// row that sees no key), fp32 or rounded to nearest even into f16/bf16; lse is base 2.
//
// HOOKS (masks and logit transforms; compiled in only with -DSQ_ATT_HOOKS=1, so a call without
// them runs exactly the kernels above). Row i of (b, h) sits at query position qp, key j at key
// position kp: dense / varlen / paged qp = i + (Lk - Lq), kp = j; sparse: the index's qpos/kpos.
//   visible'(i, j) = visible(i, j) && (wl < 0 || kp - qp >= -wl) && (wr < 0 || kp - qp <= wr)
//                    && (no key mask || key_mask[b][j] != 0)
//   s'_j = s_j;  if cap2 > 0: s'_j = cap2 * sq_tanh(s_j / cap2)      (soft-cap, then)
//          s'_j = fma(-slope2[h], (float)|qp - kp|, s'_j)             (ALiBi; slope2 = 0: exact no-op)
//   The walk above runs on s'_j and visible' unchanged. After the last chunk is merged, R is
//   merged once more with the sink state (o = 0, lse = sink2[h]) by sq_att_merge_* (sink2 = -inf:
//   exactly no sink, "C empty"), so the sink joins the denominator and the returned lse.
// cap2 = fp32(softcap * log2 e), slope2[h] = fp32(alibi_slope[h] * log2 e), sink2[h] =
// fp32(sink[h] * log2 e): host, double, one rounding each (so the natural-unit definitions
// softcap * tanh(scale q.k / softcap) - slope |qp - kp| and exp(sink) hold up to those roundings).
//
// Consequences the kernels rely on (all exact, so they never change a bit):
//  - a tile with no visible key for a row is a no-op for it (alpha = 1 when m is finite; when m
//    is +inf or NaN, l is already NaN), so a work-group may walk tiles some of its rows cannot see;
//  - acc never holds -0 (it starts at +0 and an exact zero sum rounds to +0), so fma(0, 0, acc)
//    == acc: zero-padding d beyond D (Q and K both 0) leaves every dot chain unchanged;
//  - the visible keys of a row inside a tile form a prefix of the tile.
//
// PoCL note (kernels of this family): PoCL 3.1 (Debian 12) mis-orders work-item regions for
// some barrier layouts (seen here: a barrier under a uniform condition, a loop inside
// "if (lid < N)" between barriers, early returns ahead of barriers in loops), running regions
// out of order or writing out of bounds. The kernels therefore keep every barrier
// unconditional, never return early, and run per-row loops on every work-item (identical
// copies) with only the stores predicated.
#ifndef SPARQ_ATTENTION_COMMON_H
#define SPARQ_ATTENTION_COMMON_H

#include "attention/kv_pages.h"
#include "common/convert.h"
#include "common/exact_math.h"
#include "common/prelude.h"

#define SQ_ATT_TILE 64
#define SQ_ATT_CHUNK 4096
#define SQ_ATT_TILES_PER_CHUNK 64

// Storage dtype codes SQ_DT_* and the meaning of a stored K/V element: attention/kv_pages.h.

#ifdef __OPENCL_C_VERSION__
// Local-memory float4 access through 16-byte-aligned arrays (declared SQ_ATT_LOCAL_ALIGN), so the
// compiler emits one 128-bit access (vload4/vstore4 only promise 4-byte alignment).
#define SQ_ATT_LOCAL_ALIGN __attribute__((aligned(16)))
#define LD4(p) (*(__local const float4*)(p))
#define ST4(p, x) (*(__local float4*)(p) = (x))
#endif


SQ_BEGIN_NAMESPACE

SQ_FN float sq_att_neg_inf(void) {
  return sq_as_float(0xff800000u);
}

// Rounding of one output element into f16/bf16 (nearest even).
SQ_FN ushort sq_att_narrow16(float x, int dtype) {
  return dtype == SQ_DT_F16 ? sq_f32_to_f16_rne(x) : sq_f32_to_bf16_rne(x);
}

// First key index not visible to query row i (visible keys are [0, end)); may be <= 0.
SQ_FN int sq_att_visible_end(int i, int lq, int lk, int causal) {
  if (!causal) return lk;
  int e = i + (lk - lq) + 1;
  return e < lk ? e : lk;
}

// Rescale factor of the running state when the row max moves from m_old to m_new; 1 when the
// tile is skipped (m_new == -inf), which makes "skip" and "process" the same code.
SQ_FN float sq_att_alpha(float m_old, float m_new) {
  return m_new == sq_att_neg_inf() ? 1.0f : sq_exp2(m_old - m_new);
}

// Probability of a visible key (the caller gives 0 to invisible keys and to skipped tiles).
SQ_FN float sq_att_prob(float s, float m_new) {
  return sq_exp2(s - m_new);
}

// Chunk result from the final (m, l) and one accumulator.
SQ_FN float sq_att_chunk_lse(float m, float l) {
  return l == 0.0f ? sq_att_neg_inf() : m + sq_log2(l);
}
SQ_FN float sq_att_chunk_out(float acc, float l) {
  return l == 0.0f ? 0.0f : acc / l;
}

// Hooks (see HOOKS above). Window test on positions (kp - qp fits int32: both are in [0, 2^31)).
SQ_FN int sq_att_hook_window(int qp, int kp, int wl, int wr) {
  const int dlt = kp - qp;
  return (wl < 0 || dlt >= -wl) && (wr < 0 || dlt <= wr);
}

// Soft-cap (cap2 > 0) then ALiBi (slope2 may be 0) of one score, in log2 units.
SQ_FN float sq_att_hook_score(float s, float cap2, float slope2, int qp, int kp) {
  if (cap2 > 0.0f) s = cap2 * sq_tanh(s / cap2);
  const int dist = qp > kp ? qp - kp : kp - qp;
  return sq_fma(-slope2, (float)dist, s);
}

// Merge of a running state R and the next chunk C (merge_states). "Empty" means lse == -inf:
// R empty -> R = C; else C empty -> R unchanged; else
//   m = mx(lse_r, lse_c); wa = exp2(lse_r - m); wb = exp2(lse_c - m); s = wa + wb
//   o = fma(o_r, wa, o_c * wb) / s; lse = m + log2(s)
typedef struct SqAttMerge {
  float wa, wb, s, lse;
  int mode;  // 0: take C, 1: keep R, 2: weighted
} SqAttMerge;

SQ_FN SqAttMerge sq_att_merge_weights(float lse_r, float lse_c) {
  SqAttMerge w;
  w.wa = 0.0f;
  w.wb = 0.0f;
  w.s = 0.0f;
  if (lse_r == sq_att_neg_inf()) {
    w.mode = 0;
    w.lse = lse_c;
  } else if (lse_c == sq_att_neg_inf()) {
    w.mode = 1;
    w.lse = lse_r;
  } else {
    float m = sq_mx(lse_r, lse_c);
    w.wa = sq_exp2(lse_r - m);
    w.wb = sq_exp2(lse_c - m);
    w.s = w.wa + w.wb;
    w.lse = m + sq_log2(w.s);
    w.mode = 2;
  }
  return w;
}

SQ_FN float sq_att_merge_out(SqAttMerge w, float o_r, float o_c) {
  if (w.mode == 0) return o_c;
  if (w.mode == 1) return o_r;
  return sq_fma(o_r, w.wa, o_c * w.wb) / w.s;
}

SQ_END_NAMESPACE

#ifdef __OPENCL_C_VERSION__
// Storage access of the attention kernels: element i of an f32 / f16 / bf16 buffer (run-time
// dtype code), widened exactly on load, rounded to nearest even on store.
typedef __global const uchar* gbytes;

static inline float sq_att_load1(gbytes base, long i, int dt) {
  if (dt == SQ_DT_F32) return ((__global const float*)base)[i];
  return sq_att_widen16(((__global const ushort*)base)[i], dt);
}

static inline float4 sq_att_load4(gbytes base, long i, int dt) {
  if (dt == SQ_DT_F32) return vload4(0, (__global const float*)base + i);
  ushort4 u = vload4(0, (__global const ushort*)base + i);
  return (float4)(sq_att_widen16(u.x, dt), sq_att_widen16(u.y, dt), sq_att_widen16(u.z, dt),
                  sq_att_widen16(u.w, dt));
}

// Elements [i, i + n) (n <= 4), the rest of the float4 0 (row tails when D % 4 != 0).
static inline float4 sq_att_load4n(gbytes base, long i, int dt, int n) {
  return (float4)(sq_att_load1(base, i, dt), n > 1 ? sq_att_load1(base, i + 1, dt) : 0.0f,
                  n > 2 ? sq_att_load1(base, i + 2, dt) : 0.0f,
                  n > 3 ? sq_att_load1(base, i + 3, dt) : 0.0f);
}

// Elements [dv, dv + n) (n <= 4, the rest 0; dv % 4 == 0) of the K/V row at element `row` in
// any stored dtype. Scaled pages read their row's scales through `sc` at element `srow`: int8,
// one f32 scale; NVFP4, E4M3 codes (group dv / 16; D % 16 == 0, so n == 4 and one byte pair).
static inline float4 sq_att_load_kv4(gbytes base, long row, int dt, int dv, int n, gbytes sc,
                                     long srow) {
  if (dt == SQ_DT_FP4) {
    const uint lo = base[row + dv / 2], hi = base[row + dv / 2 + 1], s = sc[srow + dv / 16];
    return (float4)(sq_att_deq_fp4(sq_fp4_lo(lo), s), sq_att_deq_fp4(sq_fp4_hi(lo), s),
                    sq_att_deq_fp4(sq_fp4_lo(hi), s), sq_att_deq_fp4(sq_fp4_hi(hi), s));
  }
  const long i = row + dv;
  if (dt == SQ_DT_I8) {
    const float scale = ((__global const float*)sc)[srow];
    __global const char* c = (__global const char*)base + i;
    if (n >= 4) {
      const char4 x = vload4(0, c);
      return (float4)(sq_att_deq_i8(x.x, scale), sq_att_deq_i8(x.y, scale),
                      sq_att_deq_i8(x.z, scale), sq_att_deq_i8(x.w, scale));
    }
    return (float4)(sq_att_deq_i8(c[0], scale), n > 1 ? sq_att_deq_i8(c[1], scale) : 0.0f,
                    n > 2 ? sq_att_deq_i8(c[2], scale) : 0.0f, 0.0f);
  }
  return n >= 4 ? sq_att_load4(base, i, dt) : sq_att_load4n(base, i, dt, n);
}

static inline void sq_att_store1(__global uchar* base, long i, int dt, float x) {
  if (dt == SQ_DT_F32)
    ((__global float*)base)[i] = x;
  else
    ((__global ushort*)base)[i] = sq_att_narrow16(x, dt);
}

static inline void sq_att_store4(__global uchar* base, long i, int dt, float4 x) {
  if (dt == SQ_DT_F32) {
    vstore4(x, 0, (__global float*)base + i);
    return;
  }
  ushort4 u = (ushort4)(sq_att_narrow16(x.x, dt), sq_att_narrow16(x.y, dt),
                        sq_att_narrow16(x.z, dt), sq_att_narrow16(x.w, dt));
  vstore4(u, 0, (__global ushort*)base + i);
}
#endif

#endif  // SPARQ_ATTENTION_COMMON_H
