#pragma OPENCL FP_CONTRACT OFF
// selective_scan.cl — Mamba-1 selective scan (specs/mamba_scan.md §2), prefill, decode (L = 1
// with h0) and variable-length packing (cu_seqlens).
// Macros: SQ_SCAN_WG (work-group size), SQ_SCAN_T (time tile), SQ_SCAN_DB_MAX (channels per
// group cap), the schedule knobs of scan_sched.h (SQ_SCAN_PER, SQ_SCAN_UNROLL, SQ_SCAN_VEC) and
// SQ_SCAN_FEXP (scan_math.h: the same exp bits in fewer instructions). None of them changes a
// value: the order below follows data indices only.
//
// Defined arithmetic order (scan_math.h), per (b, d):
//   h_n = h0[state(b or s), d, n] or +0 at the start of every sequence (n = 0..N-1)
//   for t = 0 .. L-1 (sequential; with cu_seqlens the state restarts at each sequence start):
//     dt  = softplus?(delta[b,d,t] (+ bias[d] if given))
//     du  = dt * u[b,d,t]
//     acc = D given ? D[d] * u[b,d,t] : +0
//     for n = 0 .. N-1 (increasing):
//       h_n = fma(exp(dt * A[d,n]), h_n, B(n,t) * du)
//       acc = fma(h_n, C(n,t), acc)
//     out[b,d,t] = narrow_to_u_dtype(z given ? acc * silu(z[b,d,t]) : acc)
//   last_state[state, d, n] = h_n after the sequence's last step (h0 or +0 for an empty one).
// Each (b, d, n) recurrence runs in one work-item; the acc chain over n runs in one work-item.
//
// Work-group: one b, DB consecutive channels; lane (dl, nl) owns states n = nl, nl + NL, ...
// Per time tile: (1) lanes compute dt, du, acc0 per (d, t) into local memory; (2) each lane
// advances its states through the tile and writes h_n(t) to local H; (3) lanes take (d, t) pairs
// and run the acc chain over n from H, gate, store.
//
// SQ_SCAN_Q (selective_scan_q, spec §6): each of u, delta, z, B, C may instead be quantized token
// rows [Bt, L, channels] (u/delta/z: channel d; B/C: channel g*N + n), read through X_q* args and
// dequantized per element by sq_oq_dequant_at (§5.5's single definition) where the fp32 load
// would be: no other rounding, no extra pass.
#include "mamba/scan_io.h"
#include "mamba/scan_math.h"

// SQ_SCAN_NCAP: the largest N of this program (host: 16 for N <= 16, else 256). The local tiles
// are sized by it, so the common N = 16 program needs half the local memory (more work-groups
// per compute unit).
#ifndef SQ_SCAN_NCAP
#define SQ_SCAN_NCAP 256
#endif
// DB * N <= max(WG, N) (host: DB = clamp(WG / N, 1, DB_MAX), N <= 256).
#if SQ_SCAN_NCAP <= SQ_SCAN_WG
#define SQ_H_CAP SQ_SCAN_WG
#else
#define SQ_H_CAP SQ_SCAN_NCAP
#endif
#ifndef SQ_SCAN_STAGE
#define SQ_SCAN_STAGE 1  // stage variable B/C tiles in local memory (geometry only)
#endif
#if SQ_SCAN_NCAP < 64
#define SQ_STAGE_NMAX SQ_SCAN_NCAP
#else
#define SQ_STAGE_NMAX 64  // staging only for N <= 64 (the tiles' local memory)
#endif

#include "mamba/scan_sched.h"

__kernel __attribute__((reqd_work_group_size(SQ_SCAN_WG, 1, 1))) void mamba_selective_scan(
    __global uchar* out, long4 out_g, int out_dt,  //
    gbytes u, long4 u_g, int u_dt,                 //
    gbytes delta, long4 dl_g, int dl_dt,           //
    gbytes z, long4 z_g, int z_dt, int has_z,      //
    gbytes A, long A_off, int A_dt,                //
    gbytes Bm, long4 B_g, int B_dt, int B_var,     //
    gbytes Cm, long4 C_g, int C_dt, int C_var,     //
    gbytes Dsk, long D_off, int D_dt, int has_D,   //
    gbytes bias, long b_off, int b_dt, int has_bias, int softplus, __global const float* h0,
    long h0_off, int has_h0,                            //
    __global float* last, long last_off, int has_last,  //
    __global const int* cu, long cu_off, int nseq,      // nseq = 0: one sequence per batch row
    int D, long L, int N, int dpg,
    int DB SQ_QARGS(u) SQ_QARGS(dl) SQ_QARGS(z) SQ_QARGS(B) SQ_QARGS(C)) {
#if SQ_SCAN_VEC
  __local float DTU[2 * SQ_SCAN_DB_MAX * SQ_SCAN_T] __attribute__((aligned(16)));  // (dt, du)
#define SQ_DT(i) DTU[2 * (i)]
#define SQ_DU(i) DTU[2 * (i) + 1]
#else
  __local float DT[SQ_SCAN_DB_MAX * SQ_SCAN_T];
  __local float DU[SQ_SCAN_DB_MAX * SQ_SCAN_T];
#define SQ_DT(i) DT[i]
#define SQ_DU(i) DU[i]
#endif
  __local float AC[SQ_SCAN_DB_MAX * SQ_SCAN_T] __attribute__((aligned(16)));
  // H[n * HS + dl * T + tt], HS = DB * T + PAD: the padding keeps both the per-state writes of
  // phase 2 and the per-(d, t) reads of phase 3 free of bank conflicts.
  __local float H[SQ_SCAN_T * SQ_H_CAP + SQ_PAD * SQ_H_CAP] __attribute__((aligned(16)));
#if SQ_SCAN_STAGE
  // Variable B / C of the tile for the work-group's channel group: [n][tt], row stride T + PAD.
  __local float BT[SQ_STAGE_NMAX * SQ_BS] __attribute__((aligned(16)));
  __local float CT[SQ_STAGE_NMAX * SQ_BS] __attribute__((aligned(16)));
#endif

  const int lid = (int)get_local_id(0);
  const long groups_per_b = (D + DB - 1) / DB;
  const long b = (long)get_group_id(0) / groups_per_b;
  const int d0 = (int)((long)get_group_id(0) - b * groups_per_b) * DB;
  const int NL = SQ_SCAN_WG / DB;
  const int per = (N + NL - 1) / NL;
  const int my_dl = lid / NL, nl = lid - my_dl * NL;
  const int my_d = d0 + my_dl;
  const int active = my_dl < DB && my_d < D;
  const long grp = active ? my_d / dpg : 0;
  const int HS = DB * SQ_SCAN_T + SQ_PAD;
  // One channel group for the whole work-group: its B/C rows are shared, stage them.
  const int d_last = min(d0 + DB, D) - 1;
  const long g0 = d0 / dpg;
#if SQ_SCAN_STAGE
  const int one_group = N <= SQ_STAGE_NMAX && g0 == d_last / dpg;
  const int stage_b = one_group && B_var, stage_c = one_group && C_var;
#else
  const int stage_b = 0, stage_c = 0;
#endif

  float h[SQ_PER_N], a[SQ_PER_N];
  int s = 0;  // current sequence (state index = nseq ? s : b)
  long end = nseq ? (long)cu[cu_off + 1] : L;
  for (int k = 0; k < SQ_PER_N; ++k) {
    const int n = nl + k * NL;
    h[k] = 0.0f;
    a[k] = 0.0f;
    if (active && k < per && n < N) {
      a[k] = sq_load_any(A, A_off + (long)my_d * N + n, A_dt);
      if (has_h0) h[k] = h0[h0_off + ((nseq ? 0 : b) * D + my_d) * (long)N + n];
    }
  }

  for (long t0 = 0; t0 < L; t0 += SQ_SCAN_T) {
    const int tl = (int)min((long)SQ_SCAN_T, L - t0);
    // (1) per (d, t): dt, du, acc0.
    for (int i = lid; i < DB * SQ_SCAN_T; i += SQ_SCAN_WG) {
      const int dl = i / SQ_SCAN_T, tt = i - dl * SQ_SCAN_T, d = d0 + dl;
      if (d < D && tt < tl) {
        const long t = t0 + tt;
        const float uu = SQ_LD(u, u, u_g.x + b * u_g.y + d * u_g.z + t, u_dt, b * L + t, d);
        const float x = SQ_LD(dl, delta, dl_g.x + b * dl_g.y + d * dl_g.z + t, dl_dt, b * L + t, d);
        const float bv = has_bias ? sq_load_any(bias, b_off + d, b_dt) : 0.0f;
        const float dt = sq_scan_dt(x, bv, has_bias, softplus);
        SQ_DT(i) = dt;
        SQ_DU(i) = dt * uu;
        AC[i] = sq_scan_acc0(has_D ? sq_load_any(Dsk, D_off + d, D_dt) : 0.0f, has_D, uu);
      }
    }
#if SQ_SCAN_STAGE
    if (stage_b || stage_c) {
      for (int i = lid; i < N * SQ_SCAN_T; i += SQ_SCAN_WG) {
        const int n = i / SQ_SCAN_T, tt = i - n * SQ_SCAN_T;
        if (tt < tl) {
          const long t = t0 + tt;
          if (stage_b) BT[n * SQ_BS + tt] = SQ_BC(B, Bm, B_dt, 1, B_g, b, g0, d0, n, t);
          if (stage_c) CT[n * SQ_BS + tt] = SQ_BC(C, Cm, C_dt, 1, C_g, b, g0, d0, n, t);
        }
      }
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    // (2) the recurrences, sequential in t (varlen: the state restarts at each sequence start).
    if (active) {
#if SQ_SCAN_UNROLL
      for (int tt = 0; tt < tl;) {
        SQ_RESTART(t0 + tt);
        const int te = (int)min((long)tl, end - t0);  // this segment: steps [tt, te)
        if (tt == 0 && te == SQ_SCAN_T) {
          for (int j = 0; j < SQ_SCAN_T; j += SQ_VW * SQ_UW) {
            SQ_STEPS(j);
          }
          tt = SQ_SCAN_T;
        } else {
          for (; tt < te; ++tt) SQ_STEP(tt);
        }
      }
#else
      for (int tt = 0; tt < tl; ++tt) {
        SQ_RESTART(t0 + tt);
        SQ_STEP(tt);
      }
#endif
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // (3) per (d, t): the output chain over n.
#if SQ_SCAN_VEC
    // Four steps tt..tt+3 per lane: four independent chains, float4 reads of H and C; then every
    // lane gates and stores (d, t) pairs.
    for (int i = lid; i < DB * (SQ_SCAN_T / 4); i += SQ_SCAN_WG) {
      const int dl = i / (SQ_SCAN_T / 4), tt = 4 * (i - dl * (SQ_SCAN_T / 4)), d = d0 + dl;
      if (d < D && tt < tl) {
        const int hi = dl * SQ_SCAN_T + tt;  // steps past tl read unused values, never stored
        const long g = d / dpg;
        const float4 a4 = SQ_L4(AC, hi);
        float acc[4] = {a4.x, a4.y, a4.z, a4.w}, cv[4];
        for (int n = 0; n < N; ++n) {
          const float4 hv = SQ_L4(H, n * HS + hi);
#if SQ_SCAN_STAGE
          if (stage_c) {
            const float4 c4 = SQ_L4(CT, n * SQ_BS + tt);
            cv[0] = c4.x, cv[1] = c4.y, cv[2] = c4.z, cv[3] = c4.w;
          } else
#endif
            for (int j = 0; j < 4; ++j)
              cv[j] = tt + j < tl ? SQ_BC(C, Cm, C_dt, C_var, C_g, b, g, d, n, t0 + tt + j) : 0.0f;
          acc[0] = fma(hv.x, cv[0], acc[0]);
          acc[1] = fma(hv.y, cv[1], acc[1]);
          acc[2] = fma(hv.z, cv[2], acc[2]);
          acc[3] = fma(hv.w, cv[3], acc[3]);
        }
        SQ_L4(AC, hi) = (float4)(acc[0], acc[1], acc[2], acc[3]);  // y in place of acc0
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = lid; i < DB * SQ_SCAN_T; i += SQ_SCAN_WG) {  // gate and store, every lane
      const int dl = i / SQ_SCAN_T, tt = i - dl * SQ_SCAN_T, d = d0 + dl;
      if (d < D && tt < tl) {
        const long t = t0 + tt;
        const float zz =
            has_z ? SQ_LD(z, z, z_g.x + b * z_g.y + d * z_g.z + t, z_dt, b * L + t, d) : 0.0f;
        sq_store_any(out, out_g.x + b * out_g.y + d * out_g.z + t, out_dt,
                     sq_scan_gate(AC[i], zz, has_z));
      }
    }
#else
    for (int i = lid; i < DB * SQ_SCAN_T; i += SQ_SCAN_WG) {
      const int dl = i / SQ_SCAN_T, tt = i - dl * SQ_SCAN_T, d = d0 + dl;
      if (d < D && tt < tl) {
        const long t = t0 + tt, g = d / dpg;
        float acc = AC[i];
#if SQ_SCAN_STAGE
        if (stage_c) {
          for (int n = 0; n < N; ++n) acc = fma(H[n * HS + i], CT[n * SQ_BS + tt], acc);
        } else
#endif
          for (int n = 0; n < N; ++n)
            acc = fma(H[n * HS + i], SQ_BC(C, Cm, C_dt, C_var, C_g, b, g, d, n, t), acc);
        const float zz =
            has_z ? SQ_LD(z, z, z_g.x + b * z_g.y + d * z_g.z + t, z_dt, b * L + t, d) : 0.0f;
        sq_store_any(out, out_g.x + b * out_g.y + d * out_g.z + t, out_dt,
                     sq_scan_gate(acc, zz, has_z));
      }
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  // Final states: the open sequence, then any empty sequences after it.
  if (active && has_last) {
    const int total = nseq ? nseq : 1;
    for (; s < total; ++s) {
      SQ_FOR_K {
        const int n = nl + k * NL;
        if (n < N) {
          last[last_off + ((nseq ? (long)s : b) * D + my_d) * N + n] = h[k];
          if (s + 1 < total) h[k] = has_h0 ? h0[h0_off + ((long)(s + 1) * D + my_d) * N + n] : 0.0f;
        }
      }
    }
  }
}
