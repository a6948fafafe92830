#pragma OPENCL FP_CONTRACT OFF
// grid.cl — MMInference grid head index, steps 4-7 (specs/sparse_attention.md §7.3): mean pooling
// of Q/K over permuted 64-blocks and the per-row selection. The defined order is stated in
// sparse/grid_build.h (shared with fallback_cpu/sparse/grid.cpp); these kernels only map
// work-items to elements and rows. Steps 1-3 and 5 (vertical-slash probe, stride, permutation,
// line tiles) run before, host/src/sparse/grid.cpp. Index layout: row = (b * Hi + hi) * nQB + qb.
// Capacity overflow (a builder bug) sets *err (atomic_or of the SQ_NORM_* code).
#include "attention/attention_common.h"
#include "sparse/grid_build.h"

// Gather + mean pooling: out[((b * H + h) * nblk + blk) * D + d] = (sum over n of the block,
// ascending, of x[b][h][perm[b][n]][d], plain + from 0) / n_rows. One work-item per output.
__kernel void sparse_grid_pool(gbytes x, long x_off, long x_sb, long x_sh, long x_sr, int x_dt,
                               __global const int* perm, __global float* out, int H, int L, int D,
                               int nblk, long total) {
  const long gid = get_global_id(0);
  if (gid >= total) return;
  const int d = (int)(gid % D);
  const int blk = (int)((gid / D) % nblk);
  const long bh = gid / ((long)D * nblk);
  const int h = (int)(bh % H);
  const long b = bh / H;
  const int r0 = blk * 64;
  const int r1 = r0 + 64 < L ? r0 + 64 : L;
  const long base = x_off + b * x_sb + h * x_sh + d;
  __global const int* pb = perm + b * L;
  float s = 0.0f;
  for (int r = r0; r < r1; ++r) s = s + sq_att_load1(x, base + (long)pb[r] * x_sr, x_dt);
  out[gid] = s / (float)(r1 - r0);
}

// One work-item per index row (b, hi, qb). qbar [B, Hq, nQB, D], kbar [B, Hkv, nKB, D] (pooled,
// permuted); kbmin [B, nKB]; qpos [B, Lq]; kpos, kinv [B, Lk]; lines [rows, max_lines] with
// nlines [rows] (each row's line tiles, ascending). wsf: top_k floats, wsi: top_k + sq_grid_ws_ints
// ints per row.
__kernel void sparse_grid_select(__global const float* qbar, __global const float* kbar,
                                 __global const int* kbmin, __global const int* qpos,
                                 __global const int* kpos, __global const int* kinv,
                                 __global const int* lines, __global const int* nlines,
                                 int max_lines, __global int* tcount, __global int* tstart,
                                 __global int* ccount, __global float* wsf, __global int* wsi,
                                 __global int* err, int rows, int hi_n, int hq, int hkv, int share,
                                 int nqb, int nkb, int D, int max_tiles, int top_k, int lq,
                                 int lk) {
  const int row = get_global_id(0);
  if (row >= rows) return;
  const int qb = row % nqb;
  const int bhi = row / nqb;
  const int hi = bhi % hi_n;
  const int b = bhi / hi_n;
  const int group = hq / hkv;
  const int hk = share ? hi : hi / group;
  const int h0 = share ? hi * group : hi;
  const int nheads = share ? group : 1;
  const int wsn = top_k + sq_grid_ws_ints(top_k, max_lines);
  __global int* w = wsi + (long)row * wsn;
  int nt = 0;
  const int e = sq_grid_row(qbar + (((long)b * hq + h0) * nqb + qb) * D, (long)nqb * D, nheads,
                            kbar + ((long)b * hkv + hk) * nkb * D, nkb, D, kbmin + (long)b * nkb,
                            qpos + (long)b * lq, kpos + (long)b * lk, kinv + (long)b * lk,
                            lines + (long)row * max_lines, nlines[row], qb, lq, lk, top_k,
                            wsf + (long)row * top_k, w, w + top_k, tstart + (long)row * max_tiles,
                            max_tiles, &nt);
  tcount[row] = nt;
  ccount[row] = 0;
  if (e) atomic_or(err, e);
}
