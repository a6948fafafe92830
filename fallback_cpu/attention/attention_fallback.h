// The CPU executors of the attention ops (bit-exact twins of kernels_cl/attention/*.cl; the
// arithmetic order is the one stated in kernels_cl/attention/attention_common.h).
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "fp_env.h"
#include "host/src/attention/attention_plan.h"

namespace sparq::fallback {

// dense.cpp: every attention plan (dense, varlen, paged). Rows are independent: each row block
// walks all of its chunks and merges in place; plans of few query rows (<= kSplitMaxRows) over
// several chunks go to attention_split (decode.cpp): chunk states in parallel, merged after.
void attention(const attention_detail::AttentionPlan& plan);
void attention_split(const attention_detail::AttentionPlan& plan);

// kv_append.cpp: one tensor (K or V) of kernels_cl/attention/kv_append.cl. src [B, Hkv, n, D] read
// as src_at.at(b, h, t); pages written at dst_at.at(page, h, slot), int8 row scales at
// sc_at.at(page, h, slot); positions from seq_lens (before the append) and page_table.
struct KvAppendProblem {
  Tensor src, dst, scales;
  attention_detail::Access src_at, dst_at, sc_at;
  const std::int32_t* seq_lens = nullptr;
  const std::int32_t* page_table = nullptr;
  std::int64_t max_pages = 0;
  int batch = 0, hkv = 0, n = 0, d = 0, page_size = 0;
  // Quest metadata of K (kv_append.cl "meta == 1"): fp32 [num_pages, Hkv, D] host arrays, and
  // npg = the most pages one (b, h) touches; kmin == nullptr: no metadata.
  float* kmin = nullptr;
  float* kmax = nullptr;
  int npg = 0;
};
void kv_append(const KvAppendProblem& problem);

// merge.cpp: merge_states over `rows` rows of `d` elements. Element (row, e) of tensor t is at
// t.base + offset(row) + e, with offset(row) from the 4-d decomposition of row over `dims`.
struct MergeOperand {
  const std::byte* data = nullptr;
  DType dtype = DType::f32;
  std::int64_t base = 0;
  std::int64_t strides[4] = {0, 0, 0, 0};  // of the (up to 4, padded with size-1) leading dims
};
struct MergeProblem {
  std::int64_t dims[4] = {1, 1, 1, 1};
  std::int64_t d = 0;
  MergeOperand out_a, lse_a, out_b, lse_b;
  float* out = nullptr;  // contiguous [rows, d]
  float* lse = nullptr;  // contiguous [rows]
};
void merge_states(const MergeProblem& problem);

// Runs body(i) for i in [0, n) on up to hardware_concurrency threads, each inside
// ScopedExactFpEnv (denormals kept). Items must be independent: threading never changes bits.
template <class F>
void parallel_for(std::size_t n, F&& body) {
  const std::size_t threads =
      std::min<std::size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    rt::ScopedExactFpEnv env;
    for (std::size_t i; (i = next.fetch_add(1)) < n;) body(i);
  };
  if (threads <= 1) {
    worker();
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

}  // namespace sparq::fallback
