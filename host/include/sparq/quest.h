// Quest page-sparse decode (specs/sparse_attention.md §8; Tang et al., arXiv 2406.10774).
//
// A decode query (one row per sequence and query head) attends to the pages of a KV cache that
// are most likely to matter: per page and KV head the elementwise min/max of its keys is kept
// (metadata), an upper bound U of q.k over the page is formed from it, and the last page plus the
// top (page_budget - 1) pages by U are read. Every step is bit-identical on every OpenCL device
// and on the fallback. docs/quest.md states the arithmetic order.
//
// KV caches: a PagedKV (attention.h; HND [num_pages, Hkv, Pg, D] as the spec writes it, NHD
// accepted too), or a contiguous cache K/V [B, Hkv, Lk, D] with page p = tokens [Pg p, Pg p + Pg).
// fp32 storage; D in {64, 128}; page sizes 16..128.
#pragma once
#include <cstdint>
#include <vector>

#include "sparq/attention.h"
#include "sparq/context.h"
#include "sparq/index_sharing.h"
#include "sparq/tensor.h"

namespace sparq {

struct SPARQ_API QuestOptions {
  int page_size = 16;       // tokens per page, 16..128, a multiple of 16 (must match the cache)
  int token_budget = 2048;  // page_budget = token_budget / page_size, the last page included
  std::vector<int> dense_layers = {0, 1};           // layers that read every page (repo and paper)
  IndexSharing sharing = IndexSharing::per_q_head;  // kv_group: bounds summed over the group
};

// The page metadata of one layer's cache and the options it was built with. kmin/kmax are fp32
// [entries, Hkv, D]: entries = num_pages of a paged cache (indexed by physical page), or
// B * ceil(Lk / Pg) of a contiguous cache (entry b * ceil(Lk / Pg) + p).
struct SPARQ_API QuestState {
  Tensor kmin, kmax;
  QuestOptions options;
};

struct SPARQ_API DecodeOptions {
  int layer = -1;            // a layer in options.dense_layers reads every page; -1: none
  float scale = 0.0f;        // 0 = 1/sqrt(D); otherwise finite and > 0
  int pages_per_split = 32;  // split-K: selected pages are cut into splits of this many
  bool return_lse = false;   // base-2 LSE of the scaled scores, [B, Hq]
};

// Selected pages of one decode step. Hi = Hq (per_q_head) or Hkv (kv_group).
struct SPARQ_API QuestSelection {
  Tensor pages;   // int32 [B, Hi, cap]: logical page numbers ascending (last page last); -1 unused
  Tensor counts;  // int32 [B, Hi]
  Tensor bounds;  // fp32 [B, Hi, max_pages]: U per page (group sum for kv_group); 0 past n_pages
  bool all_pages = false;  // a dense layer: pages/bounds are not formed, every page is read
  int page_size = 0;       // of the cache it was made for (0: unknown; contiguous caches: 16)
};

// Computes the metadata of every page in use (seq_lens / page tables) of a paged cache.
SPARQ_API QuestState quest_init(Context& ctx, const PagedKV& kv, const QuestOptions& options = {});
// Contiguous cache K [B, Hkv, Lk, D]; seq_lens int32 [B] (undefined: every sequence has Lk).
SPARQ_API QuestState quest_init(Context& ctx, const Tensor& k, const Tensor& seq_lens,
                                const QuestOptions& options = {});

// After appending tokens [prev_lens[b], seq_lens[b]) of each sequence to the cache: updates the
// metadata of the pages they touch in place (equal to a recomputation, bit for bit). prev_lens
// int32 [B]; undefined = recompute every page in use.
SPARQ_API void quest_update_metadata(Context& ctx, const PagedKV& kv, QuestState& state,
                                     const Tensor& prev_lens = {});
SPARQ_API void quest_update_metadata(Context& ctx, const Tensor& k, const Tensor& seq_lens,
                                     QuestState& state, const Tensor& prev_lens = {});

// Bounds and page selection for query q [B, Hq, D] (or [B, Hq, 1, D]).
SPARQ_API QuestSelection quest_select(Context& ctx, const Tensor& q, const PagedKV& kv,
                                      const QuestState& state, const DecodeOptions& options = {});
SPARQ_API QuestSelection quest_select(Context& ctx, const Tensor& q, const Tensor& k,
                                      const Tensor& seq_lens, const QuestState& state,
                                      const DecodeOptions& options = {});

// The page-sparse decode kernel over a selection (sharing from `state`; state may be null for
// a dense call with selection.all_pages). Output [B, Hq, D] (Q's shape), lse [B, Hq].
SPARQ_API AttentionResult sparse_attention_decode(Context& ctx, const Tensor& q, const PagedKV& kv,
                                                  const QuestSelection& selection,
                                                  IndexSharing sharing,
                                                  const DecodeOptions& options = {});
SPARQ_API AttentionResult sparse_attention_decode(Context& ctx, const Tensor& q, const Tensor& k,
                                                  const Tensor& v, const Tensor& seq_lens,
                                                  const QuestSelection& selection,
                                                  IndexSharing sharing,
                                                  const DecodeOptions& options = {});

// Quest decode: quest_select + sparse_attention_decode. state == nullptr reads every page (the
// dense paged decode of the same definition).
SPARQ_API AttentionResult decode(Context& ctx, const Tensor& q, const PagedKV& kv,
                                 const QuestState* state, const DecodeOptions& options = {});
SPARQ_API AttentionResult decode(Context& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& seq_lens, const QuestState* state,
                                 const DecodeOptions& options = {});

}  // namespace sparq
