// Launch geometry of the quad kernels (step.cl, noise.cl) and its tuning knob.
#include <limits>
#include <string>

#include "diffusion_common.h"
#include "tuning_env.h"

namespace sparq::diffusion::detail_diffusion {

namespace {

// Default: two quads (8 elements) per work-item. On the H100 (bench/RESULTS.md, session 3) it
// lifts the noise-drawing steps at 64x16x128x128 bf16 from 60-62% to 69-71% of copy bandwidth and
// DPM-Solver++ from 87% to 91%, and leaves the f32 steps at 95-97%; 4 quads or other work-group
// sizes are no better.
struct Tuning {
  int qpt = 2;
  std::size_t local = 0;  // 0 = elementwise_local
};

// SPARQ_TUNE_DIFFUSION="qpt=2,local=128": for sparq-bench sweeps on a GPU; read on every call so
// a sweep can change it between runs of one process.
Tuning tuning(const char* op) {
  Tuning t;
  rt::for_each_tuning_item("SPARQ_TUNE_DIFFUSION", [&](const std::string& key, long value,
                                                       const std::string& item) {
    if (key == "qpt" && (value == 1 || value == 2 || value == 4))
      t.qpt = static_cast<int>(value);
    else if (key == "local" && value >= 32 && value <= 1024 && (value & (value - 1)) == 0)
      t.local = static_cast<std::size_t>(value);
    else
      rt::fail(ErrorCode::invalid_argument, op,
               "SPARQ_TUNE_DIFFUSION item '{}' is not qpt=1|2|4 or local=32..1024 (a power of 2)",
               item);
  });
  return t;
}

}  // namespace

int quad_qpt() {
  return tuning("diffusion").qpt;
}

QuadLaunch quad_launch(const char* op, const detail::ContextImpl& ctx, std::int64_t batch,
                       std::int64_t s, std::size_t local_override) {
  const Tuning t = tuning(op);
  QuadLaunch q;
  q.qpt = t.qpt;
  q.local = local_override ? local_override : t.local ? t.local : elementwise_local(ctx);
  if (ctx.info.max_work_group_size && q.local > ctx.info.max_work_group_size)
    q.local = ctx.info.max_work_group_size;
  const std::int64_t quads = (s + 3) / 4;
  const std::int64_t per_group = static_cast<std::int64_t>(q.local) * q.qpt;
  const std::int64_t gps = (quads + per_group - 1) / per_group;
  // The kernels index groups with 32-bit values (quad_launch.h).
  require(op, gps * batch <= std::numeric_limits<std::uint32_t>::max(),
          "{} samples of {} elements need more than 2^32 work-groups", batch, s);
  q.gps = static_cast<std::uint32_t>(gps);
  q.global = static_cast<std::size_t>(gps * batch) * q.local;
  return q;
}

}  // namespace sparq::diffusion::detail_diffusion
