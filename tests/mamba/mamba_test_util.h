// Helpers of the Mamba tests: a scan case (shape + flags + dtype), seeded inputs rounded to the
// storage dtype, uploads into SelectiveScanArgs on a Context, widened downloads.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/convert.h"
#include "reference/mamba_ref.h"
#include "sparq/sparq.h"
#include "test_support.h"

namespace sparq::test::mamba_t {

using namespace sparq::mamba;

struct ScanCase {
  std::int64_t batch = 1, D = 4, L = 7, N = 16, G = 1;
  bool B_var = true, C_var = true, has_D = false, has_z = false, has_bias = false;
  bool softplus = false, has_h0 = false, last = true;
  DType dtype = DType::f32;
  std::vector<std::int32_t> cu;  // varlen sequence starts (batch must be 1)
  std::string label() const {
    std::string s = "Bt" + std::to_string(batch) + " D" + std::to_string(D) + " L" +
                    std::to_string(L) + " N" + std::to_string(N) + " G" + std::to_string(G) + " " +
                    dtype_name(dtype);
    if (!B_var) s += " Bconst";
    if (!C_var) s += " Cconst";
    if (has_D) s += " D";
    if (has_z) s += " z";
    if (has_bias) s += " bias";
    if (softplus) s += " softplus";
    if (has_h0) s += " h0";
    if (!cu.empty()) s += " varlen" + std::to_string(cu.size() - 1);
    return s;
  }
};

// Values rounded to `t` (what the op sees after exact widening).
inline std::vector<float> round_to(std::vector<float> v, DType t) {
  using namespace sparq::cl_common;
  if (t == DType::f32) return v;
  for (auto& x : v)
    x = t == DType::f16 ? sq_f16_to_f32(sq_f32_to_f16_rne(x))
                        : sq_bf16_to_f32(sq_f32_to_bf16_rne(x));
  return v;
}

using sparq::test::download_f32;
using sparq::test::upload_as;

// Seeded inputs in the tolerance regime of spec §3 (A < 0, |values| about <= 4).
inline ref::ScanInput make_input(const ScanCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.001f, 0.25f);
  auto normal = [&](std::int64_t n, float scale) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = std::fmax(-4.0f, std::fmin(4.0f, nd(rng) * scale));
    return round_to(v, c.dtype);
  };
  ref::ScanInput in;
  in.batch = c.batch;
  in.D = c.D;
  in.L = c.L;
  in.N = c.N;
  in.G = c.G;
  in.B_var = c.B_var;
  in.C_var = c.C_var;
  in.softplus = c.softplus;
  const std::int64_t P = c.batch * c.D * c.L;
  in.u = normal(P, 1.0f);
  if (c.softplus) {
    in.delta = normal(P, 1.0f);
  } else {
    in.delta.resize(static_cast<std::size_t>(P));
    for (auto& x : in.delta) x = ud(rng);
    in.delta = round_to(in.delta, c.dtype);
  }
  in.A.resize(static_cast<std::size_t>(c.D * c.N));
  for (auto& x : in.A) x = -std::exp(std::fmax(-3.0f, std::fmin(1.3f, nd(rng))));
  in.A = round_to(in.A, c.dtype);
  const std::int64_t bc_var = c.batch * c.G * c.N * c.L, bc_const = c.D * c.N;
  in.B = normal(c.B_var ? bc_var : bc_const, 1.0f);
  in.C = normal(c.C_var ? bc_var : bc_const, 1.0f);
  if (c.has_D) in.Dskip = normal(c.D, 1.0f);
  if (c.has_z) in.z = normal(P, 1.0f);
  if (c.has_bias) in.bias = normal(c.D, 0.5f);
  const std::int64_t states = c.cu.empty() ? c.batch : static_cast<std::int64_t>(c.cu.size()) - 1;
  if (c.has_h0) {
    in.h0.resize(static_cast<std::size_t>(states * c.D * c.N));
    for (auto& x : in.h0) x = nd(rng);
  }
  in.cu = c.cu;
  return in;
}

// The op's arguments for `in` on ctx (float tensors in c.dtype, h0 f32).
inline SelectiveScanArgs upload_args(Context& ctx, const ScanCase& c, const ref::ScanInput& in) {
  SelectiveScanArgs a;
  const std::vector<std::int64_t> bdl{c.batch, c.D, c.L};
  a.u = upload_as(ctx, in.u, c.dtype, bdl);
  a.delta = upload_as(ctx, in.delta, c.dtype, bdl);
  a.A = upload_as(ctx, in.A, c.dtype, {c.D, c.N});
  auto bc = [&](const std::vector<float>& v, bool var) {
    if (!var) return upload_as(ctx, v, c.dtype, {c.D, c.N});
    if (c.G == 1) return upload_as(ctx, v, c.dtype, {c.batch, c.N, c.L});
    return upload_as(ctx, v, c.dtype, {c.batch, c.G, c.N, c.L});
  };
  a.Bm = bc(in.B, c.B_var);
  a.Cm = bc(in.C, c.C_var);
  if (c.has_D) a.Dskip = upload_as(ctx, in.Dskip, c.dtype, {c.D});
  if (c.has_z) a.z = upload_as(ctx, in.z, c.dtype, bdl);
  if (c.has_bias) a.delta_bias = upload_as(ctx, in.bias, c.dtype, {c.D});
  const std::int64_t states = c.cu.empty() ? c.batch : static_cast<std::int64_t>(c.cu.size()) - 1;
  if (c.has_h0) a.h0 = ctx.upload(in.h0, DType::f32, {states, c.D, c.N});
  if (!c.cu.empty())
    a.cu_seqlens = ctx.upload(c.cu, DType::i32, {static_cast<std::int64_t>(c.cu.size())});
  a.delta_softplus = c.softplus;
  a.return_last_state = c.last;
  return a;
}

struct ScanRun {
  std::vector<float> out, last;
};

inline ScanRun run_scan(Context& ctx, const SelectiveScanArgs& a) {
  auto r = selective_scan(ctx, a);
  ScanRun o;
  o.out = download_f32(r.out);
  if (r.last_state.defined()) o.last = r.last_state.download<float>();
  return o;
}

}  // namespace sparq::test::mamba_t
