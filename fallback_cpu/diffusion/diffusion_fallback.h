// The CPU executors of the diffusion ops: bit-exact twins of kernels_cl/diffusion/*.cl, running
// the same shared arithmetic headers (step_math.h, common/philox.h) element by element.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "diffusion/step_math.h"
#include "fallback_cpu/common/parallel_chunks.h"

namespace sparq::fallback::diffusion {

// step.cpp: one fused step (kernels_cl/diffusion/step.cl). dtype codes: 0 f32, 1 f16, 2 bf16.
struct StepProblem {
  int sampler = 0;  // SQ_SAMPLER_*
  float* y = nullptr;
  const float* x = nullptr;  // may equal y (in place)
  const std::byte* model = nullptr;
  int model_dtype = 0;
  bool cfg = false;
  float* history = nullptr;  // DPM: m1 in, x0 out
  float* x0_out = nullptr;
  std::byte* next = nullptr;
  int next_dtype = 0;
  const float* noise = nullptr;          // external noise, or null for Philox
  const std::uint32_t* seeds = nullptr;  // [B][2]
  const cl_common::SqStepCoef* coefs = nullptr;
  bool per_sample = false;     // coefs[b] per sample, else coefs[0]
  const float* rho = nullptr;  // [B] guidance rescale factors (flag RESCALE)
  const float* thr = nullptr;  // [B] dynamic thresholds (flag THRESH)
  bool x0_only = false;        // write only x0_out = x0 before clip / threshold
  std::int64_t s = 0, n = 0;
};
void step(const StepProblem& p);

// guide.cpp (kernels_cl/diffusion/guide.cl): rho[b] of guidance rescale from the model output
// ([uncond; cond], dtype code), with the §6.4 tree; thr[b] of dynamic thresholding from x0
// (B x s, before clip) and per-sample (rank_lo, rank_hi, frac, smax).
void rescale_rho(const std::byte* model, int model_dtype, const cl_common::SqStepCoef* coefs,
                 bool per_sample, std::int64_t s, std::int64_t n, float rn, float rn1, float* rho);
struct ThreshRank {
  std::uint32_t lo = 0, hi = 0;
  float frac = 0, smax = 1;
};
void thresh_scale(const float* x0, std::int64_t s, std::int64_t batch, const ThreshRank* ranks,
                  float* thr);

// noise.cpp (kernels_cl/diffusion/noise.cl).
void randn(std::byte* out, int out_dtype, const std::uint32_t* seeds, std::int64_t s,
           std::int64_t n, std::uint32_t step, std::uint32_t tag, float scale);
void renoise(float* y, const float* x0, const std::uint32_t* seeds, const std::uint32_t* coefs,
             std::int64_t coef_stride, std::int64_t s, std::int64_t n);

// sim.cpp (kernels_cl/diffusion/sim.cl).
void l2_normalize(float* out, const float* v, std::int64_t rows, std::int64_t d);
void sim_top1(const std::byte* e, int e_dtype, const std::uint8_t* valid, std::int64_t m,
              const float* q, std::int64_t bq, std::int64_t d, std::int32_t* index, float* score);
// k (<= 16) best per query, best first, index -1 / score 0 past the valid rows: [bq][k].
void sim_topk(const std::byte* e, int e_dtype, const std::uint8_t* valid, std::int64_t m,
              const float* q, std::int64_t bq, std::int64_t d, int k, std::int32_t* index,
              float* score);

using fallback::parallel_chunks;

}  // namespace sparq::fallback::diffusion
