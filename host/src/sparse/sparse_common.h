// Helpers shared by the sparse-attention op files (internal): argument checks, the builder seal,
// index geometry.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "context_impl.h"
#include "errors.h"
#include "opencl.hpp.h"
#include "sparq/sparse.h"

namespace sparq::detail {

// An index made by sparq's builders: the storages and the metadata it was made with. An index
// whose tensors or metadata differ from its seal is treated as caller-made (validated).
struct SparseSeal {
  std::shared_ptr<Storage> tile_count, tile_start, col_count, col_index, qpos, kpos;
  std::vector<TensorDesc> descs;
  int B = 0, Hi = 0, nqb = 0, max_tiles = 0, max_cols = 0;
  bool causal = true;
  std::int64_t Lq = 0, Lk = 0, off = 0;
  IndexSharing sharing = IndexSharing::per_q_head;
  int sink_tokens = 0, window_tokens = 0;
};

}  // namespace sparq::detail

namespace sparq::sparse_detail {

constexpr int kTile = 64;
// Largest key length: int32 positions with room for one 4096-key chunk of slack (as dense).
constexpr std::int64_t kMaxLen = (std::int64_t{1} << 31) - 8192;

template <class... Args>
void require(const char* op, bool ok, fmt::format_string<Args...> f, Args&&... args) {
  if (!ok) rt::fail(ErrorCode::invalid_argument, op, f, std::forward<Args>(args)...);
}

inline int num_qblocks(std::int64_t lq) {
  return static_cast<int>((lq + kTile - 1) / kTile);
}

// Smallest / largest query position of block qb (identity order, or from qpos of batch b).
inline void block_pos(const HostIndex& x, int b, int qb, std::int32_t& p0, std::int32_t& p1) {
  const std::int64_t r0 = std::int64_t{qb} * kTile;
  const std::int64_t r1 = std::min<std::int64_t>(r0 + kTile, x.Lq);
  if (x.qpos.empty()) {
    p0 = static_cast<std::int32_t>(x.off + r0);
    p1 = static_cast<std::int32_t>(x.off + r1 - 1);
    return;
  }
  const std::int32_t* q = x.qpos.data() + b * x.Lq;
  p0 = q[r0];
  p1 = q[r0];
  for (std::int64_t i = r0 + 1; i < r1; ++i) {
    p0 = std::min(p0, q[i]);
    p1 = std::max(p1, q[i]);
  }
}

// Seals a freshly built index (its tensors must not be shared with the caller before).
void seal_index(SparseIndex& idx);
// True when idx carries a seal that matches its tensors and metadata.
bool sealed(const SparseIndex& idx);

// Creates the int32 tensors of an index from host arrays (zero-size arrays allowed).
SparseIndex make_index(Context& ctx, const HostIndex& h);

// Host rows of a host index: pointers to row (b, hi, qb).
inline std::int64_t row_of(const HostIndex& x, int b, int hi, int qb) {
  return (std::int64_t{b} * x.Hi + hi) * x.nqb + qb;
}

}  // namespace sparq::sparse_detail
