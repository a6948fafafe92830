// Dynamic sparse attention (docs/sparse_attention.md, spec specs/sparse_attention.md):
// one block-sparse index format (SparseIndex) that every pattern converts into, index builders
// (A-shape, block-sparse, ...; each a device kernel with a bit-exact fallback) and the exact fp32
// block-sparse prefill kernel that consumes the index.
//
// Kernel definition (per query row i; kernels_cl/sparse/sparse_prefill.cl states it in full):
//   q' = q * c (c = fp32(scale * log2 e)); the row walks its tiles (64 keys from tile_start) in
//   list order, then its extra columns in chunks of 64 list entries, with the online base-2
//   softmax of dense attention (kernels_cl/attention/attention_common.h). The state restarts at
//   every 4096-key chunk boundary of the tile starts (start >> 12 changes) and the segment
//   states are merged left to right with merge_states' formula — exactly dense attention's
//   chunk structure, so the dense index reproduces sparq::attention() bit for bit at any length.
//   Columns continue the last tile segment's state. A row that sees no key gives O = 0,
//   lse2 = -inf.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sparq/attention.h"
#include "sparq/context.h"
#include "sparq/export.h"
#include "sparq/index_sharing.h"
#include "sparq/mminference.h"
#include "sparq/tensor.h"

namespace sparq {

namespace detail {
struct SparseSeal;  // inside the library: marks an index made by sparq's own builders
}

// IndexSharing (sparq/index_sharing.h): whose index rows a query head uses — its own (Hi = Hq,
// default) or one shared by the G = Hq / Hkv query heads of a KV group (Hi = Hkv, row h / G).

// The common block-sparse index (spec §2). Shapes, with nQB = ceil(Lq / 64):
//   tile_count int32 [B, Hi, nQB]            tile_start int32 [B, Hi, nQB, max_tiles]
//   col_count  int32 [B, Hi, nQB]            col_index  int32 [B, Hi, nQB, max_cols]
//   qpos int32 [B, Lq], kpos int32 [B, Lk]   (only for a permuted order; else undefined)
// All tensors are contiguous and owned by one Context. A tile is the 64 keys [start, start + 64)
// (keys >= Lk masked). Invariants (validated on the host for any index a caller passes in):
//  1. 0 <= tile_count <= max_tiles, 0 <= col_count <= max_cols;
//  2. tile starts strictly ascending, start[t+1] >= start[t] + 64;
//  3. 0 <= start < Lk, 0 <= col < Lk;
//  4. causal: every tile has a key visible to some row of its block (min kpos over the tile
//     <= P1(qb)), every column too (kpos(col) <= P1(qb));
//  5. columns strictly ascending and none inside a tile of the same row;
//  6. causal: every row's own key (kpos(j) == qpos(i)) lies in a tile; non-causal: >= 1 tile;
//  7. unused slots hold -1;  8. tile_start % 16 == 0.
// qpos/kpos, when present: kpos[b] is a permutation of [0, Lk), qpos values lie in [0, Lk).
struct SPARQ_API SparseIndex {
  // Not an aggregate (so attention(ctx, q, k, v, {.causal = true}) still names AttentionOptions).
  SparseIndex() = default;

  Tensor tile_count, tile_start, col_count, col_index;
  Tensor qpos, kpos;  // undefined = identity order: qpos(i) = off + i, kpos(j) = j
  int B = 0, Hi = 0, nqb = 0;
  int max_tiles = 0, max_cols = 0;
  bool causal = true;
  std::int64_t Lq = 0, Lk = 0, off = 0;  // off = Lk - Lq
  IndexSharing sharing = IndexSharing::per_q_head;
  // Token-exact A-shape (AShape::exact): the kernel also masks keys with
  // !(kpos(j) < sink_tokens || kpos(j) > qpos(i) - window_tokens). 0/0 = off.
  int sink_tokens = 0, window_tokens = 0;
  // from_block_mask: true when diagonal tiles absent from the mask were added (invariant 6).
  bool added_diagonal = false;
  // Set by sparq's builders (an index they made is valid by construction and is not downloaded
  // for validation); an index assembled or modified by the caller has none and is validated.
  std::shared_ptr<const detail::SparseSeal> seal;
};

// ---- patterns (spec §5-§7). Add new patterns to the Pattern variant below. ----

// Every key each row may see (the dense index: tiles 0, 64, ... up to P1(qb), no columns).
struct SPARQ_API Dense {};

// Sink + local window at tile granularity (§5.1): intervals [0, min(n_init, end)) and
// [max(0, P0 - n_local + 1), end), normalized. exact = true: the kernel also masks per token
// (MInference's streaming kernel: j < n_init || j > qpos(i) - n_local).
struct SPARQ_API AShape {
  int n_init = 128, n_local = 3968;
  bool exact = false;
};

// MInference block-sparse (§5.3): mean-pooled 64-blocks, block score dot(qbar, kbar), the
// diagonal blocks and block 0 forced, top_k blocks per query block in total.
struct SPARQ_API BlockSparse {
  int top_k = 100;
};

// MInference vertical-slash (§5.2): a probe of the last 64 queries scores key columns
// (vertical lines) and diagonals (slash lines, distance t = qpos - j); the top-V columns and top-S
// diagonals become tiles (64-wide, following the diagonal) + columns per query block. Budgets
// after ratio: V = min(Lk, max(vertical * ratio, 30)), S = min(Lk, max(slash * ratio, 50))
// (MInference's clamps); a budget of exactly 0 selects nothing (the diagonal is always kept).
// Columns j < forced_cols and diagonals t < forced_diags are forced. Causal only. With
// IndexSharing::kv_group the probe probabilities of a group's heads are summed first.
struct SPARQ_API VerticalSlash {
  int vertical = 1000, slash = 6096;
  int last_q = 64;  // probe rows; only 64 (MInference) is supported
  int forced_cols = 30, forced_diags = 100;
  float ratio = 1.0f;  // multiplies both budgets (budgets as a fraction of a reference)
};

// XAttention (§6): antidiagonal scores with stride S in {4, 8, 16} estimate 128x128 block mass;
// per 128-row query block, the first and diagonal blocks plus the heaviest others until their
// mass reaches threshold * total (the block that crosses it is kept). Requires Lk - Lq to be a
// multiple of 128. Thresholds in (0, 1]: one for all heads, or per query head
// (per_head_threshold, [Hq]), or a table [layer][head] indexed by IndexOptions::layer
// (threshold_table, e.g. from load_xattention_thresholds). kv_group: block scores summed over
// the group's heads, the largest threshold of the group used.
struct SPARQ_API XAttention {
  int stride = 8;
  float threshold = 0.9f;
  std::optional<std::vector<float>> per_head_threshold;
  std::vector<std::vector<float>> threshold_table;
};

// Reads a JSON list [layer][head] -> tau (every value in (0, 1]) for XAttention::threshold_table
// (the layout of XAttention's per-head tables, e.g. xattn/threshold for Llama-3.1-8B).
SPARQ_API std::vector<std::vector<float>> load_xattention_thresholds(const std::string& path);

// MInference's per-head patterns (§5.4, minference/configs/*.json): heads[layer][head] is the
// head's pattern (VerticalSlash, AShape or BlockSparse), chosen by IndexOptions::layer. A head
// past the end of its layer's list uses VerticalSlash{1000, 6096}. Each head's index rows are
// built with its own pattern and capacity; the index gets the largest capacities (unused slots
// -1). Per query head only (IndexSharing::kv_group is refused).
using HeadPattern = std::variant<VerticalSlash, AShape, BlockSparse>;
struct SPARQ_API PerHeadConfig {
  std::vector<std::vector<HeadPattern>> heads;
};

// Reads MInference's config JSON: a list over layers of {"<head>": [type, a, b, score]} with type
// "vertical_and_slash" (a, b = vertical, slash), "stream_llm" (a, b = n_init, n_local; A-shape at
// tile granularity) or "block_sparse" (MInference's kernel ignores a, b and keeps 100 blocks:
// BlockSparse{100}). Missing heads: VerticalSlash{1000, 6096}. Files are loaded unchanged.
SPARQ_API PerHeadConfig load_minference_config(const std::string& path);

// MMInference modality boundaries (§7.4): none (the grid over the whole sequence), Q-boundary
// (query rows grouped by modality, each modality's rows with lines from its own probe) or
// 2D-boundary (queries and keys grouped by modality). Grid::modality gives the ids.
enum class Boundary { none, q_boundary, two_d };

// MMInference grid head (§7.3), built in a PERMUTED order (docs/sparse_builders.md): inside each
// video segment the tokens go phase-major (grid_permutation), so the grid's lines and its
// frame-stride diagonals become contiguous 64-blocks; then pooled block scores pick top_k key
// blocks per query block, the `lines` heaviest permuted tiles of the probe's column mass are added
// to every block, and every row's own tile and the sink tile are forced. The index carries qpos
// and kpos (kpos = the key permutation, qpos = off + the query permutation); run it on
// unpermuted Q/K/V with permuted_attention() (or attention(..., pattern, ...), which does so).
// Tokens per frame: a segment's frame_tokens when > 0, else `stride` when > 0, else chosen from
// the probe (§7.3 step 2, candidates 8..min(2048, n/2), n = segment length). Causal only.
struct SPARQ_API Grid {
  int stride = 0;  // tokens per frame for segments without frame_tokens; 0 = estimate
  int top_k = 100, lines = 16;
  std::vector<VideoSegment> segments;  // original key positions [start, end)
  Boundary boundary = Boundary::none;
  std::vector<std::int32_t> modality;  // per key position [Lk], ids >= 0 (boundary heads only)
};

using Pattern =
    std::variant<Dense, AShape, BlockSparse, VerticalSlash, XAttention, PerHeadConfig, Grid>;

struct SPARQ_API IndexOptions {
  bool causal = true;
  IndexSharing sharing = IndexSharing::per_q_head;
  int layer = -1;                 // the caller's layer id; -1 = none
  std::vector<int> dense_layers;  // layers that use the dense index whatever the pattern
};

// Builds the index of `pattern` for Q [B, Hq, Lq, D] and K [B, Hkv, Lk, D] (fp32/f16/bf16, D
// contiguous, D in {64, 128}, Lq <= Lk). Device kernel or fallback, bit-identical int arrays.
SPARQ_API SparseIndex build_index(Context& ctx, const Tensor& q, const Tensor& k,
                                  const Pattern& pattern, const IndexOptions& options = {});

// The dense index of a shape (tiles 0, 64, ... up to P1(qb); no columns) without reading Q/K.
SPARQ_API SparseIndex dense_index(Context& ctx, int B, int Hi, std::int64_t Lq, std::int64_t Lk,
                                  bool causal, IndexSharing sharing = IndexSharing::per_q_head);

// Sparse prefill (spec §3) over a given index: validated against the call (shape, causal,
// lengths, sharing) and against invariants 1-8 unless it came from a sparq builder, before any
// kernel runs. options.causal must equal index.causal; out_dtype must be f32.
// Q [B, Hq, Lq, D], K/V [B, Hkv, Lk, D], D in {64, 128}; any float storage, D contiguous.
SPARQ_API AttentionResult attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const SparseIndex& index, const AttentionOptions& options = {});

// Sparse prefill over a paged KV cache (chunked prefill in a serving engine): key j of sequence b
// is read from page kv.page_table[b][j / page_size], slot j % page_size (NHD or HND; f32, f16,
// bf16 or int8 pages with row scales, an int8 element being sq_att_deq_i8(code, scale)). The
// same definition and bits as attention(q, k, v, index, options) over the same K/V stored
// contiguously. Q [B, Hq, Lq, D], D in {64, 128}; one index describes one key length, so every
// kv.seq_lens[b] must equal index.Lk (sequences of other lengths: separate calls). fp32 compute
// and output; masks as for the contiguous call.
SPARQ_API AttentionResult attention_paged(Context& ctx, const Tensor& q, const PagedKV& kv,
                                          const SparseIndex& index,
                                          const AttentionOptions& options = {});

// build_index (with index_options.causal = options.causal) + the sparse kernel; an index built in
// a permuted order (Grid) runs through permuted_attention, so O is in the original order.
SPARQ_API AttentionResult attention(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Pattern& pattern, const AttentionOptions& options,
                                    const IndexOptions& index_options = {});

// Attention on Q/K/V in their ORIGINAL order with an index built in a permuted order (qpos/kpos
// set, e.g. by Grid): Q is gathered by qpos - off, K and V by kpos (permute_rows), the sparse
// kernel runs in the permuted order, and O (and lse) are scattered back (unpermute_rows). An index
// in the identity order runs attention(..., index, ...) unchanged. Copies are exact, so the
// result is the permuted kernel's, row for row.
SPARQ_API AttentionResult permuted_attention(Context& ctx, const Tensor& q, const Tensor& k,
                                             const Tensor& v, const SparseIndex& index,
                                             const AttentionOptions& options = {});

// The permutations (new -> old) of a permuted index: int32 [B, Lq] (qpos - off) and [B, Lk]
// (kpos), for permute_rows / unpermute_rows.
struct SPARQ_API IndexPermutation {
  Tensor q, k;
};
SPARQ_API IndexPermutation index_permutation(Context& ctx, const SparseIndex& index);

// Checks invariants 1-8 (downloads the index): throws sparq::Error(invalid_argument) naming the
// field and (b, h, qb, slot) of the first violation.
SPARQ_API void validate_index(const SparseIndex& index);

// Host copy of an index (what save/load, validation and normalization work on).
struct SPARQ_API HostIndex {
  std::vector<std::int32_t> tile_count, tile_start, col_count, col_index, qpos, kpos;
  int B = 0, Hi = 0, nqb = 0, max_tiles = 0, max_cols = 0;
  bool causal = true;
  std::int64_t Lq = 0, Lk = 0, off = 0;
  IndexSharing sharing = IndexSharing::per_q_head;
  int sink_tokens = 0, window_tokens = 0;
  bool added_diagonal = false;
};
SPARQ_API HostIndex download_index(const SparseIndex& index);
SPARQ_API SparseIndex upload_index(Context& ctx, const HostIndex& index);  // validates
SPARQ_API void validate_index(const HostIndex& index);

// .sqidx files: a 128-byte little-endian header (magic "SQIDX001", sizes, flags) followed by the
// int32 arrays tile_count, tile_start, col_count, col_index[, qpos, kpos]. save writes
// path + ".tmp" and renames it over path. load validates the index.
SPARQ_API void save_index(const SparseIndex& index, const std::string& path);
SPARQ_API SparseIndex load_index(Context& ctx, const std::string& path);

// Interop with boolean block masks [B, Hi, ceil(Lq/block), ceil(Lk/block)] (u8 0/1), block 64
// or 128. to_block_mask marks every (query block, key block) pair that some computed key of some
// row falls into. from_block_mask turns each set block into a key interval for the index rows
// it covers, adds the diagonal (invariant 6; sets added_diagonal when that added a tile), and
// normalizes (§2).
SPARQ_API Tensor to_block_mask(Context& ctx, const SparseIndex& index, int block);
SPARQ_API SparseIndex from_block_mask(Context& ctx, const Tensor& mask, int block, std::int64_t Lq,
                                      std::int64_t Lk, bool causal,
                                      IndexSharing sharing = IndexSharing::per_q_head);

// The shared normalization (§2) of one index row, host side (the device builders call the same
// code, kernels_cl/sparse/sparse_select.h). Intervals [a, e) are clipped to
// [0, min(P1 + 1, Lk)) when causal with the identity order (kpos empty), else to [0, Lk).
// Throws sparq::Error(internal) on capacity overflow.
struct SPARQ_API NormalizedRow {
  std::vector<std::int32_t> tiles, cols;
};
SPARQ_API NormalizedRow normalize_index_row(
    std::vector<std::pair<std::int32_t, std::int32_t>> intervals, std::vector<std::int32_t> columns,
    std::int32_t p1, std::int32_t lk, bool causal, const std::vector<std::int32_t>& kpos,
    int max_tiles, int max_cols);

}  // namespace sparq
