// Shared pieces of the quantized short-query (decode) ops, sage8_decode_packed and
// fp4_decode_packed: the split rule and the chunk-state merge (kernels_cl/attention/merge.cl).
#pragma once
#include <cstdint>

#include "device_runtime.h"
#include "opencl.hpp.h"
#include "sparq/context.h"

namespace sparq::quant_detail {
class Scratch;
struct ScratchLayout;
}  // namespace sparq::quant_detail

namespace sparq::attention_detail {

// Short query blocks: Lq = 1 .. kQuantDecodeMaxRows (one 128-row Q scale / smoothing block).
inline constexpr std::int64_t kQuantDecodeMaxRows = 127;

// The split of a decode call is a function of Lk only: one work-group column per 4096-key chunk
// (the chunks of the definition), so every device computes the same chunk states and merges
// them in the same order. nchunks == 1: the kernel writes the output itself.
struct QuantDecodeSplit {
  std::int64_t nchunks = 1;
  cl::Buffer ws_o, ws_lse;  // [B * Hq * Lq, nchunks, D] and [B * Hq * Lq, nchunks] when split
  bool split() const { return nchunks > 1; }
};
// The chunk states are new buffers, or, inside a SplitScratchScope of dev's Context (a plan's
// run), that scope's scratch tensors f32 [rows, nchunks, D] then f32 [rows, nchunks]: regions of
// the plan's workspace (quant_decode_layout plans them).
QuantDecodeSplit quant_decode_split(rt::DeviceRuntime& dev, const char* op, std::int64_t rows,
                                    std::int64_t lk, std::int64_t d);
// Whether quant_decode_split's workspace for these rows fits max_alloc (a router's test).
inline bool quant_decode_fits(std::uint64_t max_alloc, std::int64_t rows, std::int64_t lk,
                              std::int64_t d) {
  const std::int64_t nchunks = (lk + 4095) / 4096;  // kChunkKeys (attention_plan.h)
  return nchunks == 1 || static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(nchunks) *
                                 static_cast<std::uint64_t>(d) * 4 <=
                             max_alloc;
}
// Adds those regions to a plan's workspace layout (nothing when Lk <= 4096 or when they do not
// fit max_alloc, 0: no limit; then no split runs: quant_decode_fits).
void quant_decode_layout(quant_detail::ScratchLayout& layout, std::int64_t rows, std::int64_t lk,
                         std::int64_t d, std::uint64_t max_alloc);

// While alive (a plan's run on this thread, the context's mutex held): the decode launches below
// it (run_sage8_slice / run_fp4_attention route Lq <= 127 there) take their split-KV chunk states
// from `scratch`, so the one-shot launch code serves the plans unchanged. Not nested.
class SplitScratchScope {
 public:
  SplitScratchScope(Context& ctx, quant_detail::Scratch& scratch);
  ~SplitScratchScope();
  SplitScratchScope(const SplitScratchScope&) = delete;
  SplitScratchScope& operator=(const SplitScratchScope&) = delete;
};

// merge.cl's attention_merge_chunks over the workspace into out (f32 [B, Hq, Lq, D]).
void quant_decode_merge(rt::DeviceRuntime& dev, const char* op, const QuantDecodeSplit& s,
                        const cl::Buffer& out, std::int64_t batch, std::int64_t hq, std::int64_t lq,
                        std::int64_t lk, std::int64_t d);

}  // namespace sparq::attention_detail
