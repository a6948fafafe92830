// Fuzz target: option and shape validation of every op on the fallback. Tensors are views (any
// shape, strides, offset; Tensor::view checks them against the storage) of fixed buffers of each
// dtype; options take every value, NaN and inf included. Each call must end in a result or a
// sparq::Error; anything else (a crash, a sanitizer report, another exception) is a bug.
// Logical sizes are capped (kMaxElems) so that valid calls stay fast.
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "fuzz_input.h"
#include "sparq/sparq.h"

namespace {

using namespace sparq;
constexpr std::int64_t kStorage = 4096, kMaxElems = 8192;

struct Fixture {
  Context ctx = Context::create({.device = "fallback"});
  std::int64_t pool[4] = {1, 2, 4, 8};  // per input: sizes shapes draw from
  Tensor base[6];                       // one per DType, kStorage elements
  Fixture() {
    std::vector<float> f(kStorage);
    for (std::size_t i = 0; i < f.size(); ++i)
      f[i] = static_cast<float>((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    base[0] = ctx.upload(f, DType::f32, {kStorage});
    std::vector<std::uint16_t> h(kStorage, 0x3c00), b(kStorage, 0x3f80);
    base[1] = ctx.upload(h, DType::f16, {kStorage});
    base[2] = ctx.upload(b, DType::bf16, {kStorage});
    base[3] = ctx.upload(std::vector<std::int8_t>(kStorage, 3), DType::i8, {kStorage});
    base[4] = ctx.upload(std::vector<std::uint8_t>(kStorage, 1), DType::u8, {kStorage});
    base[5] = ctx.upload(std::vector<std::int32_t>(kStorage, 2), DType::i32, {kStorage});
  }
};

// A tensor for argument `rank_hint`: usually a float view of that rank, sometimes another dtype,
// rank, an empty Tensor, hostile strides or offsets. nullopt: the view itself was refused (a
// checked error) or is over the size cap; the op is then not called.
std::optional<Tensor> tensor(fuzz::Input& in, Fixture& fx, int rank_hint, int small = 12) {
  const std::uint8_t kind = in.raw<std::uint8_t>();
  if (kind % 23 == 0) return Tensor{};
  int dt = kind % 8 < 5    ? 0
           : kind % 8 == 5 ? 1
           : kind % 8 == 6 ? 2
                           : static_cast<int>(in.range(0, 5));
  const int rank = in.raw<std::uint8_t>() % 8 == 0 ? static_cast<int>(in.range(0, 5)) : rank_hint;
  std::vector<std::int64_t> shape(static_cast<std::size_t>(rank)), strides;
  std::int64_t n = 1;
  for (auto& s : shape) {
    // Mostly from the input's small pool of sizes, so tensors of one call often fit together
    // and the op gets past the first checks; sometimes any size.
    const std::uint8_t pick = in.raw<std::uint8_t>();
    s = pick % 8 < 6 ? fx.pool[pick % 4] : pick % 8 == 6 ? in.dim(small) : in.range(1, small);
    if (s > 0) n = (n > kMaxElems || s > kMaxElems) ? kMaxElems + 1 : n * s;
  }
  if (n > kMaxElems) return std::nullopt;
  if (in.raw<std::uint8_t>() % 4 == 0) {
    strides.resize(shape.size());
    for (auto& s : strides) s = in.raw<std::uint8_t>() % 5 == 0 ? in.dim(64) : in.range(0, 64);
  }
  const std::int64_t offset = in.raw<std::uint8_t>() % 5 == 0 ? in.dim(kStorage) : 0;
  try {
    return fx.base[dt].view(shape, strides, offset);
  } catch (const Error&) {
    return std::nullopt;
  }
}

Tensor index_tensor(fuzz::Input& in, Fixture& fx, int max_len, int hi) {
  const int n = static_cast<int>(in.range(0, max_len));
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  std::int32_t acc = 0;
  for (auto& x : v) {
    acc += static_cast<std::int32_t>(in.range(0, hi));
    x = in.raw<std::uint8_t>() % 8 == 0 ? in.raw<std::int32_t>() : acc;
  }
  if (n == 0) return Tensor{};
  return fx.ctx.upload(v, DType::i32, {n});
}

DType any_dtype(fuzz::Input& in) {
  return static_cast<DType>(in.range(0, 6));
}  // 6: invalid

#define TENSOR(name, rank)              \
  auto name##_o = tensor(in, fx, rank); \
  if (!name##_o) return;                \
  const Tensor name = *name##_o

void fuzz_attention(fuzz::Input& in, Fixture& fx) {
  TENSOR(q, 4);
  TENSOR(k, 4);
  TENSOR(v, 4);
  const AttentionOptions o{
      .causal = in.boolean(),
      .scale = in.any_float(),
      .return_lse = in.boolean(),
      .out_dtype = any_dtype(in),
      .precision = static_cast<Precision>(in.range(0, 3)),  // 3: invalid
      .quant = {.q_smooth = static_cast<QSmooth>(in.range(0, 3)), .k_smooth = in.boolean()}};
  (void)supports_attention(fx.ctx, q.desc(), k.desc(), v.desc(), o);
  (void)attention(fx.ctx, q, k, v, o);
}

void fuzz_varlen(fuzz::Input& in, Fixture& fx) {
  TENSOR(q, 3);
  TENSOR(k, 3);
  TENSOR(v, 3);
  const Tensor cq = index_tensor(in, fx, 5, 6), ck = index_tensor(in, fx, 5, 6);
  (void)attention_varlen(fx.ctx, q, k, v, cq, ck,
                         {.causal = in.boolean(), .scale = in.any_float(), .return_lse = true});
}

void fuzz_merge(fuzz::Input& in, Fixture& fx) {
  const int r = static_cast<int>(in.range(1, 5));
  TENSOR(oa, r);
  TENSOR(la, r - 1);
  TENSOR(ob, r);
  TENSOR(lb, r - 1);
  (void)merge_states(fx.ctx, oa, la, ob, lb);
}

void fuzz_scan(fuzz::Input& in, Fixture& fx) {
  using namespace sparq::mamba;
  TENSOR(u, 3);
  TENSOR(delta, 3);
  TENSOR(A, 2);
  TENSOR(Bm, static_cast<int>(in.range(2, 4)));
  TENSOR(Cm, static_cast<int>(in.range(2, 4)));
  SelectiveScanArgs a{.u = u, .delta = delta, .A = A, .Bm = Bm, .Cm = Cm};
  if (in.boolean()) {
    TENSOR(d, 1);
    a.Dskip = d;
  }
  if (in.boolean()) {
    TENSOR(z, 3);
    a.z = z;
  }
  if (in.boolean()) {
    TENSOR(b, 1);
    a.delta_bias = b;
  }
  if (in.boolean()) {
    TENSOR(h, 3);
    a.h0 = h;
  }
  if (in.boolean()) a.cu_seqlens = index_tensor(in, fx, 4, 8);
  a.delta_softplus = in.boolean();
  a.return_last_state = in.boolean();
  (void)selective_scan(fx.ctx, a);
}

void fuzz_state_update(fuzz::Input& in, Fixture& fx) {
  using namespace sparq::mamba;
  TENSOR(state, 3);
  TENSOR(x, 2);
  TENSOR(dt, 2);
  TENSOR(A, 2);
  TENSOR(Bm, static_cast<int>(in.range(2, 3)));
  TENSOR(Cm, static_cast<int>(in.range(2, 3)));
  StateUpdateArgs a{.state = state, .x = x, .dt = dt, .A = A, .Bm = Bm, .Cm = Cm};
  if (in.boolean()) {
    TENSOR(d, 1);
    a.Dskip = d;
  }
  if (in.boolean()) {
    TENSOR(z, 2);
    a.z = z;
  }
  a.dt_softplus = in.boolean();
  (void)selective_state_update(fx.ctx, a);
}

void fuzz_conv(fuzz::Input& in, Fixture& fx) {
  using namespace sparq::mamba;
  TENSOR(x, 3);
  TENSOR(w, 2);
  CausalConv1dArgs a{.x = x, .weight = w};
  if (in.boolean()) {
    TENSOR(b, 1);
    a.bias = b;
  }
  if (in.boolean()) {
    TENSOR(s, 3);
    a.initial_states = s;
  }
  if (in.boolean()) a.cu_seqlens = index_tensor(in, fx, 4, 8);
  a.silu = in.boolean();
  a.return_final_states = in.boolean();
  (void)causal_conv1d(fx.ctx, a);
  if (in.boolean()) {
    TENSOR(xs, static_cast<int>(in.range(2, 3)));
    TENSOR(st, 3);
    (void)causal_conv1d_update(fx.ctx, {.x = xs, .conv_state = st, .weight = w, .silu = a.silu});
  }
}

void fuzz_outliers(fuzz::Input& in, Fixture& fx) {
  using namespace sparq::mamba;
  TENSOR(x, 3);
  OutlierQuantParams p{.bits = static_cast<InlierBits>(in.range(0, 1)),
                       .outlier_format = static_cast<OutlierFormat>(in.range(0, 2)),
                       .k_sigma = in.any_float(),
                       .window = static_cast<int>(in.dim(12)),
                       .max_outliers = static_cast<int>(in.dim(20)),
                       .static_scale = in.boolean()};
  Tensor scales;
  if (p.static_scale || in.raw<std::uint8_t>() % 8 == 0) {
    TENSOR(s, 1);
    scales = s;
  }
  const QuantizedRows q = outlier_quantize(fx.ctx, x, p, scales);
  (void)dequantize(fx.ctx, q);
}

void fuzz_diffusion(fuzz::Input& in, Fixture& fx) {
  using namespace sparq::diffusion;
  ScheduleConfig c;
  c.num_train_timesteps = static_cast<int>(in.boolean() ? in.range(1, 1000) : in.dim(2000));
  c.beta_schedule = static_cast<BetaSchedule>(in.range(0, 2));
  c.beta_start = in.boolean() ? 0.00085 : in.any_float();
  c.beta_end = in.boolean() ? 0.012 : in.any_float();
  c.rescale_betas_zero_snr = in.boolean();
  if (in.boolean()) c.spacing = static_cast<Spacing>(in.range(0, 2));
  c.steps_offset = static_cast<int>(in.range(-2, 3));
  c.prediction = static_cast<Prediction>(in.range(0, 3));
  c.karras_sigmas = in.boolean();
  c.shift = in.boolean() ? 3.0 : in.any_float();
  c.use_dynamic_shifting = in.boolean();
  c.mu = in.any_float();
  if (in.boolean()) c.s_churn = in.any_float();
  const auto sampler = static_cast<Sampler>(in.range(0, 6));
  const int steps = static_cast<int>(in.boolean() ? in.range(1, 30) : in.dim(100));
  const Schedule s = make_schedule(sampler, c, steps);
  const int k = static_cast<int>(in.range(-1, steps));
  const StepCoeffs co = step_coeffs(
      s, k, {.eta = in.any_float(), .cfg = in.boolean(), .guidance_scale = in.any_float()});
  TENSOR(latent, 2);
  TENSOR(model_out, 2);
  StepTensors t{.latent = latent, .model_out = model_out};
  if (in.boolean()) {
    TENSOR(h, 2);
    t.history = h;
  }
  if (in.boolean()) {
    TENSOR(nz, 2);
    t.noise = nz;
  }
  if (in.boolean()) {
    const std::uint64_t seeds[2] = {in.raw<std::uint64_t>(), in.raw<std::uint64_t>()};
    t.seeds = make_seeds(fx.ctx, std::span(seeds, static_cast<std::size_t>(in.range(0, 2))));
  }
  step(fx.ctx, co, t);
  (void)renoise_coeffs(s, static_cast<int>(in.range(-1, steps)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fx;
  fuzz::Input in(data, size);
  for (auto& p : fx.pool) p = in.range(1, 9);
  static void (*const ops[])(fuzz::Input&, Fixture&) = {
      fuzz_attention,    fuzz_varlen, fuzz_merge,    fuzz_scan,
      fuzz_state_update, fuzz_conv,   fuzz_outliers, fuzz_diffusion};
  const auto op = ops[in.raw<std::uint8_t>() % (sizeof ops / sizeof ops[0])];
  static const bool stats = std::getenv("SPARQ_FUZZ_STATS") != nullptr;
  static long calls = 0, ok = 0;
  try {
    op(in, fx);
    ++ok;
  } catch (const Error&) {
    // the expected outcome for bad input
  }
  if (stats && ++calls % 20000 == 0)
    std::fprintf(stderr, "op_options: %ld of %ld returned\n", ok, calls);
  return 0;
}
