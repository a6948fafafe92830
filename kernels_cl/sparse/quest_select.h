// quest_select.h — kernels quest_bounds and quest_select of kernels_cl/sparse/quest.cl: the
// upper bound of each page's scores per index head (one chain over d, kv_group sums over heads
// ascending) and the pages each row reads (exact radix select on the §4 order key, ties in index
// order), in the order of quest.cl's banner (quest_math.h). OpenCL C only; included by quest.cl
// after its geometry macros (SEL_NT, BND_NT, BND_PAGES, BND_S).
#ifndef SPARQ_SPARSE_QUEST_SELECT_H
#define SPARQ_SPARSE_QUEST_SELECT_H

#include "sparse/quest_math.h"

static inline long quest_meta_id(__global const int* table, long tb, int paged, int b, int p,
                                 int max_pages) {
  return paged ? (long)table[tb + (long)b * max_pages + p] : (long)b * max_pages + p;
}

// Exclusive prefix sum over the work-group of one int per work-item (x), into `excl`, and the
// sum into `total`. A macro: PoCL 3.1's inliner crashes on a function holding these barriers.
#define QUEST_SCAN(buf, x, excl, total)                 \
  do {                                                  \
    buf[lid] = (x);                                     \
    barrier(CLK_LOCAL_MEM_FENCE);                       \
    for (int off_ = 1; off_ < SEL_NT; off_ <<= 1) {     \
      const int y_ = lid >= off_ ? buf[lid - off_] : 0; \
      barrier(CLK_LOCAL_MEM_FENCE);                     \
      buf[lid] += y_;                                   \
      barrier(CLK_LOCAL_MEM_FENCE);                     \
    }                                                   \
    (excl) = buf[lid] - (x);                            \
    (total) = buf[SEL_NT - 1];                          \
    barrier(CLK_LOCAL_MEM_FENCE);                       \
  } while (0)

// Launch local (BND_NT), global (BND_NT * ceil(max_pages / BND_PAGES), B * Hi). Writes bounds
// [B, Hi, max_pages] (0 past n). A work-group stages kmin/kmax of BND_PAGES pages (coalesced rows)
// in local memory; work-item (page lid % BND_PAGES, head slot lid / BND_PAGES) runs U_h of one
// head (one chain over d); the kv_group sum B = 0 + U_h0 + U_h1 ... (heads ascending) is then
// folded by the page's slot-0 work-item from local memory, so the order is the one defined above.
__kernel __attribute__((reqd_work_group_size(BND_NT, 1, 1))) void quest_bounds(
    __global const float* q, long q_off, long q_sb, long q_sh,  //
    __global const float* kmin, __global const float* kmax,     //
    __global const int* table, long t_off, __global const int* seq_lens, long sl_off,
    __global float* bounds, int paged, int max_pages, int page_size, int hq, int hkv, int share,
    int d) {
  __local float lo_s[BND_PAGES * BND_S], up_s[BND_PAGES * BND_S];
  __local float uh_s[BND_NT];
  const int lid = get_local_id(0);
  const int hi_count = share ? hkv : hq;
  const int b = get_group_id(1) / hi_count, hi = get_group_id(1) % hi_count;
  const int group = hq / hkv;
  const int hk = share ? hi : hi / group;
  const int h0 = share ? hi * group : hi, nh = share ? group : 1;
  const int n = (seq_lens[sl_off + b] + page_size - 1) / page_size;
  const int p0 = get_group_id(0) * BND_PAGES;
  for (int x = lid; x < BND_PAGES * d; x += BND_NT) {
    const int pp = x / d, e = x % d, p = p0 + pp;
    float lo = 0.0f, up = 0.0f;
    if (p < n) {
      const long at = (quest_meta_id(table, t_off, paged, b, p, max_pages) * hkv + hk) * d + e;
      lo = kmin[at];
      up = kmax[at];
    }
    lo_s[pp * BND_S + e] = lo;
    up_s[pp * BND_S + e] = up;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const int pp = lid % BND_PAGES, slot = lid / BND_PAGES;
  float u = 0.0f;
  for (int g0 = 0; g0 < nh; g0 += BND_NT / BND_PAGES) {
    const int g = g0 + slot;
    float uh = 0.0f;
    if (g < nh) {
      __global const float* qr = q + q_off + b * q_sb + (long)(h0 + g) * q_sh;
      for (int e = 0; e < d; ++e)
        uh = uh + sq_quest_bound_term(qr[e], lo_s[pp * BND_S + e], up_s[pp * BND_S + e]);
    }
    uh_s[lid] = uh;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (slot == 0)
      for (int t = 0; t < BND_NT / BND_PAGES && g0 + t < nh; ++t)
        u = share ? u + uh_s[t * BND_PAGES + pp] : uh_s[t * BND_PAGES + pp];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const int p = p0 + pp;
  if (slot == 0 && p < max_pages)
    bounds[((long)b * hi_count + hi) * max_pages + p] = p < n ? u : 0.0f;
}

// Launch local (SEL_NT), global (SEL_NT, B * Hi), after quest_bounds. sel [B, Hi, cap] (-1 past
// the count), counts [B, Hi].
__kernel __attribute__((reqd_work_group_size(SEL_NT, 1, 1))) void quest_select(
    __global const int* seq_lens, long sl_off, __global const float* bounds, __global int* sel,
    __global int* counts, int max_pages, int page_size, int hi_count, int page_budget, int cap) {
  __local uint hist[256];
  __local int scan_buf[SEL_NT];
  const int lid = get_local_id(0);
  const int b = get_group_id(1) / hi_count, hi = get_group_id(1) % hi_count;
  const int len = seq_lens[sl_off + b];
  const int n = (len + page_size - 1) / page_size;
  __global const float* bnd = bounds + ((long)b * hi_count + hi) * max_pages;
  __global int* out = sel + ((long)b * hi_count + hi) * cap;

  const int budget = page_budget > 1 ? page_budget : 1;
  const int dense = n <= budget;
  const int ncand = dense ? 0 : n - 1;
  const int k = dense ? 0 : budget - 1;
  // Radix select: the k-th smallest key T and how many entries equal to T to take (`need`).
  uint prefix = 0u, mask = 0u;
  int need = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int x = lid; x < 256; x += SEL_NT) hist[x] = 0u;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int p = lid; p < ncand; p += SEL_NT) {
      const uint key = sq_quest_order_key(bnd[p]);
      if ((key & mask) == prefix) atomic_inc(&hist[(key >> shift) & 255u]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int cum = 0, digit = 0;
    for (; digit < 255; ++digit) {
      const int c = (int)hist[digit];
      if (cum + c >= need) break;
      cum += c;
    }
    need -= cum;
    prefix |= (uint)digit << shift;
    mask |= 255u << shift;
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  // Output in index order: keys below T, then the first `need` keys equal to T. Work-item lid
  // owns candidates [lid * seg, lid * seg + seg); two scans give its ties and outputs before it.
  const int seg = (ncand + SEL_NT - 1) / SEL_NT;
  const int c0 = min(lid * seg, ncand), c1 = min(c0 + seg, ncand);
  int my_ties = 0;
  for (int p = c0; p < c1; ++p) my_ties += sq_quest_order_key(bnd[p]) == prefix;
  int tie_rank, tie_total, at, sel_total;
  QUEST_SCAN(scan_buf, my_ties, tie_rank, tie_total);
  const int tie_base = tie_rank;
  int my_take = 0;
  for (int p = c0; p < c1; ++p) {
    const uint key = sq_quest_order_key(bnd[p]);
    const int tie = key == prefix;
    my_take += k > 0 && (key < prefix || (tie && tie_rank < need));
    tie_rank += tie;
  }
  QUEST_SCAN(scan_buf, my_take, at, sel_total);
  (void)tie_total;
  (void)sel_total;
  tie_rank = tie_base;
  for (int p = c0; p < c1 && k > 0; ++p) {
    const uint key = sq_quest_order_key(bnd[p]);
    const int tie = key == prefix;
    if (key < prefix || (tie && tie_rank < need)) out[at++] = p;
    tie_rank += tie;
  }
  const int count = dense ? n : k + 1;
  for (int t = lid; t < cap; t += SEL_NT) {
    if (dense)
      out[t] = t < n ? t : -1;
    else if (t == k)
      out[t] = n - 1;
    else if (t > k)
      out[t] = -1;
  }
  if (lid == 0) counts[(long)b * hi_count + hi] = count;
}

#endif  // SPARQ_SPARSE_QUEST_SELECT_H
