#pragma OPENCL FP_CONTRACT OFF
// merge.cl — merges of attention states with the one formula of attention_common.h:
//   R empty (lse -inf) -> R = C; C empty -> R; else m = mx(lse_r, lse_c), wa = exp2(lse_r - m),
//   wb = exp2(lse_c - m), s = wa + wb, o = fma(o_r, wa, o_c * wb) / s, lse = m + log2(s).
// Macros: SQ_ATT_HOOKS (1: attention_merge_chunks takes the head constants [slope2, sink2] and
// merges the sink state (o = 0, lse = sink2[h]) after the last chunk). One work-item per output element; every element is its own sequential fold.
//
// attention_merge_chunks: split decode. The workspace holds each query row's chunk states
// (o_c[D], lse_c) in chunk order; R folds them left to right (chunk 0 first), exactly as
// dense.cl / decode.cl fold them in place, then O and lse are written like those kernels do.
// Launch: global (roundup(D, 64), Hq * maxLq, B), local (64, 1, 1).
//
// attention_merge_states: the public op, out = merge(a, b) per (row, e); rows indexed over up to
// four leading dims. Launch: global (roundup(D, 64), rows), local (64, 1).
#include "attention/attention_common.h"

__kernel void attention_merge_chunks(
    __global const float* ws_o, __global const float* ws_lse, int ws_chunks,
    __global uchar* out, long o_off, long o_sb, long o_sr, long o_sh, int o_dt,
    __global float* lse, long l_off, long l_sb, long l_sr, long l_sh, int want_lse,
    __global const int* seq_a, long sa_off, long sa_st,  // varlen: cu_q; paged: seq_lens
    __global const int* seq_b, long sb_off, long sb_st,  // varlen: cu_k
    int mode, int hq, int d, int lq, int lk
#if SQ_ATT_HOOKS
    , __global const float* hk_head
#endif
    ) {
  const int e = get_global_id(0);
  const int h = get_global_id(1) % hq, i = get_global_id(1) / hq, b = get_global_id(2);
  long q0 = 0;
  if (mode == 1) {
    q0 = seq_a[sa_off + b * sa_st];
    lq = seq_a[sa_off + (b + 1) * sa_st] - (int)q0;
    lk = seq_b[sb_off + (b + 1) * sb_st] - seq_b[sb_off + b * sb_st];
  } else if (mode == 2) {
    lk = seq_a[sa_off + b * sa_st];
  }
  if (e >= d || i >= lq) return;
  const int nchunks = lk > 0 ? (lk + SQ_ATT_CHUNK - 1) / SQ_ATT_CHUNK : 0;
  const long ws_row = mode == 1 ? (q0 + i) * hq + h : ((long)b * hq + h) * lq + i;
  float o_r = 0.0f, lse_r = sq_att_neg_inf();
  for (int ch = 0; ch < nchunks; ++ch) {
    const long at = ws_row * ws_chunks + ch;
    const SqAttMerge w = sq_att_merge_weights(lse_r, ws_lse[at]);
    o_r = sq_att_merge_out(w, o_r, ws_o[at * d + e]);
    lse_r = w.lse;
  }
#if SQ_ATT_HOOKS
  const SqAttMerge w = sq_att_merge_weights(lse_r, hk_head[hq + h]);  // the sink
  o_r = sq_att_merge_out(w, o_r, 0.0f);
  lse_r = w.lse;
#endif
  sq_att_store1(out, o_off + b * o_sb + (q0 + i) * o_sr + h * o_sh + e, o_dt, o_r);
  if (want_lse && e == 0) lse[l_off + b * l_sb + (q0 + i) * l_sr + h * l_sh] = lse_r;
}

// Offset of leading index `row` (row-major over dims) under strides st.
static inline long merge_offset(long row, long4 dims, long4 st) {
  const long i3 = row % dims.w;
  row /= dims.w;
  const long i2 = row % dims.z;
  row /= dims.z;
  const long i1 = row % dims.y;
  const long i0 = row / dims.y;
  return i0 * st.x + i1 * st.y + i2 * st.z + i3 * st.w;
}

__kernel void attention_merge_states(gbytes out_a, long oa_off, long4 oa_st, int oa_dt,
                                     gbytes lse_a, long la_off, long4 la_st, int la_dt,
                                     gbytes out_b, long ob_off, long4 ob_st, int ob_dt,
                                     gbytes lse_b, long lb_off, long4 lb_st, int lb_dt,
                                     __global float* out, __global float* lse, long4 dims,
                                     long rows, int d) {
  const int e = get_global_id(0);
  const long row = get_global_id(1);
  if (e >= d || row >= rows) return;
  const float lse_ra = sq_att_load1(lse_a, la_off + merge_offset(row, dims, la_st), la_dt);
  const float lse_rb = sq_att_load1(lse_b, lb_off + merge_offset(row, dims, lb_st), lb_dt);
  const SqAttMerge w = sq_att_merge_weights(lse_ra, lse_rb);
  const float a = sq_att_load1(out_a, oa_off + merge_offset(row, dims, oa_st) + e, oa_dt);
  const float bb = sq_att_load1(out_b, ob_off + merge_offset(row, dims, ob_st) + e, ob_dt);
  out[row * d + e] = sq_att_merge_out(w, a, bb);
  if (e == 0) lse[row] = w.lse;
}
