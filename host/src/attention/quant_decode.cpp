// The split rule and the chunk-state merge of the quantized decode ops (quant_decode.h).
#include "quant_decode.h"

#include "attention_kernels.h"
#include "attention_plan.h"
#include "attention_validate.h"
#include "errors.h"
#include "host/src/quant/quant_ops.h"

namespace sparq::attention_detail {

namespace {

// The scope of this thread's plan run (SplitScratchScope), or nulls.
struct ActiveScratch {
  Context* ctx = nullptr;
  quant_detail::Scratch* scratch = nullptr;
};
thread_local ActiveScratch t_active;

}  // namespace

QuantDecodeSplit quant_decode_split(rt::DeviceRuntime& dev, const char* op, std::int64_t rows,
                                    std::int64_t lk, std::int64_t d) {
  QuantDecodeSplit s;
  s.nchunks = (lk + kChunkKeys - 1) / kChunkKeys;
  if (!s.split()) return s;
  const std::uint64_t max_alloc = dev.info().max_alloc_bytes;
  const std::uint64_t o_bytes =
      check_alloc(op, "split workspace", DType::f32, {rows, s.nchunks, d}, max_alloc);
  const std::uint64_t l_bytes =
      check_alloc(op, "split workspace", DType::f32, {rows, s.nchunks}, max_alloc);
  if (t_active.scratch && t_active.ctx->impl()->device.get() == &dev) {
    Context& ctx = *t_active.ctx;
    s.ws_o = t_active.scratch->get(ctx, DType::f32, {rows, s.nchunks, d}).storage()->buffer;
    s.ws_lse = t_active.scratch->get(ctx, DType::f32, {rows, s.nchunks}).storage()->buffer;
    return s;
  }
  s.ws_o = dev.allocate(static_cast<std::size_t>(o_bytes), "split workspace");
  s.ws_lse = dev.allocate(static_cast<std::size_t>(l_bytes), "split workspace");
  return s;
}

SplitScratchScope::SplitScratchScope(Context& ctx, quant_detail::Scratch& scratch) {
  t_active = {&ctx, &scratch};
}

SplitScratchScope::~SplitScratchScope() {
  t_active = {};
}

void quant_decode_layout(quant_detail::ScratchLayout& layout, std::int64_t rows, std::int64_t lk,
                         std::int64_t d, std::uint64_t max_alloc) {
  const std::int64_t nchunks = (lk + kChunkKeys - 1) / kChunkKeys;
  if (nchunks < 2 || (max_alloc && !quant_decode_fits(max_alloc, rows, lk, d))) return;
  layout.add(DType::f32, {rows, nchunks, d});
  layout.add(DType::f32, {rows, nchunks});
}

void quant_decode_merge(rt::DeviceRuntime& dev, const char* op, const QuantDecodeSplit& s,
                        const cl::Buffer& out, std::int64_t batch, std::int64_t hq, std::int64_t lq,
                        std::int64_t lk, std::int64_t d) {
  const MergeKernelConfig cfg;
  cl::Kernel k = dev.kernel(cfg.source, cfg.chunks_kernel, cfg.defines());
  const cl_long zero = 0;
  // out [B, Hq, Lq, D] f32: element b * Hq*Lq*D + i * D + h * Lq*D + e; no lse; mode 0.
  rt::set_kernel_args(op, k, s.ws_o, s.ws_lse, static_cast<cl_int>(s.nchunks), out, zero,
                      static_cast<cl_long>(hq * lq * d), static_cast<cl_long>(d),
                      static_cast<cl_long>(lq * d), static_cast<cl_int>(0) /* SQ_DT_F32 */,
                      s.ws_lse, zero, zero, zero, zero, static_cast<cl_int>(0), s.ws_lse, zero,
                      zero, s.ws_lse, zero, zero, static_cast<cl_int>(0), static_cast<cl_int>(hq),
                      static_cast<cl_int>(d), static_cast<cl_int>(lq), static_cast<cl_int>(lk));
  dev.launch(op, k,
             cl::NDRange(static_cast<std::size_t>((d + 63) / 64 * 64),
                         static_cast<std::size_t>(hq * lq), static_cast<std::size_t>(batch)),
             cl::NDRange(64, 1, 1));
}

}  // namespace sparq::attention_detail
