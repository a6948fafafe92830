// The CPU fallback executors of the sparse-attention family (internal). Each mirrors its kernel
// in kernels_cl/sparse/ bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sparq::fallback::sparse {

// A float input in the fallback: base pointer of element 0 of the view, dtype code (0 f32,
// 1 f16, 2 bf16; 3 int8 and 4 NVFP4 pages) and strides (elements) of [B, H, L, D] with D
// contiguous.
struct In {
  const std::byte* p = nullptr;
  int dtype = 0;
  std::int64_t sb = 0, sh = 0, sr = 0;
};

// sparse_prefill.cl's problem.
struct PrefillProblem {
  In q, k, v;
  float* out = nullptr;  // [B, Hq, Lq, D] fp32 contiguous
  float* lse = nullptr;  // [B, Hq, Lq] or null
  const std::int32_t *tcount = nullptr, *tstart = nullptr, *ccount = nullptr, *cidx = nullptr;
  const std::int32_t *qpos = nullptr, *kpos = nullptr;  // null: identity order
  // Paged K/V (page_size > 0): key j of sequence b is row (page_table[b * max_pages +
  // j / page_size], slot j % page_size): k / v .sb is the page stride, .sr the slot stride.
  // Scaled pages, scales in k_sc / v_sc (addressed as the pages without d): int8 (dtype 3),
  // element = sq_att_deq_i8(code, row scale); NVFP4 (dtype 4, u8 bytes, two codes each),
  // element = sq_att_deq_fp4(code, E4M3 code of its 16-group).
  const std::int32_t* page_table = nullptr;
  std::int64_t max_pages = 0;
  int page_size = 0;
  In k_sc, v_sc;
  int B = 0, Hq = 0, Hkv = 0, Hi = 0, D = 0;
  bool share = false;  // kv_group: index row h / G
  int max_tiles = 0, max_cols = 0, lq = 0, lk = 0, off = 0;
  bool causal = true;
  int sink = 0, window = 0;  // token mask when window > 0
  float c = 0.0f;
  // Hooks (attention_common.h HOOKS), when `hooks`: window wl/wr on positions, cap2 (0: off),
  // head constants [slope2[Hq], sink2[Hq]], key mask row b at key_mask + b * mask_sb (or null).
  bool hooks = false;
  int wl = -1, wr = -1;
  float cap2 = 0.0f;
  const float* head = nullptr;
  const std::uint8_t* key_mask = nullptr;
  std::int64_t mask_sb = 0;
};
void sparse_prefill(const PrefillProblem& p);

}  // namespace sparq::fallback::sparse

namespace sparq::fallback::sparse {

// sparse_build.cl's problems. Index arrays as in SparseIndex (row = (b * Hi + hi) * nQB + qb).
// Return the OR of the rows' SQ_NORM_* codes (0: fine).
struct IndexOut {
  std::int32_t *tcount = nullptr, *tstart = nullptr, *ccount = nullptr;
  int rows = 0, nqb = 0, max_tiles = 0;
};
int build_ashape(const IndexOut& o, int lq, int lk, int off, bool causal, int n_init, int n_local);

// Mean pooling over 64-row blocks of x [B, H, L, D] into out [B, H, nblk, D].
void pool(const In& x, float* out, int B, int H, int L, int D);

int build_block_sparse(const IndexOut& o, const float* qbar, const float* kbar, int Hi, int Hq,
                       int Hkv, bool share, int nkb, int D, int top_k, int lq, int lk, int off,
                       bool causal);

}  // namespace sparq::fallback::sparse
