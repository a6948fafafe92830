// scan_io.h — the loads of kernels_cl/mamba/selective_scan.cl (OpenCL C only): typed or quantized
// (SQ_SCAN_Q) inputs and the B/C index. Loads only; no arithmetic of the scan lives here.
#ifndef SPARQ_MAMBA_SCAN_IO_H
#define SPARQ_MAMBA_SCAN_IO_H

#include "mamba/mamba_io.h"
#include "mamba/outlier_quant_math.h"

#ifdef SQ_SCAN_Q
// Element j of quantized row `row`. m = (1 | bits8 << 1 | fmt << 2, K, C, 0).
static inline float sq_q_at(__global const uchar* qc, __global const float* qs,
                            __global const int* qn, __global const int* qi, gbytes qv,
                            __global const float* qo, int4 m, long row, int j) {
  const int bits8 = (m.x >> 1) & 1, fmt = m.x >> 2, K = m.y, C = m.z;
  const long ncodes = bits8 ? (long)C : (long)(C + 1) / 2;
  const long vo = row * K;
  return sq_oq_dequant_at(qc + row * ncodes, bits8, qs[row], qn[row], qi + vo, fmt,
                          (__global const float*)qv + vo, (__global const ushort*)qv + vo, qv + vo,
                          fmt == 2 ? qo[row] : 0.0f, j);
}
#define SQ_QARGS(X)                                                                         \
  , __global const uchar *X##_qc, __global const float *X##_qs, __global const int *X##_qn, \
      __global const int *X##_qi, gbytes X##_qv, __global const float *X##_qo, int4 X##_qm
#define SQ_LD(X, p, i, dt, row, ch)                                                          \
  ((X##_qm.x & 1) ? sq_q_at(X##_qc, X##_qs, X##_qn, X##_qi, X##_qv, X##_qo, X##_qm, row, ch) \
                  : sq_load_any(p, i, dt))
#else
#define SQ_QARGS(X)
#define SQ_LD(X, p, i, dt, row, ch) sq_load_any(p, i, dt)
#endif

// Index of the B or C value for (b, g, d, n, t): variable [Bt, G, N, L] (strides s0, s1, s2) or
// constant [D, N] (row stride s0).
static inline long bc_index(int var, long4 g, long b, long grp, long d, long n, long t) {
  return var ? g.x + b * g.y + grp * g.z + n * g.w + t : g.x + d * g.y + n;
}
// Quantized B/C rows are [Bt, L, G*N] (always variable): row b*L + t, channel grp*N + n.
#define SQ_BC(X, p, dt, var, g, b, grp, d, n, t) \
  SQ_LD(X, p, bc_index(var, g, b, grp, d, n, t), dt, (b)*L + (t), (int)((grp)*N + (n)))

#endif  // SPARQ_MAMBA_SCAN_IO_H
