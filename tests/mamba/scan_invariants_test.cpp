// The scan's exact invariants, on the device and on the fallback:
//   scan(L1 ++ L2) == scan(L2, h0 = last_state(scan(L1)))  (strided views of one buffer),
//   a loop of selective_state_update steps == one scan,
//   a varlen packed scan == one scan per sequence;
// and bad arguments -> sparq::Error naming the argument.
#include <fmt/format.h>

#include "mamba/mamba_test_util.h"

namespace sparq::test::mamba_t {
namespace {

// A [.., L] view of the time range [t0, t0 + len) of a tensor whose last dim is time.
Tensor time_slice(const Tensor& t, std::int64_t t0, std::int64_t len) {
  auto shape = t.shape();
  shape.back() = len;
  return t.view(shape, t.strides(), t.offset() + t0);
}

SelectiveScanArgs slice_args(const SelectiveScanArgs& a, std::int64_t t0, std::int64_t len) {
  SelectiveScanArgs s = a;
  s.u = time_slice(a.u, t0, len);
  s.delta = time_slice(a.delta, t0, len);
  if (a.z.defined()) s.z = time_slice(a.z, t0, len);
  if (a.Bm.rank() > 2) s.Bm = time_slice(a.Bm, t0, len);
  if (a.Cm.rank() > 2) s.Cm = time_slice(a.Cm, t0, len);
  return s;
}

TEST(MambaScanInvariants, SplitContinuationIsBitExact) {
  const ScanCase c{.batch = 2,
                   .D = 6,
                   .L = 45,
                   .N = 16,
                   .G = 2,
                   .C_var = true,
                   .has_D = true,
                   .has_z = true,
                   .has_bias = true,
                   .softplus = true,
                   .has_h0 = true,
                   .dtype = DType::bf16};
  const auto in = make_input(c, 11);
  for (auto ctx : {device_context(), fallback_context()}) {
    SCOPED_TRACE(ctx.backend() == Backend::fallback ? "fallback" : "device");
    const auto a = upload_args(ctx, c, in);
    const auto whole = selective_scan(ctx, a);
    const auto full = download_f32(whole.out);
    for (std::int64_t l1 : {1, 16, 17, 44}) {
      auto first = slice_args(a, 0, l1);
      const auto r1 = selective_scan(ctx, first);
      auto second = slice_args(a, l1, c.L - l1);
      second.h0 = r1.last_state;
      const auto r2 = selective_scan(ctx, second);
      const auto o1 = download_f32(r1.out), o2 = download_f32(r2.out);
      std::vector<float> joined;
      for (std::int64_t r = 0; r < c.batch * c.D; ++r) {
        joined.insert(joined.end(), o1.begin() + r * l1, o1.begin() + (r + 1) * l1);
        joined.insert(joined.end(), o2.begin() + r * (c.L - l1), o2.begin() + (r + 1) * (c.L - l1));
      }
      EXPECT_EQ(compare_bits(joined, full), "") << "L1 = " << l1;
      EXPECT_EQ(compare_bits(r2.last_state.download<float>(), whole.last_state.download<float>()),
                "")
          << "L1 = " << l1;
    }
  }
}

TEST(MambaScanInvariants, DecodeLoopEqualsOneScan) {
  for (DType dt : {DType::f32, DType::f16}) {
    const ScanCase c{.batch = 3,
                     .D = 5,
                     .L = 9,
                     .N = 16,
                     .G = 1,
                     .has_D = true,
                     .has_z = true,
                     .has_bias = true,
                     .softplus = true,
                     .has_h0 = true,
                     .dtype = dt};
    const auto in = make_input(c, 21);
    for (auto ctx : {device_context(), fallback_context()}) {
      SCOPED_TRACE(fmt::format("{} {}", dtype_name(dt),
                               ctx.backend() == Backend::fallback ? "fallback" : "device"));
      const auto whole = run_scan(ctx, upload_args(ctx, c, in));
      StateUpdateArgs s;
      s.state = ctx.upload(in.h0, DType::f32, {c.batch, c.D, c.N});
      s.A = upload_as(ctx, in.A, dt, {c.D, c.N});
      s.Dskip = upload_as(ctx, in.Dskip, dt, {c.D});
      s.dt_bias = upload_as(ctx, in.bias, dt, {c.D});
      s.dt_softplus = true;
      for (std::int64_t t = 0; t < c.L; ++t) {
        std::vector<float> x, d, z, b, cc, want;
        for (std::int64_t r = 0; r < c.batch * c.D; ++r) {
          const auto i = static_cast<std::size_t>(r * c.L + t);
          x.push_back(in.u[i]);
          d.push_back(in.delta[i]);
          z.push_back(in.z[i]);
          want.push_back(whole.out[i]);
        }
        for (std::int64_t r = 0; r < c.batch * c.N; ++r) {
          b.push_back(in.B[static_cast<std::size_t>(r * c.L + t)]);
          cc.push_back(in.C[static_cast<std::size_t>(r * c.L + t)]);
        }
        s.x = upload_as(ctx, x, dt, {c.batch, c.D});
        s.dt = upload_as(ctx, d, dt, {c.batch, c.D});
        s.z = upload_as(ctx, z, dt, {c.batch, c.D});
        s.Bm = upload_as(ctx, b, dt, {c.batch, c.N});
        s.Cm = upload_as(ctx, cc, dt, {c.batch, 1, c.N});  // the grouped form, G = 1
        const Tensor out = selective_state_update(ctx, s);
        ASSERT_EQ(out.shape(), (std::vector<std::int64_t>{c.batch, c.D}));
        EXPECT_EQ(compare_bits(download_f32(out), want), "") << "step " << t;
      }
      EXPECT_EQ(compare_bits(s.state.download<float>(), whole.last), "") << "final state";
    }
  }
}

TEST(MambaScanInvariants, VarlenEqualsOneScanPerSequence) {
  const std::vector<std::int32_t> cu{0, 3, 3, 20, 21, 33};
  const ScanCase packed{.batch = 1,
                        .D = 4,
                        .L = 33,
                        .N = 8,
                        .G = 2,
                        .has_D = true,
                        .has_z = true,
                        .softplus = true,
                        .has_h0 = true,
                        .cu = cu};
  const auto in = make_input(packed, 31);
  for (auto ctx : {device_context(), fallback_context()}) {
    SCOPED_TRACE(ctx.backend() == Backend::fallback ? "fallback" : "device");
    const auto a = upload_args(ctx, packed, in);
    const auto whole = selective_scan(ctx, a);
    const auto out = download_f32(whole.out);
    const auto last = whole.last_state.download<float>();
    for (std::size_t s = 0; s + 1 < cu.size(); ++s) {
      const std::int64_t len = cu[s + 1] - cu[s];
      const auto span = static_cast<std::size_t>(packed.D * packed.N);
      const std::vector<float> h0(in.h0.begin() + s * span, in.h0.begin() + (s + 1) * span);
      if (len == 0) {  // an empty sequence's final state is its initial state
        EXPECT_EQ(compare_bits({last.begin() + s * span, last.begin() + (s + 1) * span}, h0), "");
        continue;
      }
      auto one = slice_args(a, cu[s], len);
      one.cu_seqlens = Tensor();
      one.h0 = ctx.upload(h0, DType::f32, {1, packed.D, packed.N});
      const auto r = selective_scan(ctx, one);
      const auto o = download_f32(r.out);
      for (std::int64_t d = 0; d < packed.D; ++d)
        for (std::int64_t t = 0; t < len; ++t)
          EXPECT_TRUE(same_bits(o[static_cast<std::size_t>(d * len + t)],
                                out[static_cast<std::size_t>(d * packed.L + cu[s] + t)]))
              << "sequence " << s << " d " << d << " t " << t;
      EXPECT_EQ(compare_bits(r.last_state.download<float>(),
                             {last.begin() + s * span, last.begin() + (s + 1) * span}),
                "")
          << "sequence " << s;
    }
  }
}

// Expects sparq::Error whose message names `what`.
template <class F>
void expect_error(F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no sparq::Error (expected one naming " << what << ")";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(MambaScanInvariants, BadArgumentsThrowNamingTheArgument) {
  auto ctx = fallback_context();
  const ScanCase c{.batch = 2, .D = 4, .L = 5, .N = 8, .G = 2, .has_h0 = true};
  const auto in = make_input(c, 41);
  auto good = [&] { return upload_args(ctx, c, in); };
  EXPECT_NO_THROW(selective_scan(ctx, good()));
  auto a = good();
  a.delta = ctx.empty(DType::f32, {2, 4, 6});
  expect_error([&] { selective_scan(ctx, a); }, "delta");
  a = good();
  a.A = ctx.empty(DType::f32, {4, 300});
  expect_error([&] { selective_scan(ctx, a); }, "N = 300");
  a = good();
  a.Bm = ctx.empty(DType::f32, {2, 3, 8, 5});
  expect_error([&] { selective_scan(ctx, a); }, "Bm has G = 3");
  a = good();
  a.Cm = ctx.empty(DType::f32, {2, 8, 5});
  expect_error([&] { selective_scan(ctx, a); }, "must agree");
  a = good();
  a.z = ctx.empty(DType::i32, {2, 4, 5});
  expect_error([&] { selective_scan(ctx, a); }, "z has dtype i32");
  a = good();
  a.h0 = ctx.empty(DType::bf16, {2, 4, 8});
  expect_error([&] { selective_scan(ctx, a); }, "h0");
  a = good();
  a.Dskip = ctx.empty(DType::f32, {5});
  expect_error([&] { selective_scan(ctx, a); }, "Dskip");
  a = good();
  a.u = a.u.view({2, 4, 3}, {20, 5, 2});
  expect_error([&] { selective_scan(ctx, a); }, "u must have a contiguous last dimension");
  a = good();
  a.cu_seqlens = ctx.upload(std::vector<std::int32_t>{0, 5}, DType::i32, {2});
  expect_error([&] { selective_scan(ctx, a); }, "batch 1");
  const ScanCase v{.batch = 1, .D = 4, .L = 5, .N = 8};
  const auto vin = make_input(v, 42);
  for (auto cu : {std::vector<std::int32_t>{1, 5}, {0, 3, 2, 5}, {0, 4}}) {
    auto b = upload_args(ctx, v, vin);
    b.cu_seqlens = ctx.upload(cu, DType::i32, {static_cast<std::int64_t>(cu.size())});
    expect_error([&] { selective_scan(ctx, b); }, "cu_seqlens");
  }
  auto other = device_context();
  a = good();
  a.A = other.upload(in.A, DType::f32, {4, 8});
  expect_error([&] { selective_scan(ctx, a); }, "A");
  StateUpdateArgs s;
  s.state = ctx.empty(DType::f32, {2, 4, 8});
  s.x = ctx.empty(DType::f32, {2, 4});
  s.dt = ctx.empty(DType::f32, {2, 4});
  s.A = ctx.empty(DType::f32, {4, 8});
  s.Bm = ctx.empty(DType::f32, {2, 8});
  s.Cm = ctx.empty(DType::f32, {2, 8});
  EXPECT_NO_THROW(selective_state_update(ctx, s));
  s.Cm = ctx.empty(DType::f32, {3, 8});
  expect_error([&] { selective_state_update(ctx, s); }, "Cm");
  s.Cm = ctx.empty(DType::f32, {2, 8});
  s.state = ctx.empty(DType::f32, {2, 5, 8});
  expect_error([&] { selective_state_update(ctx, s); }, "state");
  s.state = ctx.empty(DType::f16, {2, 4, 8});
  expect_error([&] { selective_state_update(ctx, s); }, "state has dtype f16");
}

}  // namespace
}  // namespace sparq::test::mamba_t
