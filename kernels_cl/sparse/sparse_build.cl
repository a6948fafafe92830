#pragma OPENCL FP_CONTRACT OFF
// sparse_build.cl — index builders A-shape and block-sparse (spec §5.1, §5.3). The per-row
// definitions live in sparse_build.h (shared with fallback_cpu/sparse/sparse_build.cpp); these
// kernels only map work-items to rows. Index layout: row = (b * Hi + hi) * nQB + qb.
// Capacity overflow (a builder bug) sets *err (atomic_or of the SQ_NORM_* code); the host
// raises sparq::Error(internal).
#include "attention/attention_common.h"
#include "sparse/sparse_build.h"

// One work-item per index row. ws: 4 ints per row.
__kernel void sparse_build_ashape(__global int* tcount, __global int* tstart, __global int* ccount,
                                  __global int* ws, __global int* err, int rows, int nqb,
                                  int max_tiles, int lq, int lk, int off, int causal, int n_init,
                                  int n_local) {
  const int row = get_global_id(0);
  if (row >= rows) return;
  int nt = 0;
  const int e = sq_ashape_row(row % nqb, lq, lk, off, causal, n_init, n_local, ws + (long)row * 4,
                              tstart + (long)row * max_tiles, max_tiles, &nt);
  tcount[row] = nt;
  ccount[row] = 0;
  if (e) atomic_or(err, e);
}

// Mean pooling over 64-row blocks: out[((b * H + h) * nblk + blk) * D + d] =
// (sum of x[b][h][r][d] over the block's rows, ascending, plain +) / n_rows.
__kernel void sparse_pool(gbytes x, long x_off, long x_sb, long x_sh, long x_sr, int x_dt,
                          __global float* out, int H, int L, int D, int nblk, long total) {
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
  float s = 0.0f;
  for (int r = r0; r < r1; ++r) s = s + sq_att_load1(x, base + r * x_sr, x_dt);
  out[gid] = s / (float)(r1 - r0);
}

// One work-item per index row (b, hi, qb). qbar [B, Hq, nQB, D], kbar [B, Hkv, nKB, D].
// wsf: top_k floats per row, wsi: sq_block_sparse_ws_ints(top_k) ints per row.
__kernel void sparse_build_block_sparse(__global const float* qbar, __global const float* kbar,
                                        __global int* tcount, __global int* tstart,
                                        __global int* ccount, __global float* wsf,
                                        __global int* wsi, __global int* err, int rows, int hi_n,
                                        int hq, int hkv, int share, int nqb, int nkb, int D,
                                        int max_tiles, int top_k, int lq, int lk, int off,
                                        int causal) {
  const int row = get_global_id(0);
  if (row >= rows) return;
  const int qb = row % nqb;
  const int hi = (row / nqb) % hi_n;
  const int b = row / (nqb * hi_n);
  const int group = hq / hkv;
  const int hk = share ? hi : hi / group;
  const int h0 = share ? hi * group : hi;
  const int nheads = share ? group : 1;
  const long qstride = (long)nqb * D;
  __global const float* qv = qbar + (((long)b * hq + h0) * nqb + qb) * D;
  __global const float* kv = kbar + ((long)b * hkv + hk) * nkb * D;
  int nt = 0;
  const int e =
      sq_block_sparse_row(qv, qstride, nheads, kv, nkb, D, qb, lq, lk, off, causal, top_k,
                          wsf + (long)row * top_k, wsi + (long)row * sq_block_sparse_ws_ints(top_k),
                          tstart + (long)row * max_tiles, max_tiles, &nt);
  tcount[row] = nt;
  ccount[row] = 0;
  if (e) atomic_or(err, e);
}
