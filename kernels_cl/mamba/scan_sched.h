// scan_sched.h — the schedule knobs of kernels_cl/mamba/selective_scan.cl (OpenCL C only): the
// macros below expand inside its kernel and use its local names (h, a, per, NL, H, HS, BT, DTU,
// ...). None of them changes an operation or its order; only which work-item runs it, when, and
// how the operands travel through local memory.
#ifndef SPARQ_MAMBA_SCAN_SCHED_H
#define SPARQ_MAMBA_SCAN_SCHED_H

// Schedule knobs (host: SPARQ_TUNE_SCAN, docs/mamba.md "Scan schedules"); geometry only.
// SQ_SCAN_PER: compile-time bound of states per lane (the state arrays become registers).
// SQ_SCAN_UNROLL = U > 0 (1, 2, 4, 8 or 16): varlen restarts are checked once per sequence
// segment, and a full tile runs as a fixed-count loop whose body is U steps written out (no
// pragma: the same code on every compiler; at most the whole tile). SQ_SCAN_VEC: dt/du interleaved,
// B read and H written as float4 over 4 steps, and the output phase runs 4 steps per lane (float4 H
// and C).
#ifdef SQ_SCAN_PER
#define SQ_PER_N SQ_SCAN_PER
#define SQ_FOR_K                        \
  for (int k = 0; k < SQ_SCAN_PER; ++k) \
    if (k < per)
#else
#define SQ_PER_N 4
#define SQ_FOR_K for (int k = 0; k < per; ++k)
#endif
#ifndef SQ_SCAN_UNROLL
#define SQ_SCAN_UNROLL 0
#endif
#ifndef SQ_SCAN_VEC
#define SQ_SCAN_VEC 0
#endif
#if SQ_SCAN_VEC
#define SQ_PAD 4  // row padding of H and of the B/C tiles: float4 rows stay 16-byte aligned
#else
#define SQ_PAD 1
#endif
#define SQ_BS (SQ_SCAN_T + SQ_PAD)  // row stride of the B/C tiles
#define SQ_L4(p, i) (*(__local float4*)((p) + (i)))

// The B value of state n at tile step tt (staged tile or global) for this lane's channel.
#if SQ_SCAN_STAGE
#define SQ_BV(n, tt) \
  (stage_b ? BT[(n)*SQ_BS + (tt)] : SQ_BC(B, Bm, B_dt, B_var, B_g, b, grp, my_d, n, t0 + (tt)))
#else
#define SQ_BV(n, tt) SQ_BC(B, Bm, B_dt, B_var, B_g, b, grp, my_d, n, t0 + (tt))
#endif
// Varlen: close sequence s (and empty ones) and restart the states while step T_ is past it.
#define SQ_RESTART(T_)                                                          \
  while ((T_) >= end) {                                                         \
    SQ_FOR_K {                                                                  \
      const int n = nl + k * NL;                                                \
      if (n < N) {                                                              \
        if (has_last) last[last_off + ((long)s * D + my_d) * N + n] = h[k];     \
        h[k] = has_h0 ? h0[h0_off + ((long)(s + 1) * D + my_d) * N + n] : 0.0f; \
      }                                                                         \
    }                                                                           \
    ++s;                                                                        \
    end = cu[cu_off + s + 1];                                                   \
  }
// One step tt of the lane's states: h_n(t) to H.
#define SQ_STEP(TT)                                              \
  do {                                                           \
    const int tt_ = (TT), hi_ = my_dl * SQ_SCAN_T + tt_;         \
    const float dtv = SQ_DT(hi_), du = SQ_DU(hi_);               \
    SQ_FOR_K {                                                   \
      const int n = nl + k * NL;                                 \
      if (n < N) {                                               \
        h[k] = sq_scan_step(h[k], dtv, a[k], SQ_BV(n, tt_), du); \
        H[n * HS + hi_] = h[k];                                  \
      }                                                          \
    }                                                            \
  } while (0)
// SQ_SCAN_VEC: four steps tt..tt+3 (tt % 4 == 0, all inside the sequence).
#if SQ_SCAN_VEC
#if SQ_SCAN_STAGE
#define SQ_BV4(n, tt)                    \
  (stage_b ? SQ_L4(BT, (n)*SQ_BS + (tt)) \
           : (float4)(SQ_BV(n, tt), SQ_BV(n, (tt) + 1), SQ_BV(n, (tt) + 2), SQ_BV(n, (tt) + 3)))
#else
#define SQ_BV4(n, tt) \
  ((float4)(SQ_BV(n, tt), SQ_BV(n, (tt) + 1), SQ_BV(n, (tt) + 2), SQ_BV(n, (tt) + 3)))
#endif  // SQ_SCAN_STAGE
#define SQ_STEP4(TT)                                                       \
  do {                                                                     \
    const int hi_ = my_dl * SQ_SCAN_T + (TT);                              \
    const float4 p01 = SQ_L4(DTU, 2 * hi_), p23 = SQ_L4(DTU, 2 * hi_ + 4); \
    SQ_FOR_K {                                                             \
      const int n = nl + k * NL;                                           \
      if (n < N) {                                                         \
        const float4 bv = SQ_BV4(n, TT);                                   \
        float4 hv;                                                         \
        hv.x = h[k] = sq_scan_step(h[k], p01.x, a[k], bv.x, p01.y);        \
        hv.y = h[k] = sq_scan_step(h[k], p01.z, a[k], bv.y, p01.w);        \
        hv.z = h[k] = sq_scan_step(h[k], p23.x, a[k], bv.z, p23.y);        \
        hv.w = h[k] = sq_scan_step(h[k], p23.z, a[k], bv.w, p23.w);        \
        SQ_L4(H, n* HS + hi_) = hv;                                        \
      }                                                                    \
    }                                                                      \
  } while (0)
#define SQ_VW 4
#define SQ_STEPV SQ_STEP4
#else
#define SQ_VW 1
#define SQ_STEPV SQ_STEP
#endif
// SQ_SCAN_UNROLL bodies (of SQ_VW steps each) per iteration of the full-tile loop.
#if SQ_SCAN_UNROLL * SQ_VW > SQ_SCAN_T
#define SQ_UW (SQ_SCAN_T / SQ_VW)
#else
#define SQ_UW SQ_SCAN_UNROLL
#endif
#if SQ_UW > 8
#define SQ_STEPS(J) \
  SQ_STEPS8(J);     \
  SQ_STEPS8((J) + 8 * SQ_VW)
#elif SQ_UW > 4
#define SQ_STEPS(J) SQ_STEPS8(J)
#elif SQ_UW > 2
#define SQ_STEPS(J) SQ_STEPS4(J)
#elif SQ_UW > 1
#define SQ_STEPS(J) SQ_STEPS2(J)
#else
#define SQ_STEPS(J) SQ_STEPV(J)
#endif
#define SQ_STEPS2(J) \
  SQ_STEPV(J);       \
  SQ_STEPV((J) + SQ_VW)
#define SQ_STEPS4(J) \
  SQ_STEPS2(J);      \
  SQ_STEPS2((J) + 2 * SQ_VW)
#define SQ_STEPS8(J) \
  SQ_STEPS4(J);      \
  SQ_STEPS4((J) + 4 * SQ_VW)

#endif  // SPARQ_MAMBA_SCAN_SCHED_H
