// quest_metadata.h — kernel quest_metadata of kernels_cl/sparse/quest.cl: the per-page key
// summaries kmin / kmax (specs/sparse_attention.md §8), written fresh or continued in place after
// an append, in the order of quest.cl's banner (quest_math.h). OpenCL C only; included by quest.cl.
#ifndef SPARQ_SPARSE_QUEST_METADATA_H
#define SPARQ_SPARSE_QUEST_METADATA_H

#include "attention/kv_pages.h"
#include "sparse/quest_math.h"

// items: 5 ints each (meta id, X, slot0, from, valid). Launch global (D, Hkv, n_items). K in any
// page storage k_dt (attention/kv_pages.h; scales ks_* for int8 / NVFP4 pages, addressed like K
// without d): each element is sq_kv_element, the value attention reads.
__kernel void quest_metadata(__global const uchar* k, long k_off, long k_s0, long k_ss, long k_sh,
                             int k_dt, __global const uchar* ks, long ks_off, long ks_s0,
                             long ks_ss, long ks_sh, __global const int* items,
                             __global float* kmin, __global float* kmax, int hkv, int d) {
  const int dd = get_global_id(0), hk = get_global_id(1), it = get_global_id(2);
  if (dd >= d) return;
  __global const int* w = items + 5 * (long)it;
  const long meta = w[0], x = w[1];
  const int slot0 = w[2], from = w[3], valid = w[4];
  const long e = (meta * hkv + hk) * d + dd;
  const long base = k_off + x * k_s0 + hk * k_sh, sbase = ks_off + x * ks_s0 + hk * ks_sh;
  float lo, hi;
  int s = from;
  if (from > 0) {
    lo = kmin[e];
    hi = kmax[e];
  } else {
    lo = sq_kv_element(k, base + (long)slot0 * k_ss, k_dt, dd, ks, sbase + (long)slot0 * ks_ss);
    hi = lo;
    s = 1;
  }
  for (; s < valid; ++s) {
    const long sl = slot0 + s;
    const float v = sq_kv_element(k, base + sl * k_ss, k_dt, dd, ks, sbase + sl * ks_ss);
    lo = sq_mn(lo, v);
    hi = sq_mx(hi, v);
  }
  kmin[e] = lo;
  kmax[e] = hi;
}

#endif  // SPARQ_SPARSE_QUEST_METADATA_H
