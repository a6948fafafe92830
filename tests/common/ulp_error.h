// Error of a binary32 result against a double or long double reference (53 / 64 significant
// bits: the reference's own error, <= ~2^-52 relative, is ~2^-29 ulp of binary32, far below what
// is measured here), in ulps of the exact result; the arithmetic here is in long double.
//
// ulp(r) = 2^(e - 23) where 2^e <= |r| < 2^(e+1), e clamped to [-126, 127]: below FLT_MIN the
// unit is the subnormal spacing 2^-149, above FLT_MAX the spacing of the top binade. Results
// below FLT_MIN are reported separately ("subnormal units"), as the issue asks for ulp bounds on
// results >= FLT_MIN. An infinite result where the exact one rounds to a finite float counts as
// the value 2^128 (the next value in an unbounded exponent range).
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <string>

namespace sparq::test {

struct ErrorStats {
  double max_ulp = 0;  // results with |exact| >= FLT_MIN
  float max_ulp_at = 0;
  double max_sub = 0;  // results with |exact| < FLT_MIN, in units of 2^-149
  float max_sub_at = 0;
  double max_rel = 0;  // |y - exact| / |exact|, results >= FLT_MIN
  float max_rel_at = 0;
  std::size_t count = 0;
  std::size_t special_mismatches = 0;  // NaN / infinity where the exact value is not, or back
  float first_special_mismatch = 0;

  void add(float x, float y, long double exact) {
    ++count;
    if (std::isnan(exact) || std::isnan(y) || std::isinf(exact)) {
      const bool ok = std::isnan(exact) ? std::isnan(y) : (!std::isnan(y) && y == exact);
      if (!ok && special_mismatches++ == 0) first_special_mismatch = x;
      return;
    }
    const float rounded = static_cast<float>(exact);
    if (std::isinf(rounded) && y == rounded) return;  // correctly overflowed
    long double yv = y;
    if (std::isinf(y)) yv = std::copysign(0x1p128L, static_cast<long double>(y));
    const long double mag = std::fabs(exact);
    int e = mag > 0 ? std::ilogb(mag) : -127;
    e = e < -126 ? -126 : (e > 127 ? 127 : e);
    const long double unit = std::ldexp(1.0L, e - 23);
    const double err = static_cast<double>(std::fabs(yv - exact) / unit);
    if (mag >= FLT_MIN) {
      if (err > max_ulp) max_ulp = err, max_ulp_at = x;
      const double rel = static_cast<double>(std::fabs(yv - exact) / mag);
      if (rel > max_rel) max_rel = rel, max_rel_at = x;
    } else if (err > max_sub) {
      max_sub = err, max_sub_at = x;
    }
  }

  void merge(const ErrorStats& o) {
    if (o.max_ulp > max_ulp) max_ulp = o.max_ulp, max_ulp_at = o.max_ulp_at;
    if (o.max_sub > max_sub) max_sub = o.max_sub, max_sub_at = o.max_sub_at;
    if (o.max_rel > max_rel) max_rel = o.max_rel, max_rel_at = o.max_rel_at;
    if (o.special_mismatches && !special_mismatches)
      first_special_mismatch = o.first_special_mismatch;
    count += o.count;
    special_mismatches += o.special_mismatches;
  }

  std::string summary(const char* name) const {
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "%-9s %zu inputs: max %.4f ulp (x=%a), max rel %.3e = 2^%.2f (x=%a), "
                  "subnormal results max %.4f units of 2^-149 (x=%a), special mismatches %zu",
                  name, count, max_ulp, static_cast<double>(max_ulp_at), max_rel,
                  max_rel > 0 ? std::log2(max_rel) : -999.0, static_cast<double>(max_rel_at),
                  max_sub, static_cast<double>(max_sub_at), special_mismatches);
    return buf;
  }
};

}  // namespace sparq::test
