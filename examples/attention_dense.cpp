// Dense causal attention with grouped-query heads (GQA), as a prefill step of a decoder: Q, K, V in
// the [B, L, H, D] memory layout most frameworks use, read through views as [B, H, L, D] (no copy),
// fp16 storage, fp32 output and base-2 LSE. Runs on $SPARQ_DEVICE (default: first capable GPU,
// else PoCL, else the fallback), repeats on the fallback and checks that the bits agree.
//
// Usage: attention_dense [L]   (default 256)
#include <sparq/sparq.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// fp32 -> IEEE binary16 bits, round to nearest even (normal range; the values here are small).
std::uint16_t to_f16(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const int exp = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
  std::uint32_t mant = x & 0x7fffffu;
  if (exp <= 0) return static_cast<std::uint16_t>(sign);  // tiny: flush (never hit below)
  std::uint32_t h = sign | (static_cast<std::uint32_t>(exp) << 10) | (mant >> 13);
  const std::uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(h);
}

// Deterministic pseudo-random values in [-1, 1) (an LCG: the example needs no <random> state).
std::vector<std::uint16_t> data(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = to_f16(static_cast<float>(seed >> 8) / 8388608.0f - 1.0f);
  }
  return v;
}

sparq::AttentionResult run(sparq::Context& ctx, std::int64_t L) {
  const std::int64_t B = 1, Hq = 8, Hkv = 2, D = 64;
  auto upload_bld = [&](std::int64_t H, std::uint32_t seed) {
    // Stored [B, L, H, D]; the op takes [B, H, L, D]: a view with swapped strides.
    sparq::Tensor t = ctx.upload(data(static_cast<std::size_t>(B * L * H * D), seed),
                                 sparq::DType::f16, {B, L, H, D});
    return t.view({B, H, L, D}, {L * H * D, D, H * D, 1});
  };
  const sparq::Tensor q = upload_bld(Hq, 1), k = upload_bld(Hkv, 2), v = upload_bld(Hkv, 3);
  const sparq::AttentionOptions opt{.causal = true, .return_lse = true};
  if (const sparq::Support s = sparq::supports_attention(ctx, q.desc(), k.desc(), v.desc(), opt);
      !s)
    throw sparq::Error(sparq::ErrorCode::unsupported, s.reason);
  return sparq::attention(ctx, q, k, v, opt);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::int64_t L = argc > 1 ? std::atoll(argv[1]) : 256;
    sparq::Context dev = sparq::Context::create();
    sparq::Context cpu = sparq::Context::create({.device = "fallback"});
    const auto a = run(dev, L), b = run(cpu, L);
    const auto out_a = a.out.download<float>(), out_b = b.out.download<float>();
    const auto lse_a = a.lse.download<float>(), lse_b = b.lse.download<float>();
    const bool same = out_a.size() == out_b.size() &&
                      std::memcmp(out_a.data(), out_b.data(), out_a.size() * 4) == 0 &&
                      std::memcmp(lse_a.data(), lse_b.data(), lse_a.size() * 4) == 0;
    double sum = 0;
    for (float x : out_a) sum += std::fabs(x);
    std::printf("sparq %s on %s: attention [1, 8, %lld, 64] causal GQA 8/2, fp16 in\n",
                sparq::version(), dev.device().name.c_str(), static_cast<long long>(L));
    std::printf("mean |out| %.6f, lse[last row] %.6f; device == fallback: %s\n",
                sum / static_cast<double>(out_a.size()), static_cast<double>(lse_a.back()),
                same ? "bit-identical" : "DIFFERENT");
    return same ? 0 : 1;
  } catch (const sparq::Error& e) {
    std::fprintf(stderr, "error [%s]: %s\n", sparq::error_code_name(e.code()), e.what());
    return 2;
  }
}
