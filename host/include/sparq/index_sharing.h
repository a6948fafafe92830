// IndexSharing: whose sparse selection a query head uses (specs/sparse_attention.md §2, §8).
// Shared by the sparse-attention index (sparq/sparse.h) and Quest decode (sparq/quest.h).
#pragma once
#include <cstdint>

namespace sparq {

// One selection per query head (Hi = Hq, default, what the papers do), or one per KV head shared
// by its G = Hq / Hkv query heads (Hi = Hkv; query head h uses row h / G): the K/V a selection
// names is then read once for the whole group.
enum class IndexSharing : std::uint8_t { per_q_head = 0, kv_group = 1 };

}  // namespace sparq
