#pragma OPENCL FP_CONTRACT OFF
// sim.cl — MoDM retrieval (specs/diffusion_sampling.md §4.2). Macros: none.
//
// Defined arithmetic order (sim_math.h): every dot product uses the 32-lane order: lane l sums
// fma(a[d], b[d], p_l) for d = l, l+32, ... from +0, then the halving tree 16, 8, 4, 2, 1.
//   diffusion_l2_normalize: ss = dot(v, v); ss == 0 -> row copied (zero stays zero);
//     else inv = 1.0f / sqrt(ss), out[d] = v[d] * inv.   One work-item per row.
//   diffusion_sim_top1: score(q, r) = dot(Q[q], widen(E[r])) for valid rows; work-item (g, q)
//     scans rows g, g + G, g + 2G, ... and keeps the best by sq_top1_better; the host merges the
//     G partials per query with the same order (associative, so the grid cannot change it).
//   diffusion_sim_topk: the same scan keeping the k (<= 16) best per work-item in selection order
//     (sq_topk_insert); the host merges the G lists of a query with the same order.
#include "common/convert.h"
#include "diffusion/sim_math.h"

__kernel void diffusion_l2_normalize(__global float* out, __global const float* v, long v_off,
                                     long rows, int d) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  __global const float* row = v + v_off + r * d;
  float p[32];
  for (int l = 0; l < 32; ++l) p[l] = 0.0f;
  for (int e = 0; e < d; ++e) p[e & 31] = fma(row[e], row[e], p[e & 31]);
  const float ss = sq_lane_tree32(p);
  if (ss == 0.0f) {
    for (int e = 0; e < d; ++e) out[r * d + e] = row[e];
    return;
  }
  const float inv = 1.0f / sqrt(ss);
  for (int e = 0; e < d; ++e) out[r * d + e] = row[e] * inv;
}

static inline float load_e(__global const uchar* e, long i, int dt) {
  if (dt == 0) return ((__global const float*)e)[i];
  const ushort h = ((__global const ushort*)e)[i];
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

__kernel void diffusion_sim_top1(__global const uchar* emb, long e_off, int e_dt,
                                 __global const uchar* valid, long v_off, long m,
                                 __global const float* q, long q_off, int d, int groups,
                                 __global int* part_idx, __global float* part_score) {
  const int g = get_global_id(0), qi = get_global_id(1);
  if (g >= groups) return;
  __global const float* qrow = q + q_off + (long)qi * d;
  int best_i = -1;
  float best_s = 0.0f;
  float p[32];
  for (long r = g; r < m; r += groups) {
    if (!valid[v_off + r]) continue;
    for (int l = 0; l < 32; ++l) p[l] = 0.0f;
    for (int e = 0; e < d; ++e)
      p[e & 31] = fma(qrow[e], load_e(emb, e_off + r * d + e, e_dt), p[e & 31]);
    const float s = sq_lane_tree32(p);
    if (sq_top1_better(s, (int)r, best_s, best_i)) {
      best_s = s;
      best_i = (int)r;
    }
  }
  part_idx[(long)qi * groups + g] = best_i;
  part_score[(long)qi * groups + g] = best_s;
}

__kernel void diffusion_sim_topk(__global const uchar* emb, long e_off, int e_dt,
                                 __global const uchar* valid, long v_off, long m,
                                 __global const float* q, long q_off, int d, int groups, int k,
                                 __global int* part_idx, __global float* part_score) {
  const int g = get_global_id(0), qi = get_global_id(1);
  if (g >= groups) return;
  __global const float* qrow = q + q_off + (long)qi * d;
  float ls[16];
  int li[16];
  for (int t = 0; t < 16; ++t) {
    ls[t] = 0.0f;
    li[t] = -1;
  }
  float p[32];
  for (long r = g; r < m; r += groups) {
    if (!valid[v_off + r]) continue;
    for (int l = 0; l < 32; ++l) p[l] = 0.0f;
    for (int e = 0; e < d; ++e)
      p[e & 31] = fma(qrow[e], load_e(emb, e_off + r * d + e, e_dt), p[e & 31]);
    sq_topk_insert(ls, li, k, sq_lane_tree32(p), (int)r);
  }
  const long base = ((long)qi * groups + g) * k;
  for (int t = 0; t < k; ++t) {
    part_idx[base + t] = li[t];
    part_score[base + t] = ls[t];
  }
}
