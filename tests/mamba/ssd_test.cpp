// Mamba-2 SSD (ssd_scan, ssd_state_update): device == fallback bit for bit over shapes (real-model
// head/state sizes scaled down in L, grouped B/C, D per head or per head dim, z, softplus,
// varlen, fp16/bf16); ssd == selective_scan of the equivalent Mamba-1 problem bit for bit (the
// definition), fallback vs float64 within spec §3's bound; split continuation and decode loops
// exact; bad arguments raise sparq::Error.
#include <fmt/format.h>

#include "mamba/mamba_test_util.h"

namespace sparq::test::mamba_t {
namespace {

struct SsdCase {
  std::int64_t batch = 1, L = 7, H = 2, P = 4, N = 16, G = 1;
  bool has_z = false, has_bias = false, softplus = false, has_h0 = false;
  int D_mode = 0;  // 0 none, 1 [H], 2 [H, P]
  DType dtype = DType::f32;
  std::vector<std::int32_t> cu;
  std::string label() const {
    return fmt::format("Bt{} L{} H{} P{} N{} G{} {}{}{}{}{} D{}{}", batch, L, H, P, N, G,
                       dtype_name(dtype), has_z ? " z" : "", has_bias ? " bias" : "",
                       softplus ? " softplus" : "", has_h0 ? " h0" : "", D_mode,
                       cu.empty() ? "" : fmt::format(" varlen{}", cu.size() - 1));
  }
  std::int64_t states() const {
    return cu.empty() ? batch : static_cast<std::int64_t>(cu.size()) - 1;
  }
};

struct SsdHost {
  std::vector<float> x, dt, A, B, C, Dskip, z, bias, h0;
};

SsdHost make_ssd(const SsdCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.001f, 0.25f);
  auto normal = [&](std::int64_t n, float s) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = std::fmax(-4.0f, std::fmin(4.0f, nd(rng) * s));
    return round_to(v, c.dtype);
  };
  SsdHost h;
  const std::int64_t X = c.batch * c.L * c.H * c.P, T = c.batch * c.L * c.H;
  const std::int64_t BC = c.batch * c.L * c.G * c.N;
  h.x = normal(X, 1.0f);
  if (c.softplus) {
    h.dt = normal(T, 1.0f);
  } else {
    h.dt.resize(static_cast<std::size_t>(T));
    for (auto& v : h.dt) v = ud(rng);
    h.dt = round_to(h.dt, c.dtype);
  }
  h.A.resize(static_cast<std::size_t>(c.H));
  for (auto& v : h.A) v = -std::exp(std::fmax(-3.0f, std::fmin(1.3f, nd(rng))));
  h.A = round_to(h.A, c.dtype);
  h.B = normal(BC, 1.0f);
  h.C = normal(BC, 1.0f);
  if (c.D_mode) h.Dskip = normal(c.D_mode == 1 ? c.H : c.H * c.P, 1.0f);
  if (c.has_z) h.z = normal(X, 1.0f);
  if (c.has_bias) h.bias = normal(c.H, 0.5f);
  if (c.has_h0) {
    h.h0.resize(static_cast<std::size_t>(c.states() * c.H * c.P * c.N));
    for (auto& v : h.h0) v = nd(rng);
  }
  return h;
}

SsdArgs upload_ssd(Context& ctx, const SsdCase& c, const SsdHost& h) {
  SsdArgs a;
  a.x = upload_as(ctx, h.x, c.dtype, {c.batch, c.L, c.H, c.P});
  a.dt = upload_as(ctx, h.dt, c.dtype, {c.batch, c.L, c.H});
  a.A = upload_as(ctx, h.A, c.dtype, {c.H});
  a.Bm = upload_as(ctx, h.B, c.dtype, {c.batch, c.L, c.G, c.N});
  a.Cm = upload_as(ctx, h.C, c.dtype, {c.batch, c.L, c.G, c.N});
  if (c.D_mode == 1) a.Dskip = upload_as(ctx, h.Dskip, c.dtype, {c.H});
  if (c.D_mode == 2) a.Dskip = upload_as(ctx, h.Dskip, c.dtype, {c.H, c.P});
  if (c.has_z) a.z = upload_as(ctx, h.z, c.dtype, {c.batch, c.L, c.H, c.P});
  if (c.has_bias) a.dt_bias = upload_as(ctx, h.bias, c.dtype, {c.H});
  if (c.has_h0) a.initial_states = ctx.upload(h.h0, DType::f32, {c.states(), c.H, c.P, c.N});
  if (!c.cu.empty())
    a.cu_seqlens = ctx.upload(c.cu, DType::i32, {static_cast<std::int64_t>(c.cu.size())});
  a.dt_softplus = c.softplus;
  a.return_final_states = true;
  return a;
}

ScanRun run_ssd(Context& ctx, const SsdArgs& a) {
  auto r = ssd_scan(ctx, a);
  ScanRun o;
  o.out = download_f32(r.out);
  if (r.final_states.defined()) o.last = r.final_states.download<float>();
  return o;
}

// The same problem as a Mamba-1 scan: channel d = h*P + p, A[d, n] = A[h], delta[b, d, t] =
// dt[b, t, h], B/C [Bt, G, N, L]. Output index map: out[b, t, h, p] <-> out'[b, d, t].
ref::ScanInput as_mamba1(const SsdCase& c, const SsdHost& h) {
  ref::ScanInput in;
  const std::int64_t D = c.H * c.P;
  in.batch = c.batch;
  in.D = D;
  in.L = c.L;
  in.N = c.N;
  in.G = c.G;
  in.softplus = c.softplus;
  in.cu = c.cu;
  const auto P3 = static_cast<std::size_t>(c.batch * D * c.L);
  in.u.resize(P3);
  in.delta.resize(P3);
  if (c.has_z) in.z.resize(P3);
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t t = 0; t < c.L; ++t)
      for (std::int64_t hh = 0; hh < c.H; ++hh)
        for (std::int64_t p = 0; p < c.P; ++p) {
          const auto src = static_cast<std::size_t>(((b * c.L + t) * c.H + hh) * c.P + p);
          const auto dst = static_cast<std::size_t>((b * D + hh * c.P + p) * c.L + t);
          in.u[dst] = h.x[src];
          in.delta[dst] = h.dt[static_cast<std::size_t>((b * c.L + t) * c.H + hh)];
          if (c.has_z) in.z[dst] = h.z[src];
        }
  in.A.resize(static_cast<std::size_t>(D * c.N));
  for (std::int64_t d = 0; d < D; ++d)
    for (std::int64_t n = 0; n < c.N; ++n)
      in.A[static_cast<std::size_t>(d * c.N + n)] = h.A[static_cast<std::size_t>(d / c.P)];
  auto bc = [&](const std::vector<float>& v) {
    std::vector<float> o(v.size());
    for (std::int64_t b = 0; b < c.batch; ++b)
      for (std::int64_t t = 0; t < c.L; ++t)
        for (std::int64_t g = 0; g < c.G; ++g)
          for (std::int64_t n = 0; n < c.N; ++n)
            o[static_cast<std::size_t>(((b * c.G + g) * c.N + n) * c.L + t)] =
                v[static_cast<std::size_t>(((b * c.L + t) * c.G + g) * c.N + n)];
    return o;
  };
  in.B = bc(h.B);
  in.C = bc(h.C);
  if (c.D_mode) {
    in.Dskip.resize(static_cast<std::size_t>(D));
    for (std::int64_t d = 0; d < D; ++d)
      in.Dskip[static_cast<std::size_t>(d)] =
          h.Dskip[static_cast<std::size_t>(c.D_mode == 1 ? d / c.P : d)];
  }
  if (c.has_bias) {
    in.bias.resize(static_cast<std::size_t>(D));
    for (std::int64_t d = 0; d < D; ++d)
      in.bias[static_cast<std::size_t>(d)] = h.bias[static_cast<std::size_t>(d / c.P)];
  }
  in.h0 = h.h0;  // [S, H, P, N] == [S, D, N]
  return in;
}

// Mamba-1 output [Bt, D, L] in SSD order [Bt, L, H, P].
template <class T>
std::vector<T> to_ssd_order(const SsdCase& c, const std::vector<T>& v) {
  std::vector<T> o(v.size());
  const std::int64_t D = c.H * c.P;
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t d = 0; d < D; ++d)
      for (std::int64_t t = 0; t < c.L; ++t)
        o[static_cast<std::size_t>((b * c.L + t) * D + d)] =
            v[static_cast<std::size_t>((b * D + d) * c.L + t)];
  return o;
}

std::vector<SsdCase> cases() {
  std::vector<SsdCase> v;
  auto add = [&](SsdCase c) { v.push_back(c); };
  add({});
  add({.batch = 2,
       .L = 37,
       .H = 4,
       .P = 8,
       .N = 16,
       .G = 2,
       .has_z = true,
       .has_bias = true,
       .softplus = true,
       .has_h0 = true,
       .D_mode = 1});
  // Mamba-2 2.7B head (P 64, N 128) and a Nemotron-H-like group layout, short L.
  add({.batch = 1,
       .L = 19,
       .H = 2,
       .P = 64,
       .N = 128,
       .G = 1,
       .has_z = true,
       .softplus = true,
       .D_mode = 1});
  add({.batch = 1,
       .L = 11,
       .H = 8,
       .P = 16,
       .N = 64,
       .G = 8,
       .has_bias = true,
       .softplus = true,
       .has_h0 = true,
       .D_mode = 2});
  add({.batch = 2, .L = 9, .H = 3, .P = 5, .N = 256, .G = 1, .has_z = true, .D_mode = 2});
  add({.batch = 1,
       .L = 1,
       .H = 3,
       .P = 7,
       .N = 5,
       .G = 3,
       .has_z = true,
       .has_h0 = true,
       .D_mode = 1});
  add({.batch = 2,
       .L = 20,
       .H = 4,
       .P = 8,
       .N = 32,
       .G = 2,
       .has_z = true,
       .has_bias = true,
       .softplus = true,
       .D_mode = 1,
       .dtype = DType::bf16});
  add({.batch = 1,
       .L = 17,
       .H = 2,
       .P = 6,
       .N = 16,
       .G = 1,
       .has_z = true,
       .softplus = true,
       .has_h0 = true,
       .D_mode = 1,
       .dtype = DType::f16});
  add({.batch = 1,
       .L = 30,
       .H = 2,
       .P = 3,
       .N = 8,
       .G = 1,
       .has_z = true,
       .softplus = true,
       .has_h0 = true,
       .D_mode = 1,
       .cu = {0, 4, 4, 21, 30}});
  add({.batch = 1,
       .L = 25,
       .H = 2,
       .P = 3,
       .N = 8,
       .G = 2,
       .softplus = true,
       .cu = {0, 0, 13, 25, 25}});
  return v;
}

TEST(MambaSsd, DeviceMatchesFallbackMamba1AndFloat64) {
  auto dev = device_context();
  auto cpu = fallback_context();
  std::uint64_t seed = 5100;
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.label() + " seed " + std::to_string(seed));
    const auto h = make_ssd(c, seed++);
    const auto d = run_ssd(dev, upload_ssd(dev, c, h));
    const auto f = run_ssd(cpu, upload_ssd(cpu, c, h));
    EXPECT_EQ(compare_bits(d.out, f.out), "") << "out";
    EXPECT_EQ(compare_bits(d.last, f.last), "") << "final_states";
    // The definition: the Mamba-1 scan of the equivalent problem, bit for bit.
    ScanCase sc;
    sc.batch = c.batch;
    sc.D = c.H * c.P;
    sc.L = c.L;
    sc.N = c.N;
    sc.G = c.G;
    sc.has_D = c.D_mode != 0;
    sc.has_z = c.has_z;
    sc.has_bias = c.has_bias;
    sc.softplus = c.softplus;
    sc.has_h0 = c.has_h0;
    sc.dtype = c.dtype;
    sc.cu = c.cu;
    const auto in = as_mamba1(c, h);
    const auto m1 = run_scan(cpu, upload_args(cpu, sc, in));
    EXPECT_EQ(compare_bits(f.out, to_ssd_order(c, m1.out)), "") << "ssd vs Mamba-1 scan";
    EXPECT_EQ(compare_bits(f.last, m1.last), "") << "final_states vs Mamba-1";
    // Float64 (spec §3's bound, as tests/mamba/scan_test.cpp, plus the output's own rounding).
    const auto want = ref::selective_scan_ref(in);
    const auto rout = to_ssd_order(c, want.out), rabs = to_ssd_order(c, want.abs_terms);
    const double out_round = c.dtype == DType::f16    ? std::ldexp(1.0, -11)
                             : c.dtype == DType::bf16 ? 0.00390625
                                                      : 0.0;
    std::size_t bad = 0;
    for (std::size_t i = 0; i < rout.size(); ++i) {
      const double r = rout[i];
      const double tol =
          1e-5 * std::max(1.0, std::fabs(r)) + 2e-6 * rabs[i] + out_round * std::fabs(r);
      if (!(std::fabs(f.out[i] - r) <= tol) && bad++ < 3)
        ADD_FAILURE() << "out[" << i << "] = " << f.out[i] << ", float64 " << r;
    }
    for (std::size_t i = 0; i < want.last.size(); ++i) {
      const double r = want.last[i];
      if (!(std::fabs(f.last[i] - r) <= 1e-5 * std::fabs(r) + 2e-6 * want.abs_last[i]) && bad++ < 3)
        ADD_FAILURE() << "final[" << i << "] = " << f.last[i] << ", float64 " << r;
    }
    EXPECT_EQ(bad, 0u);
  }
}

// ssd(L1 ++ L2) == ssd(L2, initial = final(ssd(L1))), on time-slice views of the same buffers, and
// a loop of ssd_state_update equals one call.
TEST(MambaSsd, SplitContinuationAndDecodeLoopAreBitExact) {
  for (bool on_device : {true, false}) {
    Context ctx = on_device ? device_context() : fallback_context();
    SsdCase c{.batch = 2,
              .L = 23,
              .H = 4,
              .P = 8,
              .N = 32,
              .G = 2,
              .has_z = true,
              .has_bias = true,
              .softplus = true,
              .has_h0 = true,
              .D_mode = 1};
    const auto h = make_ssd(c, 77);
    const SsdArgs full = upload_ssd(ctx, c, h);
    const auto whole = run_ssd(ctx, full);
    auto slice = [&](const Tensor& t, std::int64_t t0, std::int64_t len) {
      if (!t.defined()) return t;
      auto shape = t.shape();
      shape[1] = len;
      return t.view(shape, t.strides(), t.offset() + t0 * t.strides()[1]);
    };
    for (std::int64_t L1 : {1, 9, 16, 22}) {
      SsdArgs a = full, b = full;
      for (auto [dst, src] : {std::pair{&a, &full}}) {
        dst->x = slice(src->x, 0, L1);
        dst->dt = slice(src->dt, 0, L1);
        dst->z = slice(src->z, 0, L1);
        dst->Bm = slice(src->Bm, 0, L1);
        dst->Cm = slice(src->Cm, 0, L1);
      }
      const auto r1 = ssd_scan(ctx, a);
      b.x = slice(full.x, L1, c.L - L1);
      b.dt = slice(full.dt, L1, c.L - L1);
      b.z = slice(full.z, L1, c.L - L1);
      b.Bm = slice(full.Bm, L1, c.L - L1);
      b.Cm = slice(full.Cm, L1, c.L - L1);
      b.initial_states = r1.final_states;
      const auto r2 = run_ssd(ctx, b);
      // out is [Bt, L, H, P]: re-interleave the two halves per batch row.
      std::vector<float> o1 = download_f32(r1.out), inter;
      const std::int64_t row = c.H * c.P;
      for (std::int64_t bb = 0; bb < c.batch; ++bb) {
        inter.insert(inter.end(), o1.begin() + bb * L1 * row, o1.begin() + (bb + 1) * L1 * row);
        inter.insert(inter.end(), r2.out.begin() + bb * (c.L - L1) * row,
                     r2.out.begin() + (bb + 1) * (c.L - L1) * row);
      }
      EXPECT_EQ(compare_bits(inter, whole.out), "") << "split at " << L1 << " dev " << on_device;
      EXPECT_EQ(compare_bits(r2.last, whole.last), "") << "split at " << L1;
    }
    // Decode loop: state starts at initial_states, one token at a time.
    Tensor state = ctx.upload(h.h0, DType::f32, {c.batch, c.H, c.P, c.N});
    std::vector<std::vector<float>> outs;
    for (std::int64_t t = 0; t < c.L; ++t) {
      SsdStateUpdateArgs u;
      auto tok = [&](const Tensor& x) {  // [Bt, L, A, B] -> [Bt, A, B] at time t
        return x.view({x.dim(0), x.dim(2), x.dim(3)}, {x.strides()[0], x.strides()[2], 1},
                      x.offset() + t * x.strides()[1]);
      };
      u.state = state;
      u.x = tok(full.x);
      u.z = tok(full.z);
      u.dt = full.dt.view({c.batch, c.H}, {full.dt.strides()[0], 1},
                          full.dt.offset() + t * full.dt.strides()[1]);
      u.A = full.A;
      u.Bm = tok(full.Bm);
      u.Cm = tok(full.Cm);
      u.Dskip = full.Dskip;
      u.dt_bias = full.dt_bias;
      u.dt_softplus = true;
      outs.push_back(download_f32(ssd_state_update(ctx, u)));
    }
    std::vector<float> loop;
    const std::int64_t row = c.H * c.P;
    for (std::int64_t bb = 0; bb < c.batch; ++bb)
      for (std::int64_t t = 0; t < c.L; ++t)
        loop.insert(loop.end(), outs[static_cast<std::size_t>(t)].begin() + bb * row,
                    outs[static_cast<std::size_t>(t)].begin() + (bb + 1) * row);
    EXPECT_EQ(compare_bits(loop, whole.out), "") << "decode loop, dev " << on_device;
    EXPECT_EQ(compare_bits(state.download<float>(), whole.last), "") << "decode state";
  }
}

TEST(MambaSsd, BadArgumentsThrow) {
  auto ctx = fallback_context();
  SsdCase c{.batch = 1, .L = 5, .H = 4, .P = 3, .N = 8, .G = 2, .has_z = true, .D_mode = 1};
  const auto h = make_ssd(c, 3);
  const SsdArgs ok = upload_ssd(ctx, c, h);
  EXPECT_NO_THROW(ssd_scan(ctx, ok));
  auto bad = [&](auto&& edit, const char* what) {
    SsdArgs a = ok;
    edit(a);
    EXPECT_THROW(ssd_scan(ctx, a), Error) << what;
  };
  bad([&](SsdArgs& a) { a.x = ctx.upload(h.x, DType::f32, {1, 5, 12}); }, "x rank");
  bad([&](SsdArgs& a) { a.dt = ctx.upload(h.dt, DType::f32, {1, 4, 5}); }, "dt shape");
  bad([&](SsdArgs& a) { a.A = ctx.upload(std::vector<float>(3, -1.0f), DType::f32, {3}); }, "A");
  bad([&](SsdArgs& a) { a.Bm = ctx.upload(h.B, DType::f32, {1, 5, 16}); }, "B rank");
  bad(
      [&](SsdArgs& a) {
        a.Bm = ctx.upload(std::vector<float>(5 * 3 * 8), DType::f32, {1, 5, 3, 8});
        a.Cm = a.Bm;
      },
      "G does not divide H");
  bad(
      [&](SsdArgs& a) {
        a.Bm = ctx.upload(std::vector<float>(5 * 2 * 300), DType::f32, {1, 5, 2, 300});
        a.Cm = a.Bm;
      },
      "N > 256");
  bad([&](SsdArgs& a) { a.Cm = ctx.upload(h.B, DType::f32, {1, 5, 1, 16}); }, "C != B shape");
  bad([&](SsdArgs& a) { a.Dskip = ctx.upload(std::vector<float>(5), DType::f32, {5}); }, "D");
  bad([&](SsdArgs& a) { a.z = ctx.upload(h.x, DType::f32, {1, 5, 3, 4}); }, "z");
  bad(
      [&](SsdArgs& a) {
        a.initial_states = ctx.upload(std::vector<float>(4 * 3 * 7), DType::f32, {1, 4, 3, 7});
      },
      "initial N");
  bad(
      [&](SsdArgs& a) {
        a.cu_seqlens = ctx.upload(std::vector<std::int32_t>{0, 3, 2, 5}, DType::i32, {4});
      },
      "cu_seqlens decreasing");
  SsdStateUpdateArgs u;
  u.state = ctx.upload(std::vector<float>(4 * 3 * 8), DType::f32, {1, 4, 3, 8});
  u.x = ctx.upload(std::vector<float>(12), DType::f32, {1, 4, 3});
  u.dt = ctx.upload(std::vector<float>(4), DType::f32, {1, 4});
  u.A = ok.A;
  u.Bm = ctx.upload(std::vector<float>(16), DType::f32, {1, 2, 8});
  u.Cm = u.Bm;
  EXPECT_NO_THROW(ssd_state_update(ctx, u));
  u.Bm = ctx.upload(std::vector<float>(16), DType::f32, {1, 16});
  EXPECT_THROW(ssd_state_update(ctx, u), Error);
}

}  // namespace
}  // namespace sparq::test::mamba_t
