#pragma OPENCL FP_CONTRACT OFF
// causal_conv1d.cl — the depthwise causal conv1d before the Mamba scan (Dao-AILab/causal-conv1d:
// causal_conv1d_fn, causal_conv1d_update), with varlen packing (cu_seqlens).
// No macros. One work-item per output (b, d, t) in mamba_conv1d_fwd; one per state row in
// mamba_conv1d_state. Launch geometry never changes a value.
//
// Defined arithmetic order, per output (b, d, t) of sequence s starting at `start` (0 without
// cu_seqlens):
//   acc = bias given ? bias[d] : +0
//   for k = 0 .. W-1 (increasing):  p = t - (W-1) + k
//     p >= start:               acc = fma(w[d,k], x[b,d,p], acc)
//     p <  start, init given:   acc = fma(w[d,k], init[s,d,(W-1) + (p - start)], acc)
//     p <  start, no init:      no term (nothing is added, not even w * 0)
//   out[b,d,t] = narrow_to_x_dtype(silu ? silu(acc) : acc)
// State rows (exact copies, no arithmetic): dst[r, j] for j = 0 .. S_out-1 is element
// S_src + len - S_out + j of (src[r, 0..S_src) ++ x of the row's sequence), +0 before element 0.
// Written in increasing j, which reads only elements at or after j of src, so dst may be src.
#include "mamba/conv_math.h"
#include "mamba/mamba_io.h"

// Raw element copies (4 bytes for f32, else 2), so state rows keep every bit, NaN payloads too.
static inline uint load_bits(gbytes p, long i, int dt) {
  return dt == 0 ? ((__global const uint*)p)[i] : (uint)((__global const ushort*)p)[i];
}
static inline void store_bits(__global uchar* p, long i, int dt, uint v) {
  if (dt == 0)
    ((__global uint*)p)[i] = v;
  else
    ((__global ushort*)p)[i] = (ushort)v;
}

__kernel void mamba_conv1d_fwd(__global uchar* out, int out_dt,          //
                               gbytes x, long4 x_g, int x_dt,             // off, sb, sd
                               gbytes w, long w_off, int w_dt, int W,     // [D, W]
                               gbytes bias, long b_off, int b_dt, int has_bias,
                               gbytes init, long4 i_g, int i_dt, int has_init,  // off, ss, sd
                               __global const int* cu, long cu_off, int nseq,  //
                               int silu, long batch, int D, long L) {
  const long i = get_global_id(0);
  if (i >= batch * D * L) return;
  const long row = i / L, t = i - row * L, b = row / D;
  const int d = (int)(row - b * D);
  const int s = nseq ? sq_seq_of(cu + cu_off, nseq, t) : 0;
  const long start = nseq ? (long)cu[cu_off + s] : 0;
  const long st = nseq ? (long)s : b;
  float acc = has_bias ? sq_load_any(bias, b_off + d, b_dt) : 0.0f;
  for (int k = 0; k < W; ++k) {
    const long p = t - (W - 1) + k;
    const float wk = sq_load_any(w, w_off + (long)d * W + k, w_dt);
    if (p >= start)
      acc = fma(wk, sq_load_any(x, x_g.x + b * x_g.y + d * x_g.z + p, x_dt), acc);
    else if (has_init)
      acc = fma(wk, sq_load_any(init, i_g.x + st * i_g.y + d * i_g.z + (W - 1) + (p - start), i_dt),
                acc);
  }
  sq_store_any(out, i, out_dt, sq_conv_act(acc, silu));
}

__kernel void mamba_conv1d_state(__global uchar* dst, long4 d_g, int S_out,  // off, sr, sd
                                 gbytes src, long4 s_g, int S_src,          // (may be dst)
                                 gbytes x, long4 x_g, int dt,               // one dtype for all
                                 __global const int* cu, long cu_off, int nseq,  //
                                 long states, int D, long L) {
  const long r = get_global_id(0);
  if (r >= states * D) return;
  const long st = r / D;
  const int d = (int)(r - st * D);
  const long b = nseq ? 0 : st;
  const long start = nseq ? (long)cu[cu_off + st] : 0;
  const long len = nseq ? (long)cu[cu_off + st + 1] - start : L;
  for (int j = 0; j < S_out; ++j) {
    const long e = (long)S_src + len - S_out + j;  // index into (src ++ x)
    uint v = 0u;
    if (e >= S_src)
      v = load_bits(x, x_g.x + b * x_g.y + d * x_g.z + start + (e - S_src), dt);
    else if (e >= 0 && S_src > 0)
      v = load_bits(src, s_g.x + st * s_g.y + d * s_g.z + e, dt);
    store_bits(dst, d_g.x + st * d_g.y + d * d_g.z + j, dt, v);
  }
}
