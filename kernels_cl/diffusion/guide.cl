#pragma OPENCL FP_CONTRACT OFF
// guide.cl — the per-sample reductions that feed a fused step (specs/diffusion_sampling.md §2.7,
// §2.8, §6.4): guidance-rescale statistics + factor, and the dynamic-threshold quantile.
// Macros: none. Arithmetic order: guide_math.h (the §6.4 tree, the radix select).
//
//   diffusion_rescale_stats: work-group (q, b) = chunk q of sample b; any local size L that
//     divides 256: work-item l owns lanes l, l + L, ... and the halving tree runs over the 256
//     lane sums in local memory, so L never changes a value. Writes the chunk's
//     (Sc, Sc2, Sm, Sm2) to part[b][q]; chunks q >= ceil(S/1024) (the power-of-two padding)
//     have no elements and write +0.
//   diffusion_rescale_finalize: one work-item per sample: halving tree over part[b][0..P), then
//     rho[b] = sq_rescale_rho(...) with the sample's phi / keep (coefficient words 12, 13).
//   diffusion_thresh_hist: counts digit d of |x0| bits per sample for the two ranks whose higher
//     digits match their prefixes (local histograms, integer atomics: order-free).
//   diffusion_thresh_select: one work-item per (sample, rank): the bin holding the rank (then
//     zeroes its histogram row for the next digit).
//   diffusion_thresh_scale: thr[b] = sq_th_scale(lo, hi, frac, smax) from the selected patterns.
#include "common/convert.h"
#include "diffusion/guide_math.h"
#include "diffusion/step_math.h"

typedef __global const uchar* gbytes;

static inline float load_any(gbytes base, long i, int dt) {
  if (dt == 0) return ((__global const float*)base)[i];
  const ushort h = ((__global const ushort*)base)[i];
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

static inline uint coef_word(uint16 bc, __global const uint* coefs, long b, int per_sample, int t) {
  if (per_sample) return coefs[b * 16 + t];
  switch (t) {
    case 8:
      return bc.s8;
    case 12:
      return bc.sc;
    default:
      return bc.sd;
  }
}

__kernel void diffusion_rescale_stats(gbytes model, long m_off, int m_dt, uint16 bc,
                                      __global const uint* coefs, int per_sample, long s, long n,
                                      int chunks_pow2, __global float* part) {
  __local float acc[4][SQ_RS_LANES];
  const int q = get_group_id(0);
  const long b = get_group_id(1);
  const int lid = get_local_id(0), L = get_local_size(0);
  const float g = as_float(coef_word(bc, coefs, b, per_sample, 8));
  for (int t = lid; t < SQ_RS_LANES; t += L) {
    float sc = 0.0f, sc2 = 0.0f, sm = 0.0f, sm2 = 0.0f;
    for (int r = 0; r < 4; ++r) {
      const long e = (long)q * SQ_RS_CHUNK + t + SQ_RS_LANES * r;
      if (e >= s) break;
      const float u = load_any(model, m_off + b * s + e, m_dt);
      const float c = load_any(model, m_off + n + b * s + e, m_dt);
      const float m = sq_cfg(u, c, g);
      sc = sc + c;
      sc2 = fma(c, c, sc2);
      sm = sm + m;
      sm2 = fma(m, m, sm2);
    }
    acc[0][t] = sc;
    acc[1][t] = sc2;
    acc[2][t] = sm;
    acc[3][t] = sm2;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = SQ_RS_LANES / 2; w >= 1; w >>= 1) {
    for (int t = lid; t < w; t += L)
      for (int v = 0; v < 4; ++v) acc[v][t] = acc[v][t] + acc[v][t + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0)
    for (int v = 0; v < 4; ++v) part[(b * chunks_pow2 + q) * 4 + v] = acc[v][0];
}

__kernel void diffusion_rescale_finalize(__global float* part, int chunks_pow2, uint16 bc,
                                         __global const uint* coefs, int per_sample, float rn,
                                         float rn1, long batch, __global float* rho) {
  const long b = get_global_id(0);
  if (b >= batch) return;
  __global float* p = part + b * chunks_pow2 * 4;
  for (int w = chunks_pow2 / 2; w >= 1; w >>= 1)
    for (int t = 0; t < w; ++t)
      for (int v = 0; v < 4; ++v) p[t * 4 + v] = p[t * 4 + v] + p[(t + w) * 4 + v];
  const float phi = as_float(coef_word(bc, coefs, b, per_sample, 12));
  const float keep = as_float(coef_word(bc, coefs, b, per_sample, 13));
  rho[b] = sq_rescale_rho(p[0], p[1], p[2], p[3], rn, rn1, phi, keep);
}

// state[b]: 8 words: prefix_lo, rank_lo, prefix_hi, rank_hi, frac (float bits), smax (float bits).
// hist[b][2][SQ_TH_BINS]. Work-group (q, b) counts elements [q·per_group, (q+1)·per_group) of b.
__kernel void diffusion_thresh_hist(__global const float* x0, long s, int digit,
                                    __global const uint* state, __global uint* hist,
                                    long per_group) {
  __local uint lh[2][SQ_TH_BINS];
  const long q = get_group_id(0), b = get_group_id(1);
  const int lid = get_local_id(0), L = get_local_size(0);
  for (int t = lid; t < 2 * SQ_TH_BINS; t += L) lh[t / SQ_TH_BINS][t % SQ_TH_BINS] = 0u;
  barrier(CLK_LOCAL_MEM_FENCE);
  const uint pre_lo = state[b * 8], pre_hi = state[b * 8 + 2];
  const uint shift_above = digit == 0 ? 32u : digit == 1 ? 20u : 9u;
  const long lo = q * per_group, hi = min(s, lo + per_group);
  for (long e = lo + lid; e < hi; e += L) {
    const uint bits = as_uint(x0[b * s + e]) & 0x7FFFFFFFu;
    const uint above = sq_th_above(bits, digit);
    const uint d = sq_th_digit(bits, digit);
    if (digit == 0 || above == (pre_lo >> shift_above)) atomic_inc(&lh[0][d]);
    if (digit == 0 || above == (pre_hi >> shift_above)) atomic_inc(&lh[1][d]);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int t = lid; t < 2 * SQ_TH_BINS; t += L) {
    const uint c = lh[t / SQ_TH_BINS][t % SQ_TH_BINS];
    if (c) atomic_add(&hist[b * 2 * SQ_TH_BINS + t], c);
  }
}

__kernel void diffusion_thresh_select(__global uint* state, __global uint* hist, int digit,
                                      long batch) {
  const long id = get_global_id(0);
  if (id >= 2 * batch) return;
  const long b = id / 2;
  const int which = (int)(id % 2);
  __global uint* h = hist + (b * 2 + which) * SQ_TH_BINS;
  const uint rank = state[b * 8 + 2 * which + 1];
  const int bins = digit == 2 ? 512 : SQ_TH_BINS;
  uint cum = 0u;
  int d = bins - 1;
  for (int t = 0; t < bins; ++t) {
    if (cum + h[t] > rank) {
      d = t;
      break;
    }
    cum += h[t];
  }
  state[b * 8 + 2 * which] |= (uint)d << sq_th_shift(digit);
  state[b * 8 + 2 * which + 1] = rank - cum;
  for (int t = 0; t < SQ_TH_BINS; ++t) h[t] = 0u;  // ready for the next digit's counts
}

__kernel void diffusion_thresh_scale(__global const uint* state, long batch, __global float* thr) {
  const long b = get_global_id(0);
  if (b >= batch) return;
  thr[b] = sq_th_scale(as_float(state[b * 8]), as_float(state[b * 8 + 2]),
                       as_float(state[b * 8 + 4]), as_float(state[b * 8 + 5]));
}
