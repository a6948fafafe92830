// sparq::diffusion::step: validate the tensors and coefficients -> pick the sampler-family
// program -> set arguments -> launch (or run the fallback executor).
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <mutex>

#include "diffusion/guide_math.h"
#include "diffusion_common.h"
#include "diffusion_kernels.h"
#include "fallback_cpu/diffusion/diffusion_fallback.h"

namespace sparq::diffusion {

using namespace detail_diffusion;

namespace {

constexpr const char* kOp = "diffusion::step";

cl_common::SqStepCoef pack(const StepCoeffs& k) {
  cl_common::SqStepCoef w;
  for (int t = 0; t < 8; ++t) w.c[t] = k.c[t];
  w.guidance = k.guidance;
  w.c_in_next = k.c_in_next;
  w.flags = k.flags;
  w.step = static_cast<std::uint32_t>(k.step);
  w.phi = k.guidance_rescale;
  w.keep = static_cast<float>(1.0 - static_cast<double>(k.guidance_rescale));
  w.thr = 1.0f;
  return w;
}

// 16 words per sample, as step.cl and guide.cl read them (the first SQ_STEP_COEF_WORDS).
std::vector<std::uint32_t> words(std::span<const StepCoeffs> coeffs) {
  static_assert(SQ_STEP_COEF_WORDS <= 16 &&
                sizeof(cl_common::SqStepCoef) >= SQ_STEP_COEF_WORDS * 4);
  std::vector<std::uint32_t> w(coeffs.size() * 16, 0u);
  for (std::size_t b = 0; b < coeffs.size(); ++b) {
    const auto p = pack(coeffs[b]);
    std::memcpy(&w[b * 16], &p, SQ_STEP_COEF_WORDS * 4);
  }
  return w;
}

// The dynamic-threshold ranks of a sample of s elements (spec §2.8, torch.quantile's linear
// interpolation): lo = floor(p·(s−1)), hi = ceil(p·(s−1)), frac = RN(p·(s−1) − lo).
fallback::diffusion::ThreshRank thresh_rank(const StepCoeffs& k, std::int64_t s) {
  const double pos = static_cast<double>(k.threshold_ratio) * static_cast<double>(s - 1);
  fallback::diffusion::ThreshRank r;
  r.lo = static_cast<std::uint32_t>(std::floor(pos));
  r.hi = static_cast<std::uint32_t>(std::ceil(pos));
  r.frac = static_cast<float>(pos - std::floor(pos));
  r.smax = k.sample_max_value;
  return r;
}

std::int64_t rescale_chunks_pow2(std::int64_t s) {
  const std::int64_t chunks = (s + SQ_RS_CHUNK - 1) / SQ_RS_CHUNK;
  std::int64_t p = 1;
  while (p < chunks) p *= 2;
  return p;
}

// Test hook: the local size of the step and reduction kernels (0 = the device's choice).
std::atomic<std::size_t> g_reduce_local{0};

void check_like(const char* arg, const Tensor& t, const Tensor& latent,
                const detail::ContextImpl& impl, bool any_float) {
  check_tensor(kOp, arg, t, impl, any_float);
  if (t.shape() != latent.shape())
    rt::fail(ErrorCode::shape_mismatch, kOp, "{} has shape [{}]; expected the latent's [{}]", arg,
             fmt::join(t.shape(), ", "), fmt::join(latent.shape(), ", "));
}

}  // namespace

void step(Context& ctx, std::span<const StepCoeffs> coeffs, const StepTensors& t) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  check_tensor(kOp, "latent", t.latent, impl, false);
  require(kOp, t.latent.rank() >= 2, "latent must be [B, ...] with rank >= 2, got {}",
          t.latent.desc().describe());
  const std::int64_t batch = t.latent.dim(0), n = t.latent.numel(), s = batch ? n / batch : 0;
  require(
      kOp,
      !coeffs.empty() && (coeffs.size() == 1 || static_cast<std::int64_t>(coeffs.size()) == batch),
      "coeffs has {} entries; expected 1 (broadcast) or B = {}", coeffs.size(), batch);
  const StepCoeffs& k0 = coeffs[0];
  for (const auto& k : coeffs) {
    require(kOp, k.step >= 0, "step index {} is negative", k.step);
    require(kOp, k.sampler == k0.sampler && k.cfg == k0.cfg,
            "all per-sample coeffs must have the same sampler and cfg");
    require(kOp, std::isfinite(k.guidance), "guidance is not finite ({})", k.guidance);
    for (float c : k.c) require(kOp, !std::isnan(c), "a step coefficient is NaN");
    if (k.flags & SQ_DF_RESCALE)
      require(kOp,
              k.cfg && std::isfinite(k.guidance_rescale) && k.guidance_rescale >= 0 &&
                  k.guidance_rescale <= 1,
              "guidance rescale needs cfg and phi in [0, 1], got {}", k.guidance_rescale);
    if (k.flags & SQ_DF_THRESH)
      require(kOp,
              k.threshold_ratio >= 0 && k.threshold_ratio <= 1 && k.sample_max_value >= 1 &&
                  std::isfinite(k.sample_max_value),
              "dynamic thresholding needs ratio in [0, 1] and a finite sample_max_value >= 1");
  }
  check_tensor(kOp, "model_out", t.model_out, impl, true);
  std::vector<std::int64_t> mshape = t.latent.shape();
  if (k0.cfg) mshape[0] *= 2;
  if (t.model_out.shape() != mshape)
    rt::fail(ErrorCode::shape_mismatch, kOp, "model_out has shape [{}]; expected [{}]{}",
             fmt::join(t.model_out.shape(), ", "), fmt::join(mshape, ", "),
             k0.cfg ? " ([uncond; cond] for CFG)" : "");
  const bool dpm = k0.sampler == Sampler::DPMpp2M || k0.sampler == Sampler::DPMpp2MSDE;
  if (dpm)
    check_like("history", t.history, t.latent, impl, false);
  else
    require(kOp, !t.history.defined(), "history is used by DPM-Solver++ only");
  if (t.x0_out.defined()) check_like("x0_out", t.x0_out, t.latent, impl, false);
  if (t.model_in_next.defined()) check_like("model_in_next", t.model_in_next, t.latent, impl, true);
  bool noise = false;
  for (const auto& k : coeffs) noise = noise || k.draws_noise();
  if (t.noise.defined()) check_like("noise", t.noise, t.latent, impl, false);
  if (noise && !t.noise.defined()) check_seeds(kOp, t.seeds, impl, batch);
  if (n == 0) return;
  const int family = StepKernelConfig::family_of(k0.sampler);
  const bool per_sample = coeffs.size() > 1;
  bool rescale = false, thresh = false;
  for (const auto& k : coeffs) {
    rescale = rescale || (k.flags & SQ_DF_RESCALE);
    thresh = thresh || (k.flags & SQ_DF_THRESH);
  }
  require(kOp, !rescale || s >= 2, "guidance rescale needs >= 2 elements per sample, got {}", s);
  require(kOp, !thresh || s <= (std::int64_t{1} << 31),
          "dynamic thresholding supports up to 2^31 elements per sample, got {}", s);
  const float rn = static_cast<float>(1.0 / static_cast<double>(s));
  const float rn1 = static_cast<float>(1.0 / static_cast<double>(s - 1));
  std::vector<fallback::diffusion::ThreshRank> ranks;
  if (thresh)
    for (std::int64_t b = 0; b < batch; ++b)
      ranks.push_back(thresh_rank(coeffs[per_sample ? static_cast<std::size_t>(b) : 0], s));

  if (!impl.device) {
    std::vector<cl_common::SqStepCoef> packed;
    for (const auto& k : coeffs) packed.push_back(pack(k));
    fallback::diffusion::StepProblem p;
    p.sampler = family;
    p.y = host_ptr<float>(t.latent);
    p.x = p.y;
    p.model = host_ptr<std::byte>(t.model_out);
    p.model_dtype = static_cast<int>(t.model_out.dtype());
    p.cfg = k0.cfg;
    if (dpm) p.history = host_ptr<float>(t.history);
    if (t.x0_out.defined()) p.x0_out = host_ptr<float>(t.x0_out);
    if (t.model_in_next.defined()) {
      p.next = host_ptr<std::byte>(t.model_in_next);
      p.next_dtype = static_cast<int>(t.model_in_next.dtype());
    }
    if (t.noise.defined()) p.noise = host_ptr<float>(t.noise);
    if (noise && !t.noise.defined()) p.seeds = host_ptr<std::uint32_t>(t.seeds);
    p.coefs = packed.data();
    p.per_sample = per_sample;
    p.s = s;
    p.n = n;
    std::vector<float> rho, thr, x0;
    if (rescale) {
      rho.resize(static_cast<std::size_t>(batch));
      fallback::diffusion::rescale_rho(p.model, p.model_dtype, p.coefs, per_sample, s, n, rn, rn1,
                                       rho.data());
      p.rho = rho.data();
    }
    if (thresh) {
      x0.resize(static_cast<std::size_t>(n));
      auto pre = p;
      pre.x0_only = true;
      pre.x0_out = x0.data();
      fallback::diffusion::step(pre);
      thr.resize(static_cast<std::size_t>(batch));
      fallback::diffusion::thresh_scale(x0.data(), s, batch, ranks.data(), thr.data());
      p.thr = thr.data();
    }
    fallback::diffusion::step(p);
    return;
  }

  auto& dev = *impl.device;
  cl::Buffer coef_buf;
  const auto w = words(coeffs);
  if (per_sample) {
    coef_buf = dev.allocate(w.size() * 4, "diffusion::step coefficients");
    dev.write(coef_buf, 0, w.size() * 4, w.data(), kOp);
  }
  cl_uint16 bc{};
  std::memcpy(&bc, w.data(), sizeof bc);
  auto set_coefs = [&](cl::Kernel& kern, cl_uint& a) {
    kern.setArg(a++, bc);
    if (per_sample)
      kern.setArg(a++, coef_buf);
    else
      kern.setArg(a++, sizeof(cl_mem), nullptr);
    kern.setArg(a++, static_cast<cl_int>(per_sample));
  };
  auto null_or = [](cl::Kernel& kern, cl_uint& a, const cl::Buffer* b) {
    if (b)
      kern.setArg(a++, *b);
    else
      kern.setArg(a++, sizeof(cl_mem), nullptr);
  };
  // Reduction work-group size: a power of two dividing 256 (the tree does not depend on it).
  std::size_t rlocal = g_reduce_local.load();
  if (rlocal == 0) {
    rlocal = 256;
    while (rlocal > 1 && rlocal > impl.info.max_work_group_size) rlocal /= 2;
  }
  const GuideKernelConfig gcfg;

  cl::Buffer rho_buf, thr_buf;
  if (rescale) {
    const std::int64_t P = rescale_chunks_pow2(s);
    cl::Buffer part = dev.allocate(static_cast<std::size_t>(batch * P * 16), "rescale partials");
    rho_buf = dev.allocate(static_cast<std::size_t>(batch) * 4, "rescale factors");
    cl::Kernel ks = dev.kernel(gcfg.source, gcfg.stats_kernel, gcfg.defines());
    cl_uint a = 0;
    ks.setArg(a++, t.model_out.storage()->buffer);
    ks.setArg(a++, static_cast<cl_long>(t.model_out.offset()));
    ks.setArg(a++, static_cast<cl_int>(t.model_out.dtype()));
    set_coefs(ks, a);
    ks.setArg(a++, static_cast<cl_long>(s));
    ks.setArg(a++, static_cast<cl_long>(n));
    ks.setArg(a++, static_cast<cl_int>(P));
    ks.setArg(a++, part);
    dev.launch(kOp, ks,
               cl::NDRange(static_cast<std::size_t>(P) * rlocal, static_cast<std::size_t>(batch)),
               cl::NDRange(rlocal, 1));
    cl::Kernel kf = dev.kernel(gcfg.source, gcfg.finalize_kernel, gcfg.defines());
    a = 0;
    kf.setArg(a++, part);
    kf.setArg(a++, static_cast<cl_int>(P));
    set_coefs(kf, a);
    kf.setArg(a++, rn);
    kf.setArg(a++, rn1);
    kf.setArg(a++, static_cast<cl_long>(batch));
    kf.setArg(a++, rho_buf);
    dev.launch(kOp, kf, cl::NDRange(round_up(batch, 32)), cl::NDRange(32));
  }

  // Whole-quad vector access needs every element offset and the sample size to be multiples of 4
  // (the threshold pre-pass writes its own buffer at offset 0).
  auto off4 = [](const Tensor& x) { return !x.defined() || x.offset() % 4 == 0; };
  const bool vec4 = s % 4 == 0 && off4(t.latent) && off4(t.model_out) && off4(t.history) &&
                    off4(t.x0_out) && off4(t.model_in_next) && off4(t.noise);
  const QuadLaunch ql = quad_launch(kOp, impl, batch, s, g_reduce_local.load());
  const StepKernelConfig cfg{family, vec4, ql.qpt};
  cl::Kernel kern = dev.kernel(cfg.source, cfg.kernel, cfg.defines());
  auto launch_step = [&](const cl::Buffer* x0_only) {
    cl_uint a = 0;
    auto buf = [&](const Tensor& x) {
      if (x.defined())
        kern.setArg(a++, x.storage()->buffer);
      else
        kern.setArg(a++, sizeof(cl_mem), nullptr);
      kern.setArg(a++, static_cast<cl_long>(x.defined() ? x.offset() : 0));
    };
    buf(t.latent);
    buf(t.latent);
    buf(t.model_out);
    kern.setArg(a++, static_cast<cl_int>(t.model_out.dtype()));
    kern.setArg(a++, static_cast<cl_int>(k0.cfg));
    buf(dpm ? t.history : Tensor());
    kern.setArg(a++, static_cast<cl_int>(dpm));
    if (x0_only) {
      kern.setArg(a++, *x0_only);
      kern.setArg(a++, cl_long{0});
    } else {
      buf(t.x0_out);
    }
    kern.setArg(a++, static_cast<cl_int>(t.x0_out.defined() || x0_only));
    buf(t.model_in_next);
    kern.setArg(
        a++, static_cast<cl_int>(t.model_in_next.defined() ? t.model_in_next.dtype() : DType::f32));
    kern.setArg(a++, static_cast<cl_int>(t.model_in_next.defined()));
    buf(t.noise);
    kern.setArg(a++, static_cast<cl_int>(t.noise.defined()));
    buf(noise && !t.noise.defined() ? t.seeds : Tensor());
    set_coefs(kern, a);
    null_or(kern, a, rescale ? &rho_buf : nullptr);
    null_or(kern, a, thresh && !x0_only ? &thr_buf : nullptr);
    kern.setArg(a++, static_cast<cl_int>(x0_only != nullptr));
    kern.setArg(a++, static_cast<cl_long>(s));
    kern.setArg(a++, static_cast<cl_long>(n));
    kern.setArg(a++, static_cast<cl_uint>(ql.gps));
    dev.launch(kOp, kern, cl::NDRange(ql.global), cl::NDRange(ql.local));
  };

  if (thresh) {
    cl::Buffer x0 = dev.allocate(static_cast<std::size_t>(n) * 4, "threshold x0");
    launch_step(&x0);
    std::vector<std::uint32_t> state(static_cast<std::size_t>(batch) * 8, 0u);
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto& r = ranks[static_cast<std::size_t>(b)];
      auto* st = &state[static_cast<std::size_t>(b) * 8];
      st[1] = r.lo;
      st[3] = r.hi;
      st[4] = std::bit_cast<std::uint32_t>(r.frac);
      st[5] = std::bit_cast<std::uint32_t>(r.smax);
    }
    cl::Buffer st_buf = dev.allocate(state.size() * 4, "threshold state");
    dev.write(st_buf, 0, state.size() * 4, state.data(), kOp);
    const std::vector<std::uint32_t> zeros(static_cast<std::size_t>(batch) * 2 * SQ_TH_BINS, 0u);
    cl::Buffer hist = dev.allocate(zeros.size() * 4, "threshold histograms");
    dev.write(hist, 0, zeros.size() * 4, zeros.data(), kOp);
    thr_buf = dev.allocate(static_cast<std::size_t>(batch) * 4, "thresholds");
    const std::int64_t per_group = static_cast<std::int64_t>(rlocal) * 16;
    const std::int64_t groups = (s + per_group - 1) / per_group;
    cl::Kernel kh = dev.kernel(gcfg.source, gcfg.hist_kernel, gcfg.defines());
    cl::Kernel kq = dev.kernel(gcfg.source, gcfg.select_kernel, gcfg.defines());
    for (int digit = 0; digit < 3; ++digit) {
      rt::set_kernel_args(kOp, kh, x0, static_cast<cl_long>(s), static_cast<cl_int>(digit), st_buf,
                          hist, static_cast<cl_long>(per_group));
      dev.launch(
          kOp, kh,
          cl::NDRange(static_cast<std::size_t>(groups) * rlocal, static_cast<std::size_t>(batch)),
          cl::NDRange(rlocal, 1));
      rt::set_kernel_args(kOp, kq, st_buf, hist, static_cast<cl_int>(digit),
                          static_cast<cl_long>(batch));
      dev.launch(kOp, kq, cl::NDRange(round_up(2 * batch, 32)), cl::NDRange(32));
    }
    cl::Kernel kc = dev.kernel(gcfg.source, gcfg.scale_kernel, gcfg.defines());
    rt::set_kernel_args(kOp, kc, st_buf, static_cast<cl_long>(batch), thr_buf);
    dev.launch(kOp, kc, cl::NDRange(round_up(batch, 32)), cl::NDRange(32));
  }
  launch_step(nullptr);
}

namespace detail_diffusion {
void set_reduce_local_size_for_testing(std::size_t local) {
  g_reduce_local.store(local);
}
}  // namespace detail_diffusion

}  // namespace sparq::diffusion
