// causal_conv1d: device == fallback bit for bit (widths, bias, silu, initial/final states,
// fp16/bf16, varlen), fallback vs float64, split continuation, a decode loop of
// causal_conv1d_update == one forward, varlen == one call per sequence, bad inputs.
#include <fmt/format.h>

#include <cmath>

#include "mamba/mamba_test_util.h"

namespace sparq::test::mamba_t {
namespace {

struct ConvCase {
  std::int64_t batch = 1, D = 4, L = 9, W = 4;
  bool bias = false, silu = false, init = false, final_states = true;
  DType dtype = DType::f32;
  std::vector<std::int32_t> cu;
  std::string label() const {
    return fmt::format("Bt{} D{} L{} W{} {}{}{}{}{}", batch, D, L, W, dtype_name(dtype),
                       bias ? " bias" : "", silu ? " silu" : "", init ? " init" : "",
                       cu.empty() ? "" : fmt::format(" varlen{}", cu.size() - 1));
  }
  std::int64_t states() const {
    return cu.empty() ? batch : static_cast<std::int64_t>(cu.size()) - 1;
  }
};

struct ConvData {
  std::vector<float> x, w, bias, init;
};

ConvData make_conv(const ConvCase& c, std::uint64_t seed) {
  ConvData d;
  d.x = round_to(random_normal(static_cast<std::size_t>(c.batch * c.D * c.L), seed), c.dtype);
  d.w = round_to(random_normal(static_cast<std::size_t>(c.D * c.W), seed + 1, 0.5f), c.dtype);
  if (c.bias) d.bias = round_to(random_normal(static_cast<std::size_t>(c.D), seed + 2), c.dtype);
  if (c.init)
    d.init = round_to(
        random_normal(static_cast<std::size_t>(c.states() * c.D * (c.W - 1)), seed + 3), c.dtype);
  return d;
}

CausalConv1dArgs conv_args(Context& ctx, const ConvCase& c, const ConvData& d) {
  CausalConv1dArgs a;
  a.x = upload_as(ctx, d.x, c.dtype, {c.batch, c.D, c.L});
  a.weight = upload_as(ctx, d.w, c.dtype, {c.D, c.W});
  if (c.bias) a.bias = upload_as(ctx, d.bias, c.dtype, {c.D});
  if (c.init) a.initial_states = upload_as(ctx, d.init, c.dtype, {c.states(), c.D, c.W - 1});
  if (!c.cu.empty())
    a.cu_seqlens = ctx.upload(c.cu, DType::i32, {static_cast<std::int64_t>(c.cu.size())});
  a.silu = c.silu;
  a.return_final_states = c.final_states;
  return a;
}

struct ConvRun {
  std::vector<float> out, fin;
};
ConvRun run_conv(Context& ctx, const CausalConv1dArgs& a) {
  const auto r = causal_conv1d(ctx, a);
  ConvRun o{download_f32(r.out), {}};
  if (r.final_states.defined()) o.fin = download_f32(r.final_states);
  return o;
}

TEST(MambaConv1d, DeviceMatchesFallbackAndFloat64) {
  std::vector<ConvCase> cs{
      {},
      {.batch = 2, .D = 5, .L = 37, .W = 4, .bias = true, .silu = true, .init = true},
      {.batch = 1, .D = 3, .L = 1, .W = 4, .bias = true, .init = true},
      {.batch = 1, .D = 3, .L = 2, .W = 4},  // shorter than the window: final states pad with 0
      {.batch = 2, .D = 2, .L = 11, .W = 1, .bias = true, .silu = true},
      {.batch = 1, .D = 6, .L = 20, .W = 2, .silu = true},
      {.batch = 2,
       .D = 4,
       .L = 15,
       .W = 3,
       .bias = true,
       .silu = true,
       .init = true,
       .dtype = DType::f16},
      {.batch = 2,
       .D = 4,
       .L = 15,
       .W = 4,
       .bias = true,
       .silu = true,
       .init = true,
       .dtype = DType::bf16},
      {.batch = 1,
       .D = 3,
       .L = 20,
       .W = 4,
       .bias = true,
       .silu = true,
       .init = true,
       .cu = {0, 2, 2, 9, 20}},
      {.batch = 1, .D = 3, .L = 12, .W = 3, .cu = {0, 1, 12}},
  };
  auto dev = device_context();
  auto cpu = fallback_context();
  std::uint64_t seed = 500;
  for (const auto& c : cs) {
    SCOPED_TRACE(c.label());
    const auto data = make_conv(c, seed);
    seed += 10;
    const auto d = run_conv(dev, conv_args(dev, c, data));
    const auto f = run_conv(cpu, conv_args(cpu, c, data));
    EXPECT_EQ(compare_bits(d.out, f.out), "");
    EXPECT_EQ(compare_bits(d.fin, f.fin), "");
    const auto want = ref::causal_conv1d_ref(data.x, data.w, data.bias, data.init, c.cu, c.batch,
                                             c.D, c.L, c.W, c.silu);
    const double out_round = c.dtype == DType::f16    ? std::ldexp(1.0, -11)
                             : c.dtype == DType::bf16 ? std::ldexp(1.0, -8)
                                                      : 0.0;
    for (std::size_t i = 0; i < want.out.size(); ++i) {
      // W fma roundings of partial sums <= abs_terms, silu <= 3 ulp, then the storage rounding.
      const double tol = static_cast<double>(c.W + 1) * 6e-8 * want.abs_terms[i] +
                         (4e-7 + out_round) * std::fabs(want.out[i]);
      ASSERT_LE(std::fabs(f.out[i] - want.out[i]), tol) << "out[" << i << "]";
    }
  }
}

TEST(MambaConv1d, SplitDecodeAndVarlenAreBitExact) {
  const ConvCase c{.batch = 2,
                   .D = 3,
                   .L = 13,
                   .W = 4,
                   .bias = true,
                   .silu = true,
                   .init = true,
                   .dtype = DType::bf16};
  const auto data = make_conv(c, 77);
  for (auto ctx : {device_context(), fallback_context()}) {
    SCOPED_TRACE(ctx.backend() == Backend::fallback ? "fallback" : "device");
    const auto a = conv_args(ctx, c, data);
    const auto whole = causal_conv1d(ctx, a);
    const auto full = download_f32(whole.out);
    // Split continuation: conv(L1 ++ L2) == conv(L2, init = final_states(conv(L1))).
    for (std::int64_t l1 : {1, 2, 6}) {
      auto first = a;
      first.x = a.x.view({c.batch, c.D, l1}, a.x.strides(), 0);
      const auto r1 = causal_conv1d(ctx, first);
      auto second = a;
      second.x = a.x.view({c.batch, c.D, c.L - l1}, a.x.strides(), l1);
      second.initial_states = r1.final_states;
      const auto r2 = causal_conv1d(ctx, second);
      const auto o1 = download_f32(r1.out), o2 = download_f32(r2.out);
      std::vector<float> joined;
      for (std::int64_t r = 0; r < c.batch * c.D; ++r) {
        joined.insert(joined.end(), o1.begin() + r * l1, o1.begin() + (r + 1) * l1);
        joined.insert(joined.end(), o2.begin() + r * (c.L - l1), o2.begin() + (r + 1) * (c.L - l1));
      }
      EXPECT_EQ(compare_bits(joined, full), "") << "L1 = " << l1;
      EXPECT_EQ(compare_bits(download_f32(r2.final_states), download_f32(whole.final_states)), "");
    }
    // Decode: conv_state [Bt, D, S = W] (mamba_ssm's layout) whose last W-1 columns are init.
    const std::int64_t S = c.W;
    std::vector<float> st(static_cast<std::size_t>(c.batch * c.D * S), 0.0f);
    for (std::int64_t r = 0; r < c.batch * c.D; ++r)
      for (std::int64_t j = 0; j < c.W - 1; ++j)
        st[static_cast<std::size_t>(r * S + 1 + j)] =
            data.init[static_cast<std::size_t>(r * (c.W - 1) + j)];
    ConvUpdateArgs u;
    u.conv_state = upload_as(ctx, st, c.dtype, {c.batch, c.D, S});
    u.weight = a.weight;
    u.bias = a.bias;
    u.silu = true;
    for (std::int64_t t = 0; t < c.L; ++t) {
      std::vector<float> x, want;
      for (std::int64_t r = 0; r < c.batch * c.D; ++r) {
        x.push_back(data.x[static_cast<std::size_t>(r * c.L + t)]);
        want.push_back(full[static_cast<std::size_t>(r * c.L + t)]);
      }
      u.x = upload_as(ctx, x, c.dtype, {c.batch, c.D});
      EXPECT_EQ(compare_bits(download_f32(causal_conv1d_update(ctx, u)), want), "") << "t " << t;
    }
    const auto fin = download_f32(whole.final_states), state = download_f32(u.conv_state);
    for (std::int64_t r = 0; r < c.batch * c.D; ++r)
      for (std::int64_t j = 0; j < c.W - 1; ++j)
        EXPECT_TRUE(same_bits(state[static_cast<std::size_t>(r * S + 1 + j)],
                              fin[static_cast<std::size_t>(r * (c.W - 1) + j)]));
    // Varlen: packing batch rows of one channel block as sequences gives each row's bits.
    const ConvCase v{.batch = 1,
                     .D = 3,
                     .L = 2 * c.L,
                     .W = 4,
                     .bias = true,
                     .silu = true,
                     .init = true,
                     .dtype = DType::bf16,
                     .cu = {0, static_cast<std::int32_t>(c.L), static_cast<std::int32_t>(2 * c.L)}};
    ConvData packed = data;
    packed.x.clear();
    for (std::int64_t d = 0; d < c.D; ++d)
      for (std::int64_t b = 0; b < c.batch; ++b)
        packed.x.insert(packed.x.end(), data.x.begin() + (b * c.D + d) * c.L,
                        data.x.begin() + (b * c.D + d + 1) * c.L);
    const auto pr = run_conv(ctx, conv_args(ctx, v, packed));
    for (std::int64_t d = 0; d < c.D; ++d)
      for (std::int64_t b = 0; b < c.batch; ++b)
        for (std::int64_t t = 0; t < c.L; ++t)
          EXPECT_TRUE(same_bits(pr.out[static_cast<std::size_t>(d * 2 * c.L + b * c.L + t)],
                                full[static_cast<std::size_t>((b * c.D + d) * c.L + t)]));
    EXPECT_EQ(compare_bits(pr.fin, download_f32(whole.final_states)), "");
  }
}

TEST(MambaConv1d, BadArgumentsThrow) {
  auto ctx = fallback_context();
  const ConvCase c{.batch = 2, .D = 4, .L = 6, .W = 4, .bias = true, .init = true};
  const auto data = make_conv(c, 9);
  auto check = [&](auto mutate, const std::string& what) {
    auto a = conv_args(ctx, c, data);
    mutate(a);
    try {
      causal_conv1d(ctx, a);
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  check([&](CausalConv1dArgs& a) { a.weight = ctx.empty(DType::f32, {5, 4}); }, "weight");
  check([&](CausalConv1dArgs& a) { a.bias = ctx.empty(DType::f32, {3}); }, "bias");
  check(
      [&](CausalConv1dArgs& a) {
        a.initial_states = ctx.empty(DType::f32, {2, 4, 4});
      },
      "initial_states");
  check(
      [&](CausalConv1dArgs& a) {
        a.initial_states = ctx.empty(DType::bf16, {2, 4, 3});
      },
      "initial_states has dtype bf16");
  check([&](CausalConv1dArgs& a) { a.x = ctx.empty(DType::i8, {2, 4, 6}); }, "x has dtype");
  check(
      [&](CausalConv1dArgs& a) {
        a.cu_seqlens = ctx.upload(std::vector<std::int32_t>{0, 6}, DType::i32, {2});
      },
      "batch 1");
  ConvUpdateArgs u;
  u.x = ctx.empty(DType::f32, {2, 4});
  u.weight = ctx.empty(DType::f32, {4, 4});
  u.conv_state = ctx.empty(DType::f32, {2, 4, 2});
  EXPECT_THROW(causal_conv1d_update(ctx, u), Error);
  u.conv_state = ctx.empty(DType::f16, {2, 4, 4});
  EXPECT_THROW(causal_conv1d_update(ctx, u), Error);
  u.conv_state = ctx.empty(DType::f32, {2, 4, 3});
  EXPECT_NO_THROW(causal_conv1d_update(ctx, u));
}

}  // namespace
}  // namespace sparq::test::mamba_t
