#pragma OPENCL FP_CONTRACT OFF
// quest.cl — Quest page-sparse decode (specs/sparse_attention.md §8): page metadata, bound +
// page selection, the split page-attention kernel, and the left-fold merge of split states.
// No macros (D, Pg, modes are run-time arguments). fp32 K/V only, except quest_metadata, which
// reads K in any paged-KV storage (attention/kv_pages.h: the dequantized values of int8 / NVFP4
// pages).
//
// K/V addressing (both caches): element (row X, slot s, kv head hk, d) at off + X*s0 + s*ss +
// hk*sh + d. Paged: X = page_table[b][p], s = slot in the page. Contiguous [B, Hkv, Lk, D]:
// X = b, s = p*Pg + slot. Metadata entry of (b, p): paged page_table[b][p], contiguous
// b*max_pages + p; kmin/kmax are [entries, Hkv, D] contiguous.
//
// DEFINED ORDER (the fallback, fallback_cpu/sparse/quest.cpp, runs the same steps):
//  quest_metadata: per (item, hk, d): acc = from > 0 ? stored : k[from]; then for s ascending
//    acc = mn(acc, k[s]) (kmin) / mx(acc, k[s]) (kmax)  — quest_math.h.
//  quest_bounds: U[p] per (b, index head hi, page), one chain over d (quest_math.h); kv_group:
//    bound = 0 + U_h0 + U_h1 ... (heads ascending).
//  quest_select: per (b, index head hi) one work-group, on those bounds.
//    n = ceil(seq_len / Pg); pb = page_budget. If n <= max(pb, 1): all pages. Else the last page
//    plus the first pb - 1 of pages 0..n-2 in the §4 order (key of quest_math.h, then index):
//    an exact radix select on the 32-bit key (integer counts only), ties at the threshold key
//    taken in index order; output ascending, then n - 1.
//  quest_decode: per (b, query head h) row and split s (positions [s*pps, (s+1)*pps) of the
//    selected list): m = -inf, l = 0, acc = 0; per page ascending (its valid keys J):
//      q' = q*c; s_j = dot(q', k_j) (fma chain over d); m_t = mx_j s_j; m_new = mx(m, m_t)
//      m_new == -inf: skip; alpha = exp2(m - m_new); p_j = exp2(s_j - m_new)
//      r = 0; r = r + p_j (j asc); l = fma(l, alpha, r)
//      acc[d] = acc[d]*alpha; acc[d] = fma(p_j, v_j[d], acc[d]) (j asc); m = m_new
//    writes (m, l, acc) of the split.
//  quest_merge: per row: state = split 0; for s = 1..: state = state ⊕ split s (quest_math.h);
//    O = l == 0 ? 0 : acc / l; lse2 = l == 0 ? -inf : m + log2(l). No split: O = 0, lse2 = -inf.
//
// Work split of quest_decode (no chain is split): scores: pair (row x / KB, key x % KB) per
// work-item, each dot one chain over d from local memory; row steps (m_t, alpha, r, l) of row
// lid % ROWS on every work-item (identical copies, PoCL note in attention_common.h); P.V:
// work-item (float4 column lid % 32, rows lid / 32 and lid / 32 + 4), each acc[d] a chain over
// the page's keys ascending.
#include "attention/kv_pages.h"
#include "sparse/quest_math.h"

#define NT 128
#define ROWS 8
#define DMAX 128
#define KB 32          // keys staged per sub-block (K or V), KB * DMAX floats
#define KS (DMAX + 4)  // padded row stride of a staged key
#define PGMAX 128
#define PS (PGMAX + 4)
#define SEL_NT 256
#define BND_NT 128
#define BND_PAGES 32      // pages per quest_bounds work-group
#define BND_S (DMAX + 1)  // staged row stride (odd: no bank conflicts)
#define SQ_QUEST_LOCAL_ALIGN __attribute__((aligned(16)))
#define SQ_QUEST_LD4(p) (*(__local const float4*)(p))
#define SQ_QUEST_ST4(p, x) (*(__local float4*)(p) = (x))

static inline long quest_meta_id(__global const int* table, long tb, int paged, int b, int p,
                                 int max_pages) {
  return paged ? (long)table[tb + (long)b * max_pages + p] : (long)b * max_pages + p;
}

// ---- metadata ----------------------------------------------------------------------------
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

// ---- bound + selection -------------------------------------------------------------------
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

// ---- split page attention ------------------------------------------------------------------
// Launch local (NT), global (NT * row_groups, max_splits, B * Hi). Rows of index head hi: its
// query heads (1, or the G heads of a kv group); row group x takes rows [8x, 8x + 8).
// ws_ml [B, Hq, max_splits, 2] (m, l), ws_acc [B, Hq, max_splits, D].
__kernel __attribute__((reqd_work_group_size(NT, 1, 1))) void quest_decode(
    __global const float* q, long q_off, long q_sb, long q_sh,             //
    __global const float* k, long k_off, long k_s0, long k_ss, long k_sh,  //
    __global const float* v, long v_off, long v_s0, long v_ss, long v_sh,  //
    __global const int* table, long t_off, __global const int* seq_lens, long sl_off,
    __global const int* sel, __global const int* counts, int all_pages, int cap,
    __global float* ws_ml, __global float* ws_acc, int max_splits,  //
    int paged, int max_pages, int page_size, int pages_per_split, int hq, int hkv, int share, int d,
    float c) {
  __local float qs[ROWS * DMAX] SQ_QUEST_LOCAL_ALIGN;
  __local float kv[KB * KS] SQ_QUEST_LOCAL_ALIGN;
  __local float sp[ROWS * PS];
  __local float row_m[ROWS], row_alpha[ROWS];
  __local int row_live[ROWS];

  const int lid = get_local_id(0);
  const int hi_count = share ? hkv : hq;
  const int b = get_group_id(2) / hi_count, hi = get_group_id(2) % hi_count;
  const int group = hq / hkv;
  const int hk = share ? hi : hi / group;
  const int h0 = share ? hi * group : hi, nh = share ? group : 1;
  const int r0 = get_group_id(0) * ROWS;
  const int nrows = clamp(nh - r0, 0, ROWS);
  const int split = get_group_id(1);
  const int len = seq_lens[sl_off + b];
  const int n = (len + page_size - 1) / page_size;
  const int count = all_pages ? n : counts[(long)b * hi_count + hi];
  const int t0 = split * pages_per_split;
  const int t1 = min(count, t0 + pages_per_split);
  const int active = nrows > 0 && t0 < count;
  __global const int* list = sel + ((long)b * hi_count + hi) * cap;

  for (int x = lid; x < ROWS * DMAX; x += NT) {
    const int r = x / DMAX, e = x % DMAX;
    float y = 0.0f;
    if (r < nrows && e < d) y = q[q_off + b * q_sb + (long)(h0 + r0 + r) * q_sh + e] * c;
    qs[x] = y;
  }

  const int pv_col = (lid & 31) * 4, pv_r = lid >> 5;
  float4 acc0 = (float4)(0.0f), acc1 = (float4)(0.0f);
  const int my_row = lid & (ROWS - 1);
  float m_mine = sq_quest_neg_inf(), l_mine = 0.0f;

  const int t_end = active ? t1 : t0;
  for (int t = t0; t < t_end; ++t) {
    const int p = all_pages ? t : list[t];
    const int valid = min(page_size, len - p * page_size);
    const long x_row = paged ? (long)table[t_off + (long)b * max_pages + p] : (long)b;
    const int slot0 = paged ? 0 : p * page_size;
    // ---- scores, KB keys at a time ----
    for (int j0 = 0; j0 < valid; j0 += KB) {
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int x = lid; x < KB * (DMAX / 4); x += NT) {
        const int jj = x / (DMAX / 4), e = (x % (DMAX / 4)) * 4;
        float4 y = (float4)(0.0f);
        if (j0 + jj < valid && e < d)
          y = vload4(0, k + k_off + x_row * k_s0 + (long)(slot0 + j0 + jj) * k_ss + hk * k_sh + e);
        SQ_QUEST_ST4(kv + jj * KS + e, y);
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int x = lid; x < ROWS * KB; x += NT) {
        const int r = x / KB, jj = x % KB;
        float s = 0.0f;
        for (int e = 0; e < d; ++e) s = fma(qs[r * DMAX + e], kv[jj * KS + e], s);
        sp[r * PS + j0 + jj] = j0 + jj < valid ? s : sq_quest_neg_inf();
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // ---- row steps (every work-item for row lid % ROWS; owners publish) ----
    float alpha_mine;
    {
      float mt = sq_quest_neg_inf();
      for (int j = 0; j < valid; ++j) mt = sq_mx(mt, sp[my_row * PS + j]);
      const float m_new = sq_mx(m_mine, mt);
      const int live = m_new != sq_quest_neg_inf();
      alpha_mine = live ? sq_exp2(m_mine - m_new) : 1.0f;
      m_mine = live ? m_new : m_mine;
      if (lid < ROWS) {
        row_alpha[lid] = alpha_mine;
        row_m[lid] = m_mine;
        row_live[lid] = live;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = lid; x < ROWS * PGMAX; x += NT) {
      const int r = x / PGMAX, j = x % PGMAX;
      if (j < valid) {
        const float s = sp[r * PS + j];
        sp[r * PS + j] = row_live[r] && s != sq_quest_neg_inf() ? sq_exp2(s - row_m[r]) : 0.0f;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    {
      float rs = 0.0f;
      for (int j = 0; j < valid; ++j) rs = rs + sp[my_row * PS + j];
      l_mine = fma(l_mine, alpha_mine, rs);
    }
    acc0 = acc0 * row_alpha[pv_r];
    acc1 = acc1 * row_alpha[pv_r + 4];
    const int live0 = row_live[pv_r], live1 = row_live[pv_r + 4];
    // ---- P.V, KB keys at a time ----
    for (int j0 = 0; j0 < valid; j0 += KB) {
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int x = lid; x < KB * (DMAX / 4); x += NT) {
        const int jj = x / (DMAX / 4), e = (x % (DMAX / 4)) * 4;
        float4 y = (float4)(0.0f);
        if (j0 + jj < valid && e < d)
          y = vload4(0, v + v_off + x_row * v_s0 + (long)(slot0 + j0 + jj) * v_ss + hk * v_sh + e);
        SQ_QUEST_ST4(kv + jj * KS + e, y);
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      const int jn = min(KB, valid - j0);
      if (pv_col < d) {
        for (int jj = 0; jj < jn; ++jj) {
          const float4 vv = SQ_QUEST_LD4(kv + jj * KS + pv_col);
          if (live0) acc0 = fma((float4)(sp[pv_r * PS + j0 + jj]), vv, acc0);
          if (live1) acc1 = fma((float4)(sp[(pv_r + 4) * PS + j0 + jj]), vv, acc1);
        }
      }
    }
  }

  if (!active) return;  // after the last barrier
  const long e0 = ((long)b * hq + h0 + r0) * max_splits + split;
  if (lid < nrows) {
    ws_ml[2 * (e0 + (long)lid * max_splits)] = m_mine;
    ws_ml[2 * (e0 + (long)lid * max_splits) + 1] = l_mine;
  }
  if (pv_col < d) {
    if (pv_r < nrows) vstore4(acc0, 0, ws_acc + (e0 + (long)pv_r * max_splits) * d + pv_col);
    if (pv_r + 4 < nrows)
      vstore4(acc1, 0, ws_acc + (e0 + (long)(pv_r + 4) * max_splits) * d + pv_col);
  }
}

// ---- merge of the splits ---------------------------------------------------------------------
// Launch global (D rounded up, B * Hq). out [B, Hq, D] contiguous, lse [B, Hq] (want_lse).
__kernel void quest_merge(__global const float* ws_ml, __global const float* ws_acc, int max_splits,
                          __global const int* seq_lens, long sl_off, __global const int* counts,
                          int all_pages, int pages_per_split, int page_size, int hq, int hkv,
                          int share, int d, __global float* out, __global float* lse,
                          int want_lse) {
  const int e = get_global_id(0), row = get_global_id(1);
  if (e >= d) return;
  const int b = row / hq, h = row % hq;
  const int hi_count = share ? hkv : hq;
  const int hi = share ? h / (hq / hkv) : h;
  const int len = seq_lens[sl_off + b];
  const int n = (len + page_size - 1) / page_size;
  const int count = all_pages ? n : counts[(long)b * hi_count + hi];
  const int splits = (count + pages_per_split - 1) / pages_per_split;
  const long e0 = (long)row * max_splits;
  float m = sq_quest_neg_inf(), l = 0.0f, a = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float m2 = ws_ml[2 * (e0 + s)], l2 = ws_ml[2 * (e0 + s) + 1];
    const float a2 = ws_acc[(e0 + s) * d + e];
    if (s == 0) {
      m = m2;
      l = l2;
      a = a2;
    } else {
      const SqQuestMerge w = sq_quest_merge_weights(m, m2);
      l = sq_quest_merge_value(w, l, l2);
      a = sq_quest_merge_value(w, a, a2);
      m = w.m;
    }
  }
  out[(long)row * d + e] = sq_quest_out(a, l);
  if (want_lse && e == 0) lse[row] = sq_quest_lse(m, l);
}
