// selftest_ops.h — the arithmetic of the exactness self-test, shared by kernels_cl/runtime/
// selftest.cl and fallback_cpu/runtime/selftest.cpp. Each operation probes one rule of
// ARCHITECTURE §2 that a device or compiler could silently break; the device passes when its
// outputs equal the fallback's bit for bit (NaN == NaN).
#ifndef SPARQ_RUNTIME_SELFTEST_OPS_H
#define SPARQ_RUNTIME_SELFTEST_OPS_H
#include "common/prelude.h"

#define SQ_SELFTEST_OUTPUTS 6

SQ_BEGIN_NAMESPACE
SQ_FN float sq_selftest_op(int which, float a, float b) {
  switch (which) {
    case 0: return a / b;                 // correctly rounded divide
    case 1: return sq_sqrt(sq_fabs(a));   // correctly rounded sqrt
    case 2: return sq_fma(a, b, a);       // fma is one rounding
    case 3: return a * b + a;             // two roundings: fails if contraction is on
    case 4: return (a * b) * 1.0e-30f;    // lands in denormals: fails under FTZ/DAZ
    default: return sq_mx(a, b);          // NaN-propagating max
  }
}
SQ_END_NAMESPACE

#endif  // SPARQ_RUNTIME_SELFTEST_OPS_H
