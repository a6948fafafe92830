// The sparq part of a Mamba-1 block, prefill then decode, as an inference server runs it:
//   prefill: x -> causal_conv1d (+ bias, SiLU) -> selective_scan (delta softplus, D skip, z gate)
//            keeping the conv window (final_states) and the SSM state (last_state);
//   decode:  per new token, causal_conv1d_update + selective_state_update on those states.
// The projections around them (in_proj, x_proj, dt_proj, out_proj) are the app's GEMMs; here their
// outputs are deterministic pseudo-random data. The example checks sparq's two promises: the
// decoded tokens equal a prefill over all tokens bit for bit, and $SPARQ_DEVICE (default: first
// capable GPU, else PoCL, else the fallback) equals the fallback bit for bit.
//
// Usage: mamba_block_step [prefill_len] [decode_tokens]   (default 64 4)
#include <sparq/sparq.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace sm = sparq::mamba;

namespace {

constexpr std::int64_t Bt = 2, D = 64, N = 16, W = 4;

std::vector<float> data(std::size_t n, std::uint32_t seed, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = lo + (hi - lo) * static_cast<float>(seed >> 8) / 16777216.0f;
  }
  return v;
}

// Time steps [t0, t0 + n) of a host [Bt, C, Ltot] array, as a new [Bt, C, n] array.
std::vector<float> slice(const std::vector<float>& a, std::int64_t C, std::int64_t Ltot,
                         std::int64_t t0, std::int64_t n) {
  std::vector<float> out;
  for (std::int64_t r = 0; r < Bt * C; ++r)
    out.insert(out.end(), a.begin() + r * Ltot + t0, a.begin() + r * Ltot + t0 + n);
  return out;
}

struct Inputs {
  std::int64_t L, T;
  std::vector<float> x, dt, z, Bm, Cm, weight, bias, A, Dskip, dt_bias;
  Inputs(std::int64_t l, std::int64_t t) : L(l), T(t) {
    const auto P = static_cast<std::size_t>(Bt * D * (L + T));
    x = data(P, 1, -2, 2);
    dt = data(P, 2, -3, 0);
    z = data(P, 3, -2, 2);
    Bm = data(static_cast<std::size_t>(Bt * N * (L + T)), 4, -1, 1);
    Cm = data(static_cast<std::size_t>(Bt * N * (L + T)), 5, -1, 1);
    weight = data(static_cast<std::size_t>(D * W), 6, -0.5f, 0.5f);
    bias = data(static_cast<std::size_t>(D), 7, -0.1f, 0.1f);
    A = data(static_cast<std::size_t>(D * N), 8, -4, -0.1f);
    Dskip = data(static_cast<std::size_t>(D), 9, 0.5f, 1.5f);
    dt_bias = data(static_cast<std::size_t>(D), 10, -0.5f, 0.5f);
  }
};

// Prefill over `len` tokens; returns y [Bt, D, len] and leaves the states in conv_state/ssm_state.
std::vector<float> prefill(sparq::Context& ctx, const Inputs& in, std::int64_t len,
                           sparq::Tensor& conv_state, sparq::Tensor& ssm_state) {
  const std::int64_t Lt = in.L + in.T;
  auto seq = [&](const std::vector<float>& a, std::int64_t C) {
    return ctx.upload(slice(a, C, Lt, 0, len), sparq::DType::f32, {Bt, C, len});
  };
  const auto conv =
      sm::causal_conv1d(ctx, {.x = seq(in.x, D),
                              .weight = ctx.upload(in.weight, sparq::DType::f32, {D, W}),
                              .bias = ctx.upload(in.bias, sparq::DType::f32, {D}),
                              .silu = true,
                              .return_final_states = true});
  const auto scan =
      sm::selective_scan(ctx, {.u = conv.out,
                               .delta = seq(in.dt, D),
                               .A = ctx.upload(in.A, sparq::DType::f32, {D, N}),
                               .Bm = seq(in.Bm, N),
                               .Cm = seq(in.Cm, N),
                               .Dskip = ctx.upload(in.Dskip, sparq::DType::f32, {D}),
                               .z = seq(in.z, D),
                               .delta_bias = ctx.upload(in.dt_bias, sparq::DType::f32, {D}),
                               .delta_softplus = true,
                               .return_last_state = true});
  conv_state = conv.final_states;
  ssm_state = scan.last_state;
  return scan.out.download<float>();
}

// Prefill over L tokens, then T decode steps; returns the T decoded outputs [T][Bt, D].
std::vector<float> prefill_then_decode(sparq::Context& ctx, const Inputs& in) {
  sparq::Tensor conv_state, ssm_state;
  prefill(ctx, in, in.L, conv_state, ssm_state);
  const std::int64_t Lt = in.L + in.T;
  const auto weight = ctx.upload(in.weight, sparq::DType::f32, {D, W});
  const auto bias = ctx.upload(in.bias, sparq::DType::f32, {D});
  const auto A = ctx.upload(in.A, sparq::DType::f32, {D, N});
  const auto Dskip = ctx.upload(in.Dskip, sparq::DType::f32, {D});
  const auto dt_bias = ctx.upload(in.dt_bias, sparq::DType::f32, {D});
  std::vector<float> ys;
  for (std::int64_t t = in.L; t < Lt; ++t) {
    auto tok = [&](const std::vector<float>& a, std::int64_t C) {
      return ctx.upload(slice(a, C, Lt, t, 1), sparq::DType::f32, {Bt, C});
    };
    const sparq::Tensor xc = sm::causal_conv1d_update(ctx, {.x = tok(in.x, D),
                                                            .conv_state = conv_state,
                                                            .weight = weight,
                                                            .bias = bias,
                                                            .silu = true});
    const sparq::Tensor y = sm::selective_state_update(ctx, {.state = ssm_state,
                                                             .x = xc,
                                                             .dt = tok(in.dt, D),
                                                             .A = A,
                                                             .Bm = tok(in.Bm, N),
                                                             .Cm = tok(in.Cm, N),
                                                             .Dskip = Dskip,
                                                             .z = tok(in.z, D),
                                                             .dt_bias = dt_bias,
                                                             .dt_softplus = true});
    const auto yv = y.download<float>();
    ys.insert(ys.end(), yv.begin(), yv.end());
  }
  return ys;
}

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Inputs in(argc > 1 ? std::atoll(argv[1]) : 64, argc > 2 ? std::atoll(argv[2]) : 4);
    sparq::Context dev = sparq::Context::create();
    sparq::Context cpu = sparq::Context::create({.device = "fallback"});

    const auto decoded = prefill_then_decode(dev, in);
    // The same tokens in one prefill: its last T columns, reordered to [T][Bt, D].
    sparq::Tensor cs, ss;
    const auto full = prefill(dev, in, in.L + in.T, cs, ss);
    std::vector<float> tail;
    for (std::int64_t t = 0; t < in.T; ++t)
      for (std::int64_t r = 0; r < Bt * D; ++r) tail.push_back(full[r * (in.L + in.T) + in.L + t]);
    const bool decode_ok = same(decoded, tail);
    const bool device_ok = same(decoded, prefill_then_decode(cpu, in));

    double sum = 0;
    for (float v : decoded) sum += v;
    std::printf(
        "sparq %s on %s: Mamba block, Bt=%lld D=%lld N=%lld W=%lld, prefill %lld + decode "
        "%lld tokens\n",
        sparq::version(), dev.device().name.c_str(), static_cast<long long>(Bt),
        static_cast<long long>(D), static_cast<long long>(N), static_cast<long long>(W),
        static_cast<long long>(in.L), static_cast<long long>(in.T));
    std::printf("mean decoded y %.6f; decode == prefill: %s; device == fallback: %s\n",
                sum / static_cast<double>(decoded.size()),
                decode_ok ? "bit-identical" : "DIFFERENT",
                device_ok ? "bit-identical" : "DIFFERENT");
    return decode_ok && device_ok ? 0 : 1;
  } catch (const sparq::Error& e) {
    std::fprintf(stderr, "error [%s]: %s\n", sparq::error_code_name(e.code()), e.what());
    return 2;
  }
}
