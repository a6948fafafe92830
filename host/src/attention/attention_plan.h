// AttentionPlan: one validated attention call (dense, varlen or paged), as both executors
// (kernels_cl/attention/*.cl through attention_launch.cpp, and fallback_cpu/attention/*.cpp)
// read it. Built by the op files after validation; every index it implies fits int64 and every
// length fits int32 (attention_validate.cpp checks both).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attention_hooks.h"
#include "sparq/attention.h"
#include "sparq/tensor.h"

namespace sparq::attention_detail {

using detail::ContextImpl;

inline constexpr int kChunkKeys = 4096;  // SQ_ATT_CHUNK of kernels_cl/attention/attention_common.h
// Plans of at most this many query rows per sequence, over more than one chunk, split the
// chunks across workers (decode.cl + merge.cl on a device, decode.cpp on the fallback).
inline constexpr std::int64_t kSplitMaxRows = 16;

// How the sequences' lengths and K/V rows are found.
enum class KvMode : int {
  contiguous = 0,  // every sequence has lq, lk; rows by strides
  varlen = 1,      // packed rows; sequence b's rows start at cu_q[b] / cu_k[b]
  paged = 2,       // K/V rows through page_table; lengths from seq_lens (queries: lq each)
};

// Element offset of (sequence b, head h, row r) = base + b*seq + r*row + h*head (+ d).
// For varlen tensors seq = 0 and r is the packed row; for paged K/V, seq is the page stride,
// row the slot stride, and b is the page id.
struct Access {
  DType dtype = DType::f32;
  std::int64_t base = 0, seq = 0, row = 0, head = 0;
  std::int64_t at(std::int64_t b, std::int64_t h, std::int64_t r) const {
    return base + b * seq + r * row + h * head;
  }
};

struct AttentionPlan {
  const char* op = "attention";
  KvMode mode = KvMode::contiguous;
  int batch = 0, hq = 0, hkv = 0, head_dim = 0;
  std::int64_t lq = 0, lk = 0;  // contiguous: of every sequence; varlen/paged: the maxima
  bool causal = false;
  float c = 0.0f;  // fp32(scale * log2(e))

  Tensor q, k, v;  // k, v: the page pools when paged
  Access q_at, k_at, v_at;
  // int8 pages (k_at/v_at.dtype == i8): fp32 scale of each (page, slot, head) row, addressed
  // like the pages without d; NVFP4 pages (u8): the row's D / 16 E4M3 codes start there;
  // undefined otherwise.
  Tensor k_scales, v_scales;
  Access ks_at, vs_at;
  Tensor out, lse;        // lse undefined when not requested
  Access out_at, lse_at;  // lse_at.row / .head / .seq in elements (dtype f32, no d)
  DType out_dtype = DType::f32;
  HookPlan hooks;  // masks and logit hooks (hooks.on == false: none)

  // Host copies (validated) of the index tensors; the device tensors are kept for the kernels.
  std::vector<std::int32_t> cu_q, cu_k;  // varlen, batch + 1 entries
  std::vector<std::int32_t> seq_lens;    // paged, batch entries
  std::vector<std::int32_t> page_table;  // paged, batch * max_pages (row-major)
  Tensor cu_q_t, cu_k_t, seq_lens_t, page_table_t;
  std::int64_t max_pages = 0;  // page_table row length
  std::int64_t num_pages = 0;  // pages in the pools (the page ids' bound)
  int page_size = 0;

  std::int64_t seq_lq(int b) const { return mode == KvMode::varlen ? cu_q[b + 1] - cu_q[b] : lq; }
  std::int64_t seq_lk(int b) const {
    if (mode == KvMode::varlen) return cu_k[b + 1] - cu_k[b];
    if (mode == KvMode::paged) return seq_lens[b];
    return lk;
  }
  std::int64_t q_row0(int b) const { return mode == KvMode::varlen ? cu_q[b] : 0; }
  std::int64_t k_row0(int b) const { return mode == KvMode::varlen ? cu_k[b] : 0; }
  std::int64_t num_chunks() const;  // chunks of the longest sequence
};

// Device objects of one execution beyond the plan's tensors. A null member is made by
// run_attention for that call alone (kernels from the context's cache, temporaries allocated);
// a public sparq::Plan keeps its own (plan.cpp).
struct DeviceResources {
  cl::Kernel main, merge;            // own kernel objects (DeviceRuntime::own_kernel)
  std::string main_key;              // main's source and defines (row kernels)
  cl::Buffer ws_o, ws_lse, scratch;  // split-decode chunk states; dense fp32 scratch
  // Every scalar argument equals the previous launch's on these kernel objects: set buffers only.
  bool reuse_scalars = false;
};

// Bytes of the device temporaries (0: none).
struct Temporaries {
  std::uint64_t ws_o = 0, ws_lse = 0, scratch = 0;
};

// The device path: dense.cl (true) or decode.cl (+ merge.cl when split). Never changes a bit.
bool uses_dense_kernel(const AttentionPlan& plan);
// Whether decode.cl splits `nchunks` chunks across work-groups, and its workspace for them.
bool splits(const AttentionPlan& plan, std::int64_t nchunks, std::uint64_t max_alloc);
Temporaries split_temporaries(const AttentionPlan& plan, std::int64_t nchunks);
// Every temporary a device run of `plan` may need when its longest sequence has up to
// max_chunks chunks.
Temporaries device_temporaries(const AttentionPlan& plan, std::int64_t max_chunks,
                               std::uint64_t max_alloc);
// res.main (and res.merge when the plan may split): own kernel objects for the path of `plan`.
void make_own_kernels(rt::DeviceRuntime& dev, const AttentionPlan& plan, bool split,
                      DeviceResources& res);

// Executes a plan on the device of ctx (attention_launch.cpp) or on the fallback.
void run_attention(ContextImpl& ctx, const AttentionPlan& plan,
                   const DeviceResources* res = nullptr);

}  // namespace sparq::attention_detail
