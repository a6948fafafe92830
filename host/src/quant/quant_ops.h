// Internal quantizer ops shared by the quantized attention paths (int8 and NVFP4): each runs
// the kernel of kernels_cl/quant/ on a device Context or its fallback twin, and returns new
// contiguous tensors. Callers validate shapes first and hold the Context's mutex.
//   x, q, k, v: float storage (f32/f16/bf16) [B, H, L, D] with D contiguous, any outer strides.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "context_impl.h"
#include "sparq/context.h"
#include "sparq/tensor.h"

namespace sparq::quant_detail {

// Where the n-th tensor a plan's run asks for lives in the plan's workspace: a region of `bytes`
// at byte `at` (regions may share bytes: a run's later tensor may reuse an earlier one's once its
// readers are enqueued, e.g. the delta slices of one loop).
struct ScratchRegion {
  DType dtype = DType::u8;
  std::vector<std::int64_t> shape;
  std::uint64_t at = 0;
};
// The workspace of a quantized plan: its regions in the order a run asks for them, each starting
// at a multiple of align (the device's CL_DEVICE_MEM_BASE_ADDR_ALIGN, at least 4096 bytes).
struct ScratchLayout {
  std::vector<ScratchRegion> regions;
  std::uint64_t bytes = 0;  // the regions' end (sizes rounded up to align): workspace_bytes()
  std::uint64_t align = 4096;
  // A region of its own after the others; its index.
  std::size_t add(DType t, std::vector<std::int64_t> shape);
  // A region at region `first`'s bytes (not larger than it), or a new one when first == npos;
  // the index of the region whose bytes it uses.
  static constexpr std::size_t npos = ~std::size_t{0};
  std::size_t add_at(std::size_t first, DType t, std::vector<std::int64_t> shape);
};

// Temporaries of a sparq::Plan (quantized attention) across its runs. Unbound (the fallback, or
// no layout): the n-th tensor asked for in a run is the n-th of the previous run when its dtype
// and shape match (a plan's runs ask in the same order), else a new one that replaces it. Bound
// to a workspace (device plans): a request that matches the layout's next planned region (dtype
// and shape, searched forward) is a sub-buffer of the workspace at that region; any other is
// served as unbound and counted (unplanned(): 0 when the layout is the pipeline's). A run's
// writes into them follow the previous run's reads on the in-order queue (the fallback runs
// synchronously). The ops' results never come from here, only their internal tensors.
class Scratch {
 public:
  void restart() {
    next_ = 0;
    next_region_ = 0;
  }
  Tensor get(Context& ctx, DType t, std::vector<std::int64_t> shape);

  void set_layout(ScratchLayout layout);
  const ScratchLayout& layout() const { return layout_; }
  // Carves the layout's regions from `workspace` (a device u8 tensor of >= layout().bytes bytes
  // from an offset that is a multiple of align, already checked); rebinding the same storage and
  // offset keeps the sub-buffers made before.
  void bind(const Tensor& workspace);
  std::uint64_t unplanned() const { return unplanned_; }

 private:
  std::vector<Tensor> tensors_;
  std::size_t next_ = 0;
  ScratchLayout layout_;
  std::vector<Tensor> carved_;  // per region, made on first use after bind
  std::shared_ptr<detail::Storage> bound_;
  std::int64_t bound_offset_ = -1;
  std::size_t next_region_ = 0;
  std::uint64_t unplanned_ = 0;
};

// Requests of every bound Scratch in this process that their layout lacked (tests: stays 0).
std::uint64_t unplanned_scratch_requests();

// A new contiguous tensor, or scratch's (when given).
Tensor new_temp(Context& ctx, DType t, std::vector<std::int64_t> shape, Scratch* scratch);

// fp32(1 / n), rounded once from double (the r(n) of specs/fp4_attention.md §2.4).
float reciprocal(std::int64_t n);

// Means of x's rows in blocks of block_rows (the last block may be shorter; block_rows >= L
// gives one block = per-head / K mean): f32 [B, H, ceil(L / block_rows), D] (§2.4).
// scratch (every op here): where the result's tensors come from (null: new tensors).
Tensor block_mean(Context& ctx, const Tensor& x, std::int64_t block_rows,
                  Scratch* scratch = nullptr);

// Smoothing bias delta for query blocks [blk0, blk0 + nblk) of qm (f32 [B, Hq, nblk_q, D]):
// f32 [B, Hq, nblk, Lk] = sum_d qm[d] * (k[j][d] - km[d]); km f32 [B, Hkv, 1, D] or undefined
// (K smoothing off). D <= 128.
Tensor smooth_delta(Context& ctx, const Tensor& qm, std::int64_t blk0, std::int64_t nblk,
                    const Tensor& k, const Tensor& km, Scratch* scratch = nullptr);

// int8 per-block quantization (§5) of (x - mean) * mult: mean f32 [B, H, nblk_m, D] with blocks
// of mean_rows rows, or undefined. codes i8 [B, H, L, D], scales f32 [B, H, ceil(L / block_rows)].
struct Int8Quantized {
  Tensor codes, scales;
};
Int8Quantized int8_blocks(Context& ctx, const Tensor& x, const Tensor& mean, std::int64_t mean_rows,
                          float mult, std::int64_t block_rows, Scratch* scratch = nullptr);

// int8 V (§5): codes i8 [B, H, D, Lk64], scales f32 [B, H, D, Lk64 / 16], Lk64 = ceil(Lk/64)*64.
Int8Quantized int8_v(Context& ctx, const Tensor& v, Scratch* scratch = nullptr);

}  // namespace sparq::quant_detail
