// l2_normalize and sim_top1 (MoDM retrieval): validate -> launch sim.cl (or the fallback); the
// per-group partial winners of sim_top1 are merged on the host with the kernel's total order.
#include <limits>
#include <mutex>

#include "diffusion/sim_math.h"
#include "diffusion_common.h"
#include "diffusion_kernels.h"
#include "fallback_cpu/diffusion/diffusion_fallback.h"

namespace sparq::diffusion {

using namespace detail_diffusion;

namespace {
constexpr std::int64_t kMaxGroups = 4096;
}

Tensor l2_normalize(Context& ctx, const Tensor& v) {
  constexpr const char* op = "diffusion::l2_normalize";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  check_tensor(op, "v", v, impl, false);
  require(op, v.rank() == 2, "v must be [M, D], got {}", v.desc().describe());
  const std::int64_t rows = v.dim(0), d = v.dim(1);
  require(op, d >= 1 && d <= (1 << 20), "D must be in [1, 2^20], got {}", d);
  Tensor out = new_tensor(ctx, DType::f32, v.shape());
  if (rows == 0) return out;
  if (!impl.device) {
    fallback::diffusion::l2_normalize(host_ptr<float>(out), host_ptr<float>(v), rows, d);
    return out;
  }
  const SimKernelConfig cfg;
  cl::Kernel k = impl.device->kernel(cfg.source, cfg.normalize_kernel, cfg.defines());
  rt::set_kernel_args(op, k, out.storage()->buffer, v.storage()->buffer,
                      static_cast<cl_long>(v.offset()), static_cast<cl_long>(rows),
                      static_cast<cl_int>(d));
  impl.device->launch(op, k, cl::NDRange(round_up(rows, 64)), cl::NDRange(64));
  return out;
}

namespace {

// Shapes of a retrieval call (E [M, D], valid u8 [M], Q [Bq, D]), checked.
struct SimShape {
  std::int64_t m, d, bq;
};

SimShape check_sim(const char* op, const detail::ContextImpl& impl, const Tensor& E,
                   const Tensor& valid, const Tensor& Q) {
  check_tensor(op, "E", E, impl, true);
  check_tensor(op, "Q", Q, impl, false);
  require(op, E.rank() == 2 && Q.rank() == 2, "E must be [M, D] and Q [Bq, D], got {} and {}",
          E.desc().describe(), Q.desc().describe());
  const std::int64_t m = E.dim(0), d = E.dim(1), bq = Q.dim(0);
  if (Q.dim(1) != d)
    rt::fail(ErrorCode::shape_mismatch, op, "Q has D = {}, E has D = {}; they must match", Q.dim(1),
             d);
  require(op, d >= 1 && d <= (1 << 20), "D must be in [1, 2^20], got {}", d);
  require(op, m <= std::numeric_limits<std::int32_t>::max(), "M = {} exceeds 2^31 - 1", m);
  detail::check_tensor_owner(op, "valid", valid, impl);
  if (valid.dtype() != DType::u8 || valid.rank() != 1 || valid.dim(0) != m ||
      !valid.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "valid is {}; expected contiguous u8[{}]",
             valid.desc().describe(), m);
  return {m, d, bq};
}

}  // namespace

TopK sim_topk(Context& ctx, const Tensor& E, const Tensor& valid, const Tensor& Q, int k) {
  constexpr const char* op = "diffusion::sim_topk";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  require(op, k >= 1 && k <= 16, "k must be in [1, 16], got {}", k);
  const auto [m, d, bq] = check_sim(op, impl, E, valid, Q);
  TopK r;
  r.k = k;
  r.index.assign(static_cast<std::size_t>(bq * k), -1);
  r.score.assign(static_cast<std::size_t>(bq * k), 0.0f);
  if (bq == 0 || m == 0) return r;
  if (!impl.device) {
    fallback::diffusion::sim_topk(host_ptr<std::byte>(E), static_cast<int>(E.dtype()),
                                  host_ptr<std::uint8_t>(valid), m, host_ptr<float>(Q), bq, d, k,
                                  r.index.data(), r.score.data());
    return r;
  }
  auto& dev = *impl.device;
  const std::int64_t groups = std::min(m, kMaxGroups);
  const auto parts = static_cast<std::size_t>(groups * bq * k);
  cl::Buffer pidx = dev.allocate(parts * 4, "sim_topk partial indices");
  cl::Buffer pscore = dev.allocate(parts * 4, "sim_topk partial scores");
  const SimKernelConfig cfg;
  cl::Kernel kern = dev.kernel(cfg.source, cfg.topk_kernel, cfg.defines());
  rt::set_kernel_args(op, kern, E.storage()->buffer, static_cast<cl_long>(E.offset()),
                      static_cast<cl_int>(E.dtype()), valid.storage()->buffer,
                      static_cast<cl_long>(valid.offset()), static_cast<cl_long>(m),
                      Q.storage()->buffer, static_cast<cl_long>(Q.offset()), static_cast<cl_int>(d),
                      static_cast<cl_int>(groups), static_cast<cl_int>(k), pidx, pscore);
  dev.launch(op, kern, cl::NDRange(round_up(groups, 64), static_cast<std::size_t>(bq)),
             cl::NDRange(64, 1));
  std::vector<std::int32_t> idx(parts);
  std::vector<float> score(parts);
  dev.read(pidx, 0, parts * 4, idx.data(), op);
  dev.read(pscore, 0, parts * 4, score.data(), op);
  for (std::int64_t qi = 0; qi < bq; ++qi) {
    float* ls = r.score.data() + qi * k;
    int* li = r.index.data() + qi * k;
    for (std::int64_t at = qi * groups * k; at < (qi + 1) * groups * k; ++at)
      if (idx[static_cast<std::size_t>(at)] >= 0)
        cl_common::sq_topk_insert(ls, li, k, score[static_cast<std::size_t>(at)],
                                  idx[static_cast<std::size_t>(at)]);
  }
  return r;
}

Top1 sim_top1(Context& ctx, const Tensor& E, const Tensor& valid, const Tensor& Q) {
  constexpr const char* op = "diffusion::sim_top1";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  check_tensor(op, "E", E, impl, true);
  check_tensor(op, "Q", Q, impl, false);
  require(op, E.rank() == 2 && Q.rank() == 2, "E must be [M, D] and Q [Bq, D], got {} and {}",
          E.desc().describe(), Q.desc().describe());
  const std::int64_t m = E.dim(0), d = E.dim(1), bq = Q.dim(0);
  if (Q.dim(1) != d)
    rt::fail(ErrorCode::shape_mismatch, op, "Q has D = {}, E has D = {}; they must match", Q.dim(1),
             d);
  require(op, d >= 1 && d <= (1 << 20), "D must be in [1, 2^20], got {}", d);
  require(op, m <= std::numeric_limits<std::int32_t>::max(), "M = {} exceeds 2^31 - 1", m);
  detail::check_tensor_owner(op, "valid", valid, impl);
  if (valid.dtype() != DType::u8 || valid.rank() != 1 || valid.dim(0) != m ||
      !valid.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, op, "valid is {}; expected contiguous u8[{}]",
             valid.desc().describe(), m);
  Top1 r;
  r.index.assign(static_cast<std::size_t>(bq), -1);
  r.score.assign(static_cast<std::size_t>(bq), 0.0f);
  if (bq == 0 || m == 0) return r;
  if (!impl.device) {
    fallback::diffusion::sim_top1(host_ptr<std::byte>(E), static_cast<int>(E.dtype()),
                                  host_ptr<std::uint8_t>(valid), m, host_ptr<float>(Q), bq, d,
                                  r.index.data(), r.score.data());
    return r;
  }
  auto& dev = *impl.device;
  const std::int64_t groups = std::min(m, kMaxGroups);
  const auto parts = static_cast<std::size_t>(groups * bq);
  cl::Buffer pidx = dev.allocate(parts * 4, "sim_top1 partial indices");
  cl::Buffer pscore = dev.allocate(parts * 4, "sim_top1 partial scores");
  const SimKernelConfig cfg;
  cl::Kernel k = dev.kernel(cfg.source, cfg.top1_kernel, cfg.defines());
  rt::set_kernel_args(op, k, E.storage()->buffer, static_cast<cl_long>(E.offset()),
                      static_cast<cl_int>(E.dtype()), valid.storage()->buffer,
                      static_cast<cl_long>(valid.offset()), static_cast<cl_long>(m),
                      Q.storage()->buffer, static_cast<cl_long>(Q.offset()), static_cast<cl_int>(d),
                      static_cast<cl_int>(groups), pidx, pscore);
  dev.launch(op, k, cl::NDRange(round_up(groups, 64), static_cast<std::size_t>(bq)),
             cl::NDRange(64, 1));
  std::vector<std::int32_t> idx(parts);
  std::vector<float> score(parts);
  dev.read(pidx, 0, parts * 4, idx.data(), op);
  dev.read(pscore, 0, parts * 4, score.data(), op);
  for (std::int64_t qi = 0; qi < bq; ++qi) {
    auto& bi = r.index[static_cast<std::size_t>(qi)];
    auto& bs = r.score[static_cast<std::size_t>(qi)];
    for (std::int64_t g = 0; g < groups; ++g) {
      const auto at = static_cast<std::size_t>(qi * groups + g);
      if (idx[at] >= 0 && cl_common::sq_top1_better(score[at], idx[at], bs, bi)) {
        bs = score[at];
        bi = idx[at];
      }
    }
  }
  return r;
}

}  // namespace sparq::diffusion
