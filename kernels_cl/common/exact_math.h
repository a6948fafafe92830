// exact_math.h — the only transcendentals sparq uses (ARCHITECTURE §2). Each is defined once,
// as a range reduction plus a polynomial in explicit fma, and compiles as OpenCL C 1.2 and as
// C++20 (prelude.h), so a kernel and its fallback run the same operations and get the same bits.
//
// The operation order of every function is part of its definition and comes from the family
// specs (named per function); every + - * / written here is one IEEE binary32 operation with
// round-to-nearest-even, and nothing is fused unless written sq_fma (contraction is off on both
// sides). Coefficients are host-rounded binary32 values written as bit patterns.
//
// Errors are in ulps of the exact result (for results below FLT_MIN: in units of the smallest
// subnormal, 2^-149). "Max error" below is measured over all 2^32 inputs (sincospi: all its
// 2^21 + 1 angles); the commands and full numbers are in docs/exact_math.md.
#ifndef SPARQ_COMMON_EXACT_MATH_H
#define SPARQ_COMMON_EXACT_MATH_H

#include "common/prelude.h"
#include "common/rounding.h"

SQ_BEGIN_NAMESPACE

SQ_FN float sq_inf_(void) {
  return sq_as_float(0x7f800000u);
}

// 2^e as a float for e in [-126, 127], built from bits (exact).
SQ_FN float sq_pow2i_(int e) {
  return sq_as_float((uint)(e + 127) << 23);
}

// p * 2^k with k in [-150, 150], as two power-of-two factors (k1 = k/2 toward zero, k2 = k - k1,
// both in [-75, 75]) so neither factor over/underflows. For the p of exp/exp2 (|p| in [0.7, 1.5])
// the first product is exact, so the result is rounded once (also into subnormals, also to inf).
SQ_FN float sq_scale_pow2_(float p, int k) {
  int k1 = k / 2;
  int k2 = k - k1;
  return (p * sq_pow2i_(k1)) * sq_pow2i_(k2);
}

// --- exp2 (specs/fp4_attention.md §4.4) ---------------------------------------------------------
// One reduction x = k + f (k = round-to-even(x), f in [-0.5, 0.5] exact), then Horner in fma over
// C_i = RN(ln2^i / i!), degree 7 (sq_exp2) or 5 (sq_exp2_q).

// sq_exp2_core_: its reduction and polynomial for x in [-150, 128) and k = round-to-even(x),
// however k was obtained (a kernel may round with one exact conversion instead).
SQ_FN float sq_exp2_core_(float x, int k) {
  float f = x - (float)k;                      // exact
  float p = sq_as_float(0x377FE5FEu);          // C7 1.52527336e-05
  p = sq_fma(p, f, sq_as_float(0x39218489u));  // C6 1.54035297e-04
  p = sq_fma(p, f, sq_as_float(0x3AAEC3FFu));  // C5 1.33335579e-03
  p = sq_fma(p, f, sq_as_float(0x3C1D955Bu));  // C4 9.61812865e-03
  p = sq_fma(p, f, sq_as_float(0x3D635847u));  // C3 5.55041097e-02
  p = sq_fma(p, f, sq_as_float(0x3E75FDF0u));  // C2 2.40226507e-01
  p = sq_fma(p, f, sq_as_float(0x3F317218u));  // C1 6.93147182e-01
  p = sq_fma(p, f, 1.0f);                      // C0
  return sq_scale_pow2_(p, k);
}
// 2^x, max error 0.871 ulp (subnormal results: 0.91 units of 2^-149, rounded once). exp2(±0) = 1
// exactly, exp2(k) = 2^k exactly for integer k, exp2(-inf) = +0, exp2(+inf) = +inf, NaN -> NaN
// (same bits). x >= 128 -> +inf; x < -150 -> +0.
SQ_FN float sq_exp2(float x) {
  if (sq_isnan(x)) return x;
  if (x >= 128.0f) return sq_inf_();
  if (!(x >= -150.0f)) return 0.0f;
  return sq_exp2_core_(x, sq_round_rne_int(x));
}

// 2^x with relative error < 2^-17 (degree 5; max measured 3.31e-6 = 2^-18.21, i.e. 39.2 ulp;
// subnormal results: 19.9 units of 2^-149). Only for values quantized right after (softmax
// probabilities that become int8 or FP4). Same special values and ranges as sq_exp2.
SQ_FN float sq_exp2_q(float x) {
  if (sq_isnan(x)) return x;
  if (x >= 128.0f) return sq_inf_();
  if (!(x >= -150.0f)) return 0.0f;
  int k = sq_round_rne_int(x);
  float f = x - (float)k;                      // exact
  float p = sq_as_float(0x3AAEC3FFu);          // C5 1.33335579e-03
  p = sq_fma(p, f, sq_as_float(0x3C1D955Bu));  // C4 9.61812865e-03
  p = sq_fma(p, f, sq_as_float(0x3D635847u));  // C3 5.55041097e-02
  p = sq_fma(p, f, sq_as_float(0x3E75FDF0u));  // C2 2.40226507e-01
  p = sq_fma(p, f, sq_as_float(0x3F317218u));  // C1 6.93147182e-01
  p = sq_fma(p, f, 1.0f);                      // C0
  return sq_scale_pow2_(p, k);
}

// p * 2^k for the x <= 0 forms below: t = 1.5 * 2^23 + k (k in [-160, 0]); 2^(k + 64)'s bits
// from bits(t) << 23 with one add, then * 2^-64 (the one rounding, as sq_scale_pow2_'s).
SQ_FN float sq_exp2_le0_scale_(float p, float t) {
  const float s = sq_as_float((sq_as_uint(t) << 23) + 0x5F800000u);  // 2^(k + 64)
  return (p * s) * sq_as_float(0x1F800000u);                         // * 2^-64
}

// sq_exp2_q(x) for x <= 0, written for GPU issue slots (attention/sage8_mma.cl: x = S2 - m_new):
// no branch, no float<->int conversion, the same bits for every x in [-inf, 0]; NaN gives a NaN
// (x's when the platform propagates the payload). Not for x > 0. xr = x, or -160 where
// x < -150 (the result +0); k = RN-even(xr) from the 1.5 * 2^23 shifter (xr + M rounds to M + k,
// exact for |xr| < 2^22), the same k as sq_round_rne_int, so the same f and p; 2^k is applied as
// 2^(k + 64) * 2^-64 (k + 64 in [-96, 64]: normal, and p * 2^(k + 64) exact), so the one rounding
// is sq_scale_pow2_'s; bits(t) << 23 is (k << 23) mod 2^32, hence 2^(k + 64)'s bits with one add.
// tests/common/fast_forms_test.cpp compares it with sq_exp2_q (a sweep of x <= 0 and the edges;
// all 2^31 non-positive inputs checked once). sq_exp2_q_le0_core: the same for xr in [-150, 0], xr
// = -160 (+0) or NaN (a caller may fold its own masking into the clamp).
SQ_FN float sq_exp2_q_le0_core(float xr) {
  const float t = xr + 12582912.0f;            // 1.5 * 2^23 + k
  const float f = xr - (t - 12582912.0f);      // exact
  float p = sq_as_float(0x3AAEC3FFu);          // C5, as sq_exp2_q
  p = sq_fma(p, f, sq_as_float(0x3C1D955Bu));  // C4
  p = sq_fma(p, f, sq_as_float(0x3D635847u));  // C3
  p = sq_fma(p, f, sq_as_float(0x3E75FDF0u));  // C2
  p = sq_fma(p, f, sq_as_float(0x3F317218u));  // C1
  p = sq_fma(p, f, 1.0f);                      // C0
  return sq_exp2_le0_scale_(p, t);
}

SQ_FN float sq_exp2_q_le0(float x) {
  return sq_exp2_q_le0_core(x < -150.0f ? -160.0f : x);
}

// sq_exp2(x) for x <= 0 (the softmax rescale 2^(m - m_new)), built as sq_exp2_q_le0: the same
// bits for every x in [-inf, 0], NaN gives a NaN; not for x > 0.
SQ_FN float sq_exp2_le0(float x) {
  const float xr = x < -150.0f ? -160.0f : x;
  const float t = xr + 12582912.0f;            // 1.5 * 2^23 + k
  const float f = xr - (t - 12582912.0f);      // exact
  float p = sq_as_float(0x377FE5FEu);          // C7, as sq_exp2_core_
  p = sq_fma(p, f, sq_as_float(0x39218489u));  // C6
  p = sq_fma(p, f, sq_as_float(0x3AAEC3FFu));  // C5
  p = sq_fma(p, f, sq_as_float(0x3C1D955Bu));  // C4
  p = sq_fma(p, f, sq_as_float(0x3D635847u));  // C3
  p = sq_fma(p, f, sq_as_float(0x3E75FDF0u));  // C2
  p = sq_fma(p, f, sq_as_float(0x3F317218u));  // C1
  p = sq_fma(p, f, 1.0f);                      // C0
  return sq_exp2_le0_scale_(p, t);
}

// --- exp (specs/mamba_scan.md §4.2; SLEEF xexpf design and constants) ------------------------
// e^x: q = RN-even(x * 1/ln2), s = x - q*ln2 in two fma steps (Cody-Waite), e^s = 1 + s + s^2 P(s).
// Max error 0.988 ulp (subnormal results: 0.75 units of 2^-149). exp(±0) = 1,
// exp(-inf) = +0, exp(+inf) = +inf, NaN -> NaN. x > 100 -> +inf (overflow to +inf happens for
// x > 88.72 by IEEE rules); x < -104 -> +0. Subnormal results are rounded once.
SQ_FN float sq_exp(float x) {
  if (sq_isnan(x)) return x;
  if (x < -104.0f) return 0.0f;
  if (x > 100.0f) return sq_inf_();
  int q = sq_round_rne_int(x * sq_as_float(0x3FB8AA3Bu));  // 1/ln2 1.44269502; |q| <= 150
  float qf = (float)q;
  float s = sq_fma(-qf, sq_as_float(0x3F317200u), x);  // L2U 0.693145752 (ln2 high part)
  s = sq_fma(-qf, sq_as_float(0x35BFBE8Eu), s);        // L2L 1.42860677e-06 (ln2 low part)
  float p = sq_as_float(0x39502BDAu);                  // c5 1.98527618e-04
  p = sq_fma(p, s, sq_as_float(0x3AB696C9u));          // c4 1.39304355e-03
  p = sq_fma(p, s, sq_as_float(0x3C0888A6u));          // c3 8.33336078e-03
  p = sq_fma(p, s, sq_as_float(0x3D2AAA7Au));          // c2 4.16664854e-02
  p = sq_fma(p, s, sq_as_float(0x3E2AAAABu));          // c1 1.66666672e-01
  p = sq_fma(p, s, 0.5f);                              // c0
  float s2 = s * s;
  float r = sq_fma(s2, p, s);
  r = 1.0f + r;
  return sq_scale_pow2_(r, q);
}

// --- log family (specs/mamba_scan.md §4.3 and §4.6; fdlibm/musl log1pf, logf, log2f) ----------
// Shared core: with f = u - 1 for u in [sqrt(2)/2, sqrt(2)], s = f/(2+f) and
// R = z*(Lg1 + w*Lg3) + w*(Lg2 + w*Lg4) (z = s^2, w = z^2) approximates
// (log(1+s) - log(1-s))/s - 2 to 2^-34.24. Every operation separately rounded, no fma: the
// fdlibm evaluation order is the definition.
SQ_FN float sq_log_poly_(float s) {
  float z = s * s;
  float w = z * z;
  float t1 = w * (sq_as_float(0x3ECCCE13u) + w * sq_as_float(0x3E789E26u));  // Lg2, Lg4
  float t2 = z * (sq_as_float(0x3F2AAAAAu) + w * sq_as_float(0x3E91E9EEu));  // Lg1, Lg3
  return t2 + t1;
}
#define SQ_LN2_HI_ 0x3f317180u  // 6.9313812256e-01, low 7 bits zero so k*ln2_hi is exact
#define SQ_LN2_LO_ 0x3717f7d1u  // 9.0580006145e-06

// log(1 + x), max error 0.835 ulp (musl's design). log1p(±0) = ±0, log1p(-1) = -inf,
// log1p(x < -1) = NaN (also -inf), log1p(+inf) = +inf, NaN -> NaN; |x| < 2^-24 (incl.
// subnormals) -> x.
SQ_FN float sq_log1p(float x) {
  if (sq_isnan(x)) return x;
  if (x == -1.0f) return -sq_inf_();
  if (x < -1.0f) return sq_as_float(0x7fc00000u);
  if (x == sq_inf_()) return x;
  uint ix = sq_as_uint(x);
  int k = 1;
  float c = 0.0f;
  float f = x;
  if (ix < 0x3ed413d0u || (ix >> 31) != 0u) {      // 1 + x < sqrt(2) (roughly)
    if ((ix << 1) < (0x33800000u << 1)) return x;  // |x| < 2^-24
    if (ix <= 0xbe95f619u) k = 0;                  // sqrt(2)/2 - 1 <= x: f = x, c = 0
  }
  if (k != 0) {
    float u = 1.0f + x;
    uint iu = sq_as_uint(u) + (0x3f800000u - 0x3f3504f3u);
    k = (int)(iu >> 23) - 127;
    if (k < 25) {  // c = log(1+x) - log(u) correction; for k >= 25 it is below any ulp
      c = (k >= 2) ? 1.0f - (u - x) : x - (u - 1.0f);
      c = c / u;
    }
    f = sq_as_float((iu & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
  }
  float s = f / (2.0f + f);
  float R = sq_log_poly_(s);
  float hfsq = (0.5f * f) * f;
  float dk = (float)k;
  return (((s * (hfsq + R) + (dk * sq_as_float(SQ_LN2_LO_) + c)) - hfsq) + f) +
         dk * sq_as_float(SQ_LN2_HI_);
}

// Reduction of logf/log2f for finite x > 0: x = 2^k * u, u in [sqrt(2)/2, sqrt(2)); returns
// f = u - 1 (exact). Subnormal x is first scaled by 2^25 (exact).
SQ_FN float sq_log_reduce_(float x, int* k_out) {
  int k = 0;
  if (x < sq_as_float(0x00800000u)) {  // subnormal
    k = -25;
    x = x * 33554432.0f;  // 2^25
  }
  uint ix = sq_as_uint(x) + (0x3f800000u - 0x3f3504f3u);
  k += (int)(ix >> 23) - 127;
  *k_out = k;
  return sq_as_float((ix & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
}

// Non-finite / non-positive / unit inputs of log and log2: NaN -> x, ±0 -> -inf, x < 0 -> NaN
// (also -inf), +inf -> +inf, 1 -> +0. Returns 1 and sets *r when x is one of those.
SQ_FN int sq_log_special_(float x, float* r) {
  if (sq_isnan(x)) {
    *r = x;
  } else if (x == 0.0f) {
    *r = -sq_inf_();
  } else if (x < 0.0f) {
    *r = sq_as_float(0x7fc00000u);
  } else if (x == sq_inf_()) {
    *r = x;
  } else if (x == 1.0f) {
    *r = 0.0f;
  } else {
    return 0;
  }
  return 1;
}

// Natural log, max error 0.835 ulp (FreeBSD/musl logf). Special values: sq_log_special_.
SQ_FN float sq_log(float x) {
  float r;
  if (sq_log_special_(x, &r)) return r;
  int k;
  float f = sq_log_reduce_(x, &k);
  float s = f / (2.0f + f);
  float R = sq_log_poly_(s);
  float hfsq = (0.5f * f) * f;
  float dk = (float)k;
  return (((s * (hfsq + R) + dk * sq_as_float(SQ_LN2_LO_)) - hfsq) + f) +
         dk * sq_as_float(SQ_LN2_HI_);
}

// Base-2 log, max error 0.864 ulp (FreeBSD/musl log2f). Exact for powers of two. Special values:
// sq_log_special_. log2(f) is split hi + lo with hi keeping 12 significant bits so that
// hi * ivln2hi is exact-ish and the integer k is added last.
SQ_FN float sq_log2(float x) {
  float r;
  if (sq_log_special_(x, &r)) return r;
  int k;
  float f = sq_log_reduce_(x, &k);
  float s = f / (2.0f + f);
  float R = sq_log_poly_(s);
  float hfsq = (0.5f * f) * f;
  float hi = sq_as_float(sq_as_uint(f - hfsq) & 0xfffff000u);
  float lo = ((f - hi) - hfsq) + s * (hfsq + R);
  const float ivln2hi = sq_as_float(0x3fb8b000u);  // 1.4428710938
  const float ivln2lo = sq_as_float(0xb9389ad4u);  // -1.7605285393e-04
  return (((lo + hi) * ivln2lo + lo * ivln2hi) + hi * ivln2hi) + (float)k;
}

#undef SQ_LN2_HI_
#undef SQ_LN2_LO_

// --- activations (specs/mamba_scan.md §4.4, §4.5) ---------------------------------------------

// log(1 + e^x), PyTorch's threshold rule (x > 20 -> x). For x <= 0 it is log1p(exp(x)), for
// 0 < x <= 20 the overflow-free x + log1p(exp(-x)). softplus(-inf) = +0, softplus(+inf) = +inf,
// NaN -> NaN. Max error 1.64 ulp; results below FLT_MIN (x < -87.3) are sq_exp's (0.75 units
// of 2^-149).
SQ_FN float sq_softplus(float x) {
  if (x > 20.0f) return x;
  float e = sq_exp(-sq_fabs(x));
  float l = sq_log1p(e);
  return x > 0.0f ? x + l : l;
}

// z * sigmoid(z) as mamba_ssm writes it: z / (1 + e^-z) (correctly rounded division). Max error
// 2.41 ulp for z >= -88.72 (three roundings add up where 1 + e^-z nears 2^24, z ~ -16.6).
// silu(+inf) = +inf, silu(-inf) = NaN (inf/inf), silu(-0) = -0, NaN -> NaN. For z < -88.72,
// e^-z overflows and the result is -0 although the true value is normal down to z ~ -91.7 (the
// spec's formula; documented in docs/exact_math.md).
SQ_FN float sq_silu(float z) {
  return z / (1.0f + sq_exp(-z));
}

// 1 / (1 + e^-x) (not in a spec; the silu formula's own sigmoid). Max error 2.49 ulp for
// x >= -88.72 (as silu). sigmoid(+inf) = 1, sigmoid(-inf) = +0, NaN -> NaN, sigmoid(±0) = 0.5.
// For x < -88.72 (true value < 3e-39, a subnormal) e^-x overflows and the result is +0.
SQ_FN float sq_sigmoid(float x) {
  return 1.0f / (1.0f + sq_exp(-x));
}

// tanh(x) (Gemma-2 logit soft-cap, docs/attention.md "hooks"). Not in a family spec; designed
// here. |x| < 0.625: tanh(x) = x + x^3 P(x^2), P of degree 6 (Chebyshev fit of
// (tanh(x)/x - 1)/x^2 on z = x^2 in [0, 0.390625], fit error 2^-34), evaluated as Horner in fma
// over z = a*a, then fma(a*z, P, a). |x| >= 0.625: 1 - 2 / (e^(2|x|) + 1) with sq_exp (2|x| is
// exact; e^(2|x|) overflows to +inf for |x| > 44.4, giving exactly 1). The sign is copied from
// x last (odd function, exact). Max error 1.330 ulp over all 2^32 inputs (docs/exact_math.md).
// tanh(±0) = ±0, tanh(±inf) = ±1, NaN -> NaN (same bits); subnormal x -> x.
SQ_FN float sq_tanh(float x) {
  if (sq_isnan(x)) return x;
  float a = sq_fabs(x);
  float r;
  if (a < 0.625f) {
    float z = a * a;
    float p = sq_as_float(0xBA620664u);          // P6 -8.62216810e-04
    p = sq_fma(p, z, sq_as_float(0x3B58ADA1u));  // P5  3.30624753e-03
    p = sq_fma(p, z, sq_as_float(0xBC100825u));  // P4 -8.79100431e-03
    p = sq_fma(p, z, sq_as_float(0x3CB31386u));  // P3  2.18598954e-02
    p = sq_fma(p, z, sq_as_float(0xBD5D0D2Cu));  // P2 -5.39676398e-02
    p = sq_fma(p, z, sq_as_float(0x3E088888u));  // P1  1.33333325e-01
    p = sq_fma(p, z, sq_as_float(0xBEAAAAABu));  // P0 -3.33333343e-01
    r = sq_fma(a * z, p, a);
  } else {
    float e = sq_exp(a + a);
    r = 1.0f - 2.0f / (e + 1.0f);
  }
  return sq_as_float(sq_as_uint(r) | (sq_as_uint(x) & 0x80000000u));
}

// --- sincospi (specs/diffusion_sampling.md §3.4) -----------------------------------------------
// sin(pi x) (returned) and cos(pi x) (*cos_out) for x in [0, 1/4] only: the caller reduces the
// angle exactly in integers. u = x*x; sin = x * S(u), cos = C(u), Horner in fma over Taylor
// coefficients rounded once on the host: S_i = RN((-1)^i pi^(2i+1)/(2i+1)!), C_i =
// RN((-1)^i pi^(2i)/(2i)!). Max error over all 2^21 + 1 angles x = f * 2^-23: sin 1.68 ulp,
// cos 1.02 ulp. sincospi(0) = (+0, 1) exactly; NaN -> NaN (both).
SQ_FN float sq_sincospi(float x, float* cos_out) {
  float u = x * x;
  float s = sq_as_float(0x3DA83C1Au);          // S4  8.21458846e-02
  s = sq_fma(s, u, sq_as_float(0xBF196966u));  // S3 -5.99264503e-01
  s = sq_fma(s, u, sq_as_float(0x402335E3u));  // S2  2.55016398e+00
  s = sq_fma(s, u, sq_as_float(0xC0A55DE7u));  // S1 -5.16771269e+00
  s = sq_fma(s, u, sq_as_float(0x40490FDBu));  // S0  3.14159274e+00 (RN(pi))
  float c = sq_as_float(0xBCD368F9u);          // C5 -2.58068908e-02
  c = sq_fma(c, u, sq_as_float(0x3E70FA83u));  // C4  2.35330626e-01
  c = sq_fma(c, u, sq_as_float(0xBFAAE9E4u));  // C3 -1.33526278e+00
  c = sq_fma(c, u, sq_as_float(0x4081E0F8u));  // C2  4.05871201e+00
  c = sq_fma(c, u, sq_as_float(0xC09DE9E6u));  // C1 -4.93480206e+00
  c = sq_fma(c, u, 1.0f);                      // C0
  *cos_out = c;
  return x * s;
}

SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_EXACT_MATH_H
