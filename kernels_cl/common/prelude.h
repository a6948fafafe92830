// prelude.h — lets the shared headers of kernels_cl/common/ compile as OpenCL C 1.2 and as C++20,
// so the device kernels and the CPU fallback run literally the same arithmetic source.
//
// Rules (ARCHITECTURE §2): contraction off, explicit fma only, no built-in transcendentals,
// NaN-propagating max/min written with comparisons, bit casts for reinterpretation.
// Shared headers wrap their definitions in SQ_BEGIN_NAMESPACE / SQ_END_NAMESPACE and mark every
// function SQ_FN.
#ifndef SPARQ_COMMON_PRELUDE_H
#define SPARQ_COMMON_PRELUDE_H

#ifdef __OPENCL_C_VERSION__
#pragma OPENCL FP_CONTRACT OFF
#define SQ_FN static inline
#define SQ_BEGIN_NAMESPACE
#define SQ_END_NAMESPACE
#define SQ_GLOBAL __global
#define SQ_CONST_GLOBAL __global const
#define sq_as_float(u) as_float(u)
#define sq_as_uint(f) as_uint(f)
#define sq_isnan(x) isnan(x)
#define sq_isinf(x) isinf(x)
#define sq_fma(a, b, c) fma((a), (b), (c))
#define sq_sqrt(x) sqrt(x)
#define sq_fabs(x) fabs(x)
#define sq_clz(x) clz(x)
#else
#include <bit>
#include <cmath>
#include <cstdint>
#define SQ_FN inline
#define SQ_BEGIN_NAMESPACE namespace sparq::cl_common {
#define SQ_END_NAMESPACE }
#define SQ_GLOBAL
#define SQ_CONST_GLOBAL const
SQ_BEGIN_NAMESPACE
typedef std::uint8_t uchar;
typedef std::uint16_t ushort;
typedef std::uint32_t uint;
typedef std::uint64_t ulong;
typedef std::int64_t slong;  // OpenCL's "long"; C++'s long differs by platform
SQ_FN float sq_as_float(uint u) { return std::bit_cast<float>(u); }
SQ_FN uint sq_as_uint(float f) { return std::bit_cast<uint>(f); }
SQ_FN bool sq_isnan(float x) { return std::isnan(x); }
SQ_FN bool sq_isinf(float x) { return std::isinf(x); }
SQ_FN float sq_fma(float a, float b, float c) { return std::fma(a, b, c); }  // correctly rounded
SQ_FN float sq_sqrt(float x) { return std::sqrt(x); }                        // correctly rounded
SQ_FN float sq_fabs(float x) { return std::fabs(x); }
SQ_FN uint sq_clz(uint x) { return (uint)std::countl_zero(x); }  // 32 for 0, like OpenCL clz
SQ_END_NAMESPACE
#endif

SQ_BEGIN_NAMESPACE
// NaN-propagating max/min and clamp (never fmin/fmax: they drop NaN).
SQ_FN float sq_mx(float a, float b) { return (sq_isnan(a) || sq_isnan(b)) ? (a + b) : (a > b ? a : b); }
SQ_FN float sq_mn(float a, float b) { return (sq_isnan(a) || sq_isnan(b)) ? (a + b) : (a < b ? a : b); }
SQ_FN float sq_clamp(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
SQ_END_NAMESPACE

#endif  // SPARQ_COMMON_PRELUDE_H
