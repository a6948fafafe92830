// NVFP4 attention (SageAttention3-style: E2M1 values with an E4M3 scale per 16 elements, the
// softmax output quantized in two levels) against exact fp32 attention: cosine similarity, and
// device == fallback bit for bit for the quantized path too.
//
// Usage: attention_fp4 [L]   (default 512)
#include <sparq/sparq.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

std::vector<float> data(std::size_t n, std::uint32_t seed) {  // LCG values in [-1, 1)
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 8388608.0f - 1.0f;
  }
  return v;
}

std::vector<float> run(sparq::Context& ctx, std::int64_t L, sparq::Precision p) {
  const std::int64_t B = 1, H = 4, D = 128;
  const auto n = static_cast<std::size_t>(B * H * L * D);
  const auto q = ctx.upload(data(n, 1), sparq::DType::f32, {B, H, L, D});
  const auto k = ctx.upload(data(n, 2), sparq::DType::f32, {B, H, L, D});
  const auto v = ctx.upload(data(n, 3), sparq::DType::f32, {B, H, L, D});
  return sparq::attention(ctx, q, k, v, {.causal = true, .precision = p}).out.download<float>();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::int64_t L = argc > 1 ? std::atoll(argv[1]) : 512;
    sparq::Context dev = sparq::Context::create();
    sparq::Context cpu = sparq::Context::create({.device = "fallback"});
    const auto exact = run(dev, L, sparq::Precision::fp32);
    const auto fp4 = run(dev, L, sparq::Precision::nvfp4);
    const auto fp4_cpu = run(cpu, L, sparq::Precision::nvfp4);
    double dot = 0, na = 0, nb = 0;
    for (std::size_t i = 0; i < exact.size(); ++i) {
      dot += static_cast<double>(exact[i]) * fp4[i];
      na += static_cast<double>(exact[i]) * exact[i];
      nb += static_cast<double>(fp4[i]) * fp4[i];
    }
    const double cosine = dot / std::sqrt(na * nb);
    const bool same = std::memcmp(fp4.data(), fp4_cpu.data(), fp4.size() * 4) == 0;
    std::printf(
        "nvfp4 attention [1, 4, %lld, 128] causal on %s: cosine vs fp32 %.5f; device == "
        "fallback: %s\n",
        static_cast<long long>(L), dev.device().name.c_str(), cosine,
        same ? "bit-identical" : "DIFFERENT");
    return same && cosine > 0.98 ? 0 : 1;
  } catch (const sparq::Error& e) {
    std::fprintf(stderr, "error [%s]: %s\n", sparq::error_code_name(e.code()), e.what());
    return 2;
  }
}
