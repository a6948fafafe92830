// Helpers shared by the diffusion op files: argument checks that throw sparq::Error naming the
// op and argument, TrigFlow conversions, tensor access for the two executors.
#pragma once
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "context_impl.h"
#include "errors.h"
#include "sparq/diffusion.h"

namespace sparq::diffusion::detail_diffusion {

template <class... Args>
void require(const char* op, bool ok, fmt::format_string<Args...> f, Args&&... args) {
  if (!ok) rt::fail(ErrorCode::invalid_argument, op, f, std::forward<Args>(args)...);
}

inline void check_step(const char* op, const Schedule& s, int step) {
  require(op,
          s.num_steps > 0 && s.timesteps.size() == static_cast<std::size_t>(s.num_steps) &&
              (s.sampler == Sampler::DDIM || s.sampler == Sampler::LCM ||
               s.sigmas.size() == static_cast<std::size_t>(s.num_steps) + 1),
          "schedule is empty or inconsistent (use make_schedule)");
  require(op, step >= 0 && step < s.num_steps, "step index {} is outside the schedule [0, {})",
          step, s.num_steps);
}

// SANA-Sprint: flow time tau of TrigFlow angle s, and the norm n_s (spec §2.5).
inline double trigflow_tau(double s) {
  return std::sin(s) / (std::cos(s) + std::sin(s));
}
inline double trigflow_norm(double s) {
  const double tau = trigflow_tau(s);
  return std::sqrt(tau * tau + (1 - tau) * (1 - tau));
}

inline bool is_float_dtype(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

// A tensor of the op: owned by ctx, contiguous, of one of the allowed dtypes.
inline void check_tensor(const char* op, const char* arg, const Tensor& t,
                         const detail::ContextImpl& ctx, bool any_float) {
  detail::check_tensor_owner(op, arg, t, ctx);
  if (any_float ? !is_float_dtype(t.dtype()) : t.dtype() != DType::f32)
    rt::fail(ErrorCode::shape_mismatch, op, "{} has dtype {}; expected {}", arg,
             dtype_name(t.dtype()), any_float ? "f32, f16 or bf16" : "f32");
  if (!t.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "{} must be contiguous, got {}", arg,
             t.desc().describe());
}

// Seeds tensor of B rows (i32 [B, 2]).
inline void check_seeds(const char* op, const Tensor& seeds, const detail::ContextImpl& ctx,
                        std::int64_t batch) {
  detail::check_tensor_owner(op, "seeds", seeds, ctx);
  if (seeds.dtype() != DType::i32 || seeds.rank() != 2 || seeds.dim(1) != 2 ||
      seeds.dim(0) != batch || !seeds.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op,
             "seeds is {}; expected contiguous i32[{}, 2] (make_seeds with one seed per sample)",
             seeds.desc().describe(), batch);
}

// Host pointer of a fallback tensor, or the device buffer: what each executor needs.
template <class T>
T* host_ptr(const Tensor& t) {
  return reinterpret_cast<T*>(detail::host_data_mut(t));
}

inline std::uint64_t max_alloc(const detail::ContextImpl& ctx) {
  return ctx.device ? ctx.info.max_alloc_bytes : 0;
}

inline Tensor new_tensor(const Context& ctx, DType t, std::vector<std::int64_t> shape) {
  return detail::make_tensor(*ctx.impl(), ctx.impl(), TensorDesc{t, std::move(shape), {}, 0});
}

// Work-group size for element-wise kernels (geometry never changes a value).
inline std::size_t elementwise_local(const detail::ContextImpl& ctx) {
  return std::min<std::size_t>(256,
                               ctx.info.max_work_group_size ? ctx.info.max_work_group_size : 64);
}
inline std::size_t round_up(std::int64_t n, std::size_t m) {
  return (static_cast<std::size_t>(n) + m - 1) / m * m;
}
// Launch of the quad-per-work-item kernels (kernels_cl/diffusion/quad_launch.h): every sample of
// s elements gets gps = ceil(ceil(s / 4) / (local·qpt)) work-groups of `local` work-items, each
// owning qpt quads. Speed only: no value depends on local or qpt.
struct QuadLaunch {
  std::size_t local = 256;
  int qpt = 2;            // quads per work-item (-DSQ_QPT)
  std::uint32_t gps = 0;  // work-groups per sample
  std::size_t global = 0;
};
// The device's choice, SPARQ_TUNE_DIFFUSION="qpt=1|2|4,local=32..1024" for tuning sweeps, and the
// step's test hook (set_reduce_local_size_for_testing) when `local_override` is not 0.
QuadLaunch quad_launch(const char* op, const detail::ContextImpl& ctx, std::int64_t batch,
                       std::int64_t s, std::size_t local_override = 0);
// The qpt every quad kernel is built with (the variant list builds this one).
int quad_qpt();

// Test hook (step.cpp): the work-group size of the step kernel and of the guidance-rescale /
// threshold reduction kernels, to check that it never changes a value (spec §6.3); 0 = the
// device's choice.
void set_reduce_local_size_for_testing(std::size_t local);

}  // namespace sparq::diffusion::detail_diffusion
