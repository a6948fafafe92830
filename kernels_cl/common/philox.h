// philox.h — counter-based Gaussian noise (specs/diffusion_sampling.md §3), one source for the
// OpenCL kernels and the C++ fallback (prelude.h), so the noise is identical on every device.
//
// Philox4x32-10 (Salmon et al., SC'11): counter (c0..c3), key (k0, k1); a round multiplies c0 by
// M0 and c2 by M1 (64-bit products), c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); the key is
// bumped by the Weyl constants between rounds (not before the first). Integer ops only.
//
// Keying (sparq rule, §3.2): key = 64-bit per-sample seed (lo, hi); counter = (q_lo, q_hi, step,
// tag) with q = j >> 2 for within-sample element j; lane j & 3 picks the output. So a value
// depends only on (seed, j, step, tag): not on the launch shape, batch size or device.
//
// Gaussian (§3.3), arithmetic order: u = (2·(ra >> 9) + 1)·2^-24 (exact, never 0 or 1),
// R = sqrt(mul(-2, sq_log(u))); angle from the 24 bits rb >> 8: quadrant = top 2 bits, the other
// 22 folded at 1/8 turn in integers, x = f'·2^-23 in [0, 1/4] exact, (sin, cos) = sq_sincospi(x)
// (swapped when folded), rotated by quadrant; lanes 0/1 = R·cos, R·sin of (r0, r1), lanes 2/3 the
// same of (r2, r3). No float range reduction anywhere.
#ifndef SPARQ_COMMON_PHILOX_H
#define SPARQ_COMMON_PHILOX_H

#include "common/exact_math.h"
#include "common/prelude.h"

SQ_BEGIN_NAMESPACE

// Noise stream tags (§3.2). User sub-streams: tag | (stream << 8).
#define SQ_TAG_INIT_LATENT 0u
#define SQ_TAG_STEP_NOISE 1u
#define SQ_TAG_CHURN 2u
#define SQ_TAG_RENOISE 3u

typedef struct {
  uint v[4];
} SqPhilox4;

// Philox4x32-10 of counter c under key (k0, k1).
SQ_FN SqPhilox4 sq_philox4x32_10(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1) {
  for (int r = 0; r < 10; ++r) {
    const ulong p0 = (ulong)0xD2511F53u * (ulong)c0;
    const ulong p1 = (ulong)0xCD9E8D57u * (ulong)c2;
    const uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0;
    const uint hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;  // uint arithmetic wraps mod 2^32 on both sides
    k1 += 0xBB67AE85u;
  }
  SqPhilox4 out;
  out.v[0] = c0;
  out.v[1] = c1;
  out.v[2] = c2;
  out.v[3] = c3;
  return out;
}

// The Box-Muller radius of the 23-bit value m = ra >> 9: u = (2m + 1)·2^-24 (exact, never 0 or
// 1), R = sqrt(-2·log u).
SQ_FN float sq_bm_radius(uint m) {
  const float u = (float)(2u * m + 1u) * 5.9604644775390625e-8f;  // * 2^-24, exact
  return sq_sqrt(-2.0f * sq_log(u));
}

// Both Box-Muller outputs of the pair (ra, rb): *cos_out = R·cos θ, *sin_out = R·sin θ.
SQ_FN void sq_box_muller2(uint ra, uint rb, float* cos_out, float* sin_out) {
  const float radius = sq_bm_radius(ra >> 9);
  const uint a = rb >> 8;
  const uint quadrant = a >> 22;
  uint f = a & 0x3FFFFFu;
  const int folded = f > 0x200000u;  // past 1/8 turn: use the complement, swap sin and cos
  if (folded) f = 0x400000u - f;
  float c;
  const float s = sq_sincospi((float)f * 1.1920928955078125e-7f, &c);  // f * 2^-23, exact
  const float sq = folded ? c : s;  // sin and cos of the angle within the quadrant
  const float cq = folded ? s : c;
  float cos_t, sin_t;
  if (quadrant == 0u) {
    cos_t = cq;
    sin_t = sq;
  } else if (quadrant == 1u) {
    cos_t = -sq;
    sin_t = cq;
  } else if (quadrant == 2u) {
    cos_t = -cq;
    sin_t = -sq;
  } else {
    cos_t = sq;
    sin_t = -cq;
  }
  *cos_out = radius * cos_t;
  *sin_out = radius * sin_t;
}

// One Box-Muller output of the pair (ra, rb): R·cos θ when want_sin is 0, R·sin θ otherwise.
SQ_FN float sq_box_muller(uint ra, uint rb, int want_sin) {
  float c, s;
  sq_box_muller2(ra, rb, &c, &s);
  return want_sin ? s : c;
}

// The standard normal value of within-sample element j for (seed, step, tag).
SQ_FN float sq_randn(uint seed_lo, uint seed_hi, ulong j, uint step, uint tag) {
  const ulong q = j >> 2;
  const SqPhilox4 r = sq_philox4x32_10((uint)q, (uint)(q >> 32), step, tag, seed_lo, seed_hi);
  const uint lane = (uint)(j & 3u);
  return lane < 2u ? sq_box_muller(r.v[0], r.v[1], (int)lane)
                   : sq_box_muller(r.v[2], r.v[3], (int)(lane - 2u));
}

// The four values of quad q (within-sample elements 4q .. 4q+3) at once: one Philox call and two
// Box-Muller pairs, the same bits as sq_randn of each element (kernels that own a whole quad).
SQ_FN void sq_randn4(uint seed_lo, uint seed_hi, ulong q, uint step, uint tag, float* out) {
  const SqPhilox4 r = sq_philox4x32_10((uint)q, (uint)(q >> 32), step, tag, seed_lo, seed_hi);
  sq_box_muller2(r.v[0], r.v[1], &out[0], &out[1]);
  sq_box_muller2(r.v[2], r.v[3], &out[2], &out[3]);
}

SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_PHILOX_H
