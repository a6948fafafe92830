// AttentionOptions::masks, validated and turned into what the executors read (the HOOKS of
// kernels_cl/attention/attention_common.h): the window, cap2 = fp32(softcap * log2 e), the head
// constants [slope2[Hq], sink2[Hq]] (fp32(x * log2 e), formed in double, rounded once) and the
// key mask. A call without masks has hooks.on == false and runs exactly the unhooked kernels.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "device_runtime.h"
#include "sparq/attention.h"
#include "sparq/context.h"

namespace sparq::attention_detail {

struct HookPlan {
  bool on = false;
  int hq = 0;
  int wl = -1, wr = -1;
  float cap2 = 0.0f;                       // 0: no soft-cap
  std::vector<float> head;                 // [slope2[Hq] (0: no ALiBi), sink2[Hq] (-inf: no sink)]
  Tensor head_t;                           // the same on the call's context (f32 [2 Hq])
  Tensor key_mask;                         // u8 [B, N] view, or undefined
  std::int64_t mask_off = 0, mask_sb = 0;  // element (b, j) at mask_off + b * mask_sb + j

  float slope2(int h) const { return head[static_cast<std::size_t>(h)]; }
  float sink2(int h) const { return head[static_cast<std::size_t>(hq + h)]; }
  // Host pointer of element (b, 0) of the key mask (fallback contexts), null when none.
  const std::uint8_t* mask_row(int b) const;
  // The build option that compiles the hooks in ("" when off: today's kernels, same cache key).
  std::string defines() const { return on ? " -DSQ_ATT_HOOKS=1" : ""; }
};

// Whether any mask or hook is requested.
bool masks_requested(const AttentionMasks& m);
// sparq::Error(unsupported) when masks are requested with a quantized precision (int8, nvfp4
// have no hooks): the dispatchers call it before routing to a quantized path.
void check_masks_precision(const char* op, const AttentionOptions& options);

// Descriptor checks of options.masks for a call with `batch` sequences, `hq` query heads and
// keys indexed by j < key_len (key_padding must be [batch, key_len], or [batch, >= key_len] when
// at_least); the precision must be fp32; varlen refuses key_padding. sparq::Error naming the
// option, the expected and the actual value on failure.
void validate_masks(const char* op, const AttentionOptions& options, std::int64_t batch,
                    std::int64_t hq, std::int64_t key_len, bool at_least, bool varlen);

// validate_masks + the values (downloads alibi_slopes and sinks: finite, slopes >= 0) + the
// device copy of the head constants. Call with the context's mutex held.
HookPlan plan_hooks(const char* op, Context& ctx, const AttentionOptions& options,
                    std::int64_t batch, std::int64_t hq, std::int64_t key_len, bool at_least,
                    bool varlen);

// Appends the kernels' hook arguments (attention_common.h order: head constants, key mask buffer,
// offset, batch stride, has_mask, wl, wr, cap2) from argument index `i`; returns the next index.
unsigned set_hook_args(cl::Kernel& kernel, unsigned i, const HookPlan& h, const cl::Buffer& dummy);

}  // namespace sparq::attention_detail
