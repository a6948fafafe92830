// sparq::diffusion — diffusion sampling around a denoising network (specs/diffusion_sampling.md):
// host schedule tables (double precision, as diffusers computes them), fused per-step sampler
// kernels with classifier-free guidance, counter-based Gaussian noise (Philox4x32-10), and the
// MoDM serving helpers (cosine top-1 retrieval, re-noise, a latent cache).
//
// Outputs are bit-identical on every device and on the fallback for the same inputs and seeds.
// See docs/diffusion.md for the defined arithmetic order of each step.
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sparq/context.h"
#include "sparq/export.h"
#include "sparq/tensor.h"

namespace sparq::diffusion {

enum class BetaSchedule { Linear, ScaledLinear, SquaredCosCapV2, Trained };
enum class Spacing { Leading, Trailing, Linspace };
// What the network predicts. Flow: velocity (flow matching; FlowEuler, DPM-Solver with flow
// sigmas). SCM always takes a flow-matching velocity (SANA-Sprint's TrigFlow conversion).
enum class Prediction { Epsilon, VPrediction, Sample, Flow };
enum class Sampler { DDIM, Euler, EulerAncestral, DPMpp2M, DPMpp2MSDE, FlowEuler, SCM, LCM };
enum class FinalSigmas { Zero, SigmaMin };
enum class TimeShift { Exponential, Linear };

// Philox stream tags (spec §3.2); user sub-streams: tag | (stream << 8).
inline constexpr std::uint32_t kTagInitLatent = 0, kTagStepNoise = 1, kTagChurn = 2,
                               kTagRenoise = 3;

// diffusers scheduler config fields. Defaults are diffusers' class defaults; `spacing` unset means
// the sampler's diffusers default (DDIM: leading; Euler, DPM-Solver: linspace).
struct SPARQ_API ScheduleConfig {
  int num_train_timesteps = 1000;
  BetaSchedule beta_schedule = BetaSchedule::Linear;
  double beta_start = 0.0001, beta_end = 0.02;
  std::vector<double> trained_betas;  // BetaSchedule::Trained
  bool rescale_betas_zero_snr = false;
  std::optional<Spacing> spacing;
  int steps_offset = 0;
  Prediction prediction = Prediction::Epsilon;
  // DDIM, LCM
  bool set_alpha_to_one = true;
  // x0 clipping, for every sampler (spec §2.8): diffusers' DDIM class default is true; every SD
  // config sets false.
  bool clip_sample = false;
  double clip_sample_range = 1.0;
  bool use_clipped_model_output = false;  // DDIM: eps recomputed from the clipped x0
  // Imagen dynamic thresholding (spec §2.8), for every sampler; takes precedence over
  // clip_sample as in diffusers: s = clamp(quantile(|x0|, ratio), 1, sample_max_value) per
  // sample, x0 = clamp(x0, -s, s) / s.
  bool thresholding = false;
  double dynamic_thresholding_ratio = 0.995, sample_max_value = 1.0;
  // LCM: the origin grid of original_inference_steps steps; c_skip / c_out at timestep_scaling·t
  int original_inference_steps = 50;
  double timestep_scaling = 10.0;
  // Euler / DPM-Solver
  bool karras_sigmas = false;
  FinalSigmas final_sigmas = FinalSigmas::Zero;
  bool lower_order_final = true, euler_at_final = false;
  double s_churn = 0, s_tmin = 0, s_tmax = std::numeric_limits<double>::infinity(), s_noise = 1;
  // Flow matching (FlowEuler; DPM-Solver with Prediction::Flow uses these sigmas too)
  double shift = 1.0;
  bool use_dynamic_shifting = false;
  double mu = 0;  // dynamic shift (flux_mu()), used when use_dynamic_shifting
  TimeShift time_shift = TimeShift::Exponential;
  double shift_terminal = 0;          // 0 = off
  std::vector<double> custom_sigmas;  // dynamic shifting: the pipeline's sigmas (default
                                      // linspace(1, 1/N, N))
  bool stochastic_sampling = false;
  // sCM / TrigFlow (and LCM's boundary condition)
  double sigma_data = 0.5, max_timestep = 1.57080, intermediate_timestep = 1.3;
};

// Host tables for one (config, N). All values double.
struct SPARQ_API Schedule {
  Sampler sampler = Sampler::DDIM;
  ScheduleConfig config;
  int num_steps = 0;
  std::vector<double> betas, alphas_cumprod;  // training tables (VP samplers)
  std::vector<double> timesteps;              // N: the model's timestep argument per step
  std::vector<double> sigmas;  // N + 1: Euler/DPM VE sigmas, flow sigmas, or sCM angles
  double init_noise_sigma = 1.0;
};

// Flux's dynamic shift mu = m·L + b for L image tokens (spec §1.4).
SPARQ_API double flux_mu(std::int64_t image_seq_len, double base_shift = 0.5,
                         double max_shift = 1.15, std::int64_t base_seq_len = 256,
                         std::int64_t max_seq_len = 4096);

// Throws sparq::Error naming the field for NaN / out-of-range options or num_steps.
SPARQ_API Schedule make_schedule(Sampler sampler, const ScheduleConfig& config, int num_steps);

// Betas of a config (length num_train_timesteps), and cumulative products, in double.
SPARQ_API std::vector<double> make_betas(const ScheduleConfig& config);
SPARQ_API std::vector<double> cumprod_alphas(const std::vector<double>& betas);

// The scale of the network input at `step` (Euler: 1/sqrt(sigma^2 + 1); sCM: n_s/sigma_d; else
// 1) and the timestep the network gets (sCM: tau).
SPARQ_API double model_input_scale(const Schedule& schedule, int step);
SPARQ_API double model_timestep(const Schedule& schedule, int step);

struct SPARQ_API StepOptions {
  float eta = 0.0f;             // DDIM
  bool cfg = false;             // model_out is [uncond(B); cond(B)]
  float guidance_scale = 1.0f;  // m = u + g·(c − u), fused as fma(g, c − u, u)
  // Guidance rescale phi (Lin et al. 2023; diffusers guidance_rescale), CFG only, in [0, 1]:
  // m = m·(phi·std(c)/std(m) + 1 − phi) per sample (two extra reduction launches).
  float guidance_rescale = 0.0f;
};

// Per-step scalars, computed in double and rounded once (spec §6.1). Both executors consume these
// exact floats. c[] meaning is per sampler (docs/diffusion.md); flags select the formula.
struct SPARQ_API StepCoeffs {
  float c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  float guidance = 1.0f;
  float c_in_next = 1.0f;  // model_in_next = c_in_next · y when flag scale_next
  std::uint32_t flags = 0;
  Sampler sampler = Sampler::DDIM;
  bool cfg = false;
  int step = 0;
  float guidance_rescale = 0.0f;  // phi (flag RESCALE)
  // Dynamic thresholding (flag THRESH): the quantile ratio and the upper clamp of s.
  float threshold_ratio = 0.995f, sample_max_value = 1.0f;
  bool draws_noise() const;
};

// Throws sparq::Error for step out of [0, N), NaN/inf eta or guidance, negative eta.
SPARQ_API StepCoeffs step_coeffs(const Schedule& schedule, int step,
                                 const StepOptions& options = {});

// The tensors of one step. latent: f32 [B, ...], updated in place. model_out: f32/f16/bf16
// [B, ...] ([2B, ...] with CFG). history: DPM-Solver only, f32 like latent: the previous x0 is
// read (second order) and this step's x0 written. x0_out, model_in_next (f32/f16/bf16) optional.
// noise: optional f32 like latent, replaces the Philox draw. seeds: i32 [B, 2] from make_seeds,
// required when the step draws noise and no noise tensor is given.
struct SPARQ_API StepTensors {
  Tensor latent, model_out, history, x0_out, model_in_next, noise, seeds;
};

// One fused step. coeffs: one entry (broadcast) or one per sample (requests at different steps
// sharing a launch; all entries must have the same sampler and cfg).
SPARQ_API void step(Context& ctx, std::span<const StepCoeffs> coeffs, const StepTensors& tensors);
inline void step(Context& ctx, const StepCoeffs& coeffs, const StepTensors& tensors) {
  step(ctx, std::span<const StepCoeffs>(&coeffs, 1), tensors);
}

// Per-sample 64-bit seeds as an i32 [B, 2] tensor (lo, hi words) on ctx.
SPARQ_API Tensor make_seeds(Context& ctx, std::span<const std::uint64_t> seeds);

struct SPARQ_API RandnOptions {
  std::uint32_t step = 0;
  std::uint32_t tag = kTagInitLatent;
  float scale = 1.0f;  // e.g. init_noise_sigma, sigma_data
  DType dtype = DType::f32;
};
// Standard normal noise of shape [B, ...] (B = seeds rows): out = scale · z(seed_b, j, step, tag).
SPARQ_API Tensor randn(Context& ctx, const Tensor& seeds, std::vector<std::int64_t> shape,
                       const RandnOptions& options = {});

// Re-noise coefficients (spec §2.9) of step k of a schedule: y = b·z + a·x0.
struct SPARQ_API RenoiseCoeffs {
  float a = 1.0f, b = 0.0f;
  std::uint32_t step = 0;  // the Philox step word (= k)
};
SPARQ_API RenoiseCoeffs renoise_coeffs(const Schedule& schedule, int k);
// y = fma(b, z, a·x0) per sample with z from tag RENOISE; coeffs: one entry or one per sample.
SPARQ_API Tensor renoise(Context& ctx, const Tensor& x0, const Tensor& seeds,
                         std::span<const RenoiseCoeffs> coeffs);

// Rows of v [M, D] (f32) scaled to unit L2 norm with the 32-lane order of spec §4.2.
SPARQ_API Tensor l2_normalize(Context& ctx, const Tensor& v);
struct SPARQ_API Top1 {
  std::vector<std::int32_t> index;  // -1 where no valid row
  std::vector<float> score;
};
// For each query row of Q [Bq, D] (f32), the valid row of E [M, D] (f32/f16) of highest dot
// product; ties -> smaller index; NaN scores and invalid rows never win. valid: u8 [M].
SPARQ_API Top1 sim_top1(Context& ctx, const Tensor& E, const Tensor& valid, const Tensor& Q);
// The k (1..16) best valid rows per query in the same order (higher score, then smaller index;
// NaN scores and invalid rows never listed), best first: index/score are [Bq][k] row-major,
// padded with -1 / 0 when fewer than k rows are valid. k = 1 equals sim_top1.
struct SPARQ_API TopK {
  int k = 0;
  std::vector<std::int32_t> index;
  std::vector<float> score;
};
SPARQ_API TopK sim_topk(Context& ctx, const Tensor& E, const Tensor& valid, const Tensor& Q, int k);

// ---- MoDM / NIRVANA-style cache of final latents keyed by text embeddings (spec §4) ----------
enum class CachePolicy { LRU, LFU, FIFO, LCBFU };

struct SPARQ_API CacheConfig {
  std::uint32_t capacity = 1024;
  std::uint32_t dim = 0;  // embedding width (required)
  // LCBFU (NIRVANA): evict the least benefit = sum of steps saved over the entry's hits.
  CachePolicy policy = CachePolicy::LCBFU;
  float tau_hit = 0.80f;  // hit iff cosine score >= tau_hit (calibrate per embedding model)
  // (threshold, steps skipped) in decreasing threshold: the first threshold <= score gives k.
  // Default: NIRVANA's K ladder {25, 20, 15, 10, 5} of 50 steps.
  std::vector<std::pair<float, int>> k_table = {
      {0.95f, 25}, {0.90f, 20}, {0.85f, 15}, {0.80f, 10}, {0.75f, 5}};
};

struct SPARQ_API CacheHit {
  bool hit = false;
  std::int32_t slot = -1;  // best valid slot (-1 when the cache is empty)
  float score = 0.0f;
  int k = 0;                  // steps to skip (0 on a miss)
  std::uint64_t payload = 0;  // the caller's handle stored with the slot
};

// Slots are fixed rows of a device matrix (no compaction); valid[] masks holes. Eviction ties go
// to the smaller insertion sequence number. Thread safety: external (one writer).
class SPARQ_API LatentCache {
 public:
  LatentCache(Context& ctx, CacheConfig config);
  // q: Bq x dim embeddings (normalised here with l2_normalize's order); runs sim_top1.
  std::vector<CacheHit> query(std::span<const float> q);
  // Records a use of `slot` at time `now` that skipped k_saved steps (recency, frequency, benefit).
  void touch(std::uint32_t slot, std::uint64_t now, int k_saved = 0);
  // Stores a new entry (evicting by the policy when full); returns its slot.
  std::uint32_t insert(std::span<const float> embedding, std::uint64_t payload, std::uint64_t now);
  void erase(std::uint32_t slot);
  std::uint32_t size() const;
  const CacheConfig& config() const { return config_; }
  // Crash-safe persistence: writes path.tmp, fsyncs, renames over path. load() checks the magic,
  // sizes and checksum (sparq::Error io_error on a corrupt or foreign file).
  void save(const std::string& path) const;
  static LatentCache load(Context& ctx, const std::string& path);

  struct Entry {
    bool valid = false;
    std::uint64_t seq = 0, last_use = 0, uses = 0, benefit = 0, payload = 0;
  };

 private:
  void write_row(std::uint32_t slot);
  std::uint32_t victim() const;
  Context ctx_;
  CacheConfig config_;
  std::vector<Entry> entries_;
  std::vector<float> rows_;  // host mirror of E (normalised), capacity x dim
  std::uint64_t next_seq_ = 0;
  Tensor emb_, valid_;
};

}  // namespace sparq::diffusion
