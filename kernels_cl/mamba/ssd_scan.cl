#pragma OPENCL FP_CONTRACT OFF
// ssd_scan.cl — Mamba-2 SSD (specs/mamba_scan.md §8): scalar A per head, prefill, decode (L = 1
// with initial states) and variable-length packing (cu_seqlens).
// Macros: SQ_SSD_WG (work-group size), SQ_SSD_T (time chunk), SQ_SSD_PB_MAX (head dims per
// group cap). None of them changes a value: the order below follows data indices only.
//
// Defined arithmetic order (scan_math.h, the Mamba-1 step with a_n = A[h] for every n), per (b, h):
//   h[p,n] = h0[state, h, p, n] or +0 at the start of every sequence
//   for t = 0 .. L-1 (sequential; with cu_seqlens the state restarts at each sequence start):
//     dt  = softplus?(dt[b,t,h] (+ dt_bias[h] if given))
//     dA  = exp(dt * A[h])                                  (once per (b, t, h))
//     for p:
//       du  = dt * x[b,t,h,p]
//       acc = D given ? D[h or h,p] * x[b,t,h,p] : +0
//       for n = 0 .. N-1 (increasing):
//         h[p,n] = fma(dA, h[p,n], B[b,t,g,n] * du)          (g = h / (H / G))
//         acc    = fma(h[p,n], C[b,t,g,n], acc)
//       out[b,t,h,p] = narrow_to_x_dtype(z given ? acc * silu(z[b,t,h,p]) : acc)
//   final_states[state, h, p, n] = h[p,n] after the sequence's last step.
// This is bit for bit the Mamba-1 selective scan of channels d = h*P + p with A[d, n] = A[h]: the
// time chunks of SQ_SSD_T steps below only schedule it (state carried in registers from chunk to
// chunk), so ssd(L1 ++ L2) == ssd(L2, h0 = final(ssd(L1))) for any split and decode loops equal
// one call.
//
// Work-group: one (b, h) and PB consecutive p; lane (pl, nl) owns states n = nl, nl + NL, ...
// (at most SQ_SSD_PER). Per chunk: (1) dt, dA per t, then du, acc0 per (p, t) into local memory;
// (2) each lane advances its states through the chunk, writing h(t) to local H; (3) lanes take
// (p, t) pairs and run the acc chain over n from H, gate, store.
#include "mamba/mamba_io.h"
#include "mamba/scan_math.h"

#define SQ_SSD_PER 4

__kernel __attribute__((reqd_work_group_size(SQ_SSD_WG, 1, 1))) void mamba_ssd_scan(
    __global uchar* out, long4 out_g, int out_dt,  // out [Bt, L, H, P]: (0, sb, sl, sh)
    gbytes x, long4 x_g, int x_dt,                 // (off, sb, sl, sh), p contiguous
    gbytes dtp, long4 dt_g, int dt_dt,             // (off, sb, sl, -), h contiguous
    gbytes z, long4 z_g, int z_dt, int has_z,      //
    gbytes A, long A_off, int A_dt,                // [H]
    gbytes Bm, long4 B_g, int B_dt,                // (off, sb, sl, sg), n contiguous
    gbytes Cm, long4 C_g, int C_dt,                //
    gbytes Dsk, long D_off, int D_dt, int D_mode,  // 0 none, 1 [H], 2 [H, P]
    gbytes bias, long b_off, int b_dt, int has_bias, int softplus, __global const float* h0,
    long h0_off, int has_h0,                            // [states, H, P, N]
    __global float* last, long last_off, int has_last,  //
    __global const int* cu, long cu_off, int nseq,      // nseq = 0: one sequence per batch row
    int H, long L, int P, int N, int hpg, int PB) {
  __local float DT[SQ_SSD_T], DA[SQ_SSD_T];
  __local float DU[SQ_SSD_PB_MAX * SQ_SSD_T];
  __local float AC[SQ_SSD_PB_MAX * SQ_SSD_T];
  __local float Hs[SQ_SSD_T * SQ_SSD_WG * SQ_SSD_PER];

  const int lid = (int)get_local_id(0);
  const long pblocks = (P + PB - 1) / PB;
  const long bh = (long)get_group_id(0) / pblocks;
  const int p0 = (int)((long)get_group_id(0) - bh * pblocks) * PB;
  const long b = bh / H;
  const int hh = (int)(bh - b * H);
  const long grp = hh / hpg;
  const int NL = SQ_SSD_WG / PB;
  const int per = (N + NL - 1) / NL;
  const int my_pl = lid / NL, nl = lid - my_pl * NL;
  const int my_p = p0 + my_pl;
  const int active = my_pl < PB && my_p < P;
  const float a = sq_load_any(A, A_off + hh, A_dt);
  const float bv_h = has_bias ? sq_load_any(bias, b_off + hh, b_dt) : 0.0f;

  float st[SQ_SSD_PER];
  int s = 0;  // current sequence (state index = nseq ? s : b)
  long end = nseq ? (long)cu[cu_off + 1] : L;
#define SQ_SSD_STATE(sidx, n) (h0_off + (((long)(sidx)*H + hh) * P + my_p) * (long)N + (n))
#define SQ_SSD_LAST(sidx, n) (last_off + (((long)(sidx)*H + hh) * P + my_p) * (long)N + (n))
  for (int k = 0; k < SQ_SSD_PER; ++k) {
    const int n = nl + k * NL;
    st[k] = 0.0f;
    if (active && k < per && n < N && has_h0) st[k] = h0[SQ_SSD_STATE(nseq ? 0 : b, n)];
  }

  for (long t0 = 0; t0 < L; t0 += SQ_SSD_T) {
    const int tl = (int)min((long)SQ_SSD_T, L - t0);
    // (1a) per t: dt and dA of (b, t, h).
    if (lid < tl) {
      const long t = t0 + lid;
      const float xd = sq_load_any(dtp, dt_g.x + b * dt_g.y + t * dt_g.z + hh, dt_dt);
      const float dtv = sq_scan_dt(xd, bv_h, has_bias, softplus);
      DT[lid] = dtv;
      DA[lid] = sq_exp(dtv * a);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // (1b) per (p, t): du and acc0.
    for (int i = lid; i < PB * SQ_SSD_T; i += SQ_SSD_WG) {
      const int pl = i / SQ_SSD_T, tt = i - pl * SQ_SSD_T, p = p0 + pl;
      if (p < P && tt < tl) {
        const long t = t0 + tt;
        const float xv = sq_load_any(x, x_g.x + b * x_g.y + t * x_g.z + hh * x_g.w + p, x_dt);
        DU[i] = DT[tt] * xv;
        const float dsk = D_mode == 0   ? 0.0f
                          : D_mode == 1 ? sq_load_any(Dsk, D_off + hh, D_dt)
                                        : sq_load_any(Dsk, D_off + (long)hh * P + p, D_dt);
        AC[i] = sq_scan_acc0(dsk, D_mode != 0, xv);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // (2) the recurrences, sequential in t.
    if (active) {
      for (int tt = 0; tt < tl; ++tt) {
        const long t = t0 + tt;
        while (t >= end) {  // varlen: close sequence s (and empty ones), restart the state
          for (int k = 0; k < per; ++k) {
            const int n = nl + k * NL;
            if (n < N) {
              if (has_last) last[SQ_SSD_LAST(s, n)] = st[k];
              st[k] = has_h0 ? h0[SQ_SSD_STATE(s + 1, n)] : 0.0f;
            }
          }
          ++s;
          end = cu[cu_off + s + 1];
        }
        const float da = DA[tt], du = DU[my_pl * SQ_SSD_T + tt];
        const long brow = B_g.x + b * B_g.y + t * B_g.z + grp * B_g.w;
        for (int k = 0; k < per; ++k) {
          const int n = nl + k * NL;
          if (n < N) {
            const float bv = sq_load_any(Bm, brow + n, B_dt);
            st[k] = sq_fma(da, st[k], bv * du);
            Hs[(my_pl * SQ_SSD_T + tt) * N + n] = st[k];
          }
        }
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // (3) per (p, t): the output chain over n.
    for (int i = lid; i < PB * SQ_SSD_T; i += SQ_SSD_WG) {
      const int pl = i / SQ_SSD_T, tt = i - pl * SQ_SSD_T, p = p0 + pl;
      if (p < P && tt < tl) {
        const long t = t0 + tt;
        const long crow = C_g.x + b * C_g.y + t * C_g.z + grp * C_g.w;
        float acc = AC[i];
        for (int n = 0; n < N; ++n) acc = fma(Hs[i * N + n], sq_load_any(Cm, crow + n, C_dt), acc);
        const float zz =
            has_z ? sq_load_any(z, z_g.x + b * z_g.y + t * z_g.z + hh * z_g.w + p, z_dt) : 0.0f;
        sq_store_any(out, out_g.x + b * out_g.y + t * out_g.z + hh * out_g.w + p, out_dt,
                     sq_scan_gate(acc, zz, has_z));
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  // Final states: the open sequence, then any empty sequences after it.
  if (active && has_last) {
    const int total = nseq ? nseq : 1;
    for (; s < total; ++s) {
      for (int k = 0; k < per; ++k) {
        const int n = nl + k * NL;
        if (n < N) {
          last[SQ_SSD_LAST(nseq ? (long)s : b, n)] = st[k];
          if (s + 1 < total) st[k] = has_h0 ? h0[SQ_SSD_STATE(s + 1, n)] : 0.0f;
        }
      }
    }
  }
}
