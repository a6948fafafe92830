#pragma OPENCL FP_CONTRACT OFF
// quest.cl — Quest page-sparse decode (specs/sparse_attention.md §8): page metadata, bound +
// page selection, the split page-attention kernel, and the left-fold merge of split states. One
// program; the metadata kernel is in quest_metadata.h, bound + selection in quest_select.h.
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

#include "sparse/quest_metadata.h"  // quest_metadata
#include "sparse/quest_select.h"    // quest_bounds, quest_select

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
