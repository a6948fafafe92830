#pragma OPENCL FP_CONTRACT OFF
// sparse_prefill.cl — exact fp32 block-sparse attention prefill over a sparq::SparseIndex (spec
// §3). Bit-identical to fallback_cpu/sparse/sparse_prefill.cpp, whatever the launch shape.
//
// THE DEFINITION (docs/sparse_attention.md), per query row i of (b, query head h); kv head
// h / G; index row (b, hi, qb) with hi = h (per_q_head) or h / G (kv_group), qb = i / 64:
//   c = fp32(scale * log2 e) (host, double, one rounding); q'[d] = q[i][d] * c
//   s_j = dot(q', k_j): acc = 0; for d ascending: acc = fma(q'[d], k_j[d], acc)
//   visible(i, j) = 0 <= j < Lk && (!causal || kpos(j) <= qpos(i))
//                   && (no token mask || kpos(j) < sink || kpos(j) > qpos(i) - window)
//   qpos(i) = off + i, kpos(j) = j unless the index carries qpos/kpos.
// Steps: the tiles in list order (keys tile_start[t] + 0..63), then the columns in chunks of 64
// list entries (col_index[64u .. 64u + 63]). Every step, from the row state (m, l, acc):
//   m_t = mx over the step's visible keys (NaN-propagating, any order: max is exact)
//   m_new = mx(m, m_t); if m_new == -inf: nothing visible yet, state unchanged
//   alpha = sq_exp2(m - m_new); p_j = sq_exp2(s_j - m_new) for visible j
//   r = 0; for visible j ascending (slot order): r = r + p_j;  l = fma(l, alpha, r)
//   acc[d] = acc[d] * alpha, then for visible j in slot order: acc[d] = fma(p_j, v_j[d], acc[d])
//   m = m_new
// Segments (dense attention's 4096-key chunks, attention_common.h): a tile whose start >> 12
// differs from the previous tile's starts a new segment from a fresh state (m = -inf, l = 0,
// acc = 0); the column steps continue the last segment. Each segment's result
// (acc / l, m + sq_log2(l); empty when l == 0) is merged left to right into R with
// merge_states' formula (sq_att_merge_*). Output O[i] = R's o (0 when the row sees no key),
// lse2[i] = R's lse (-inf then). With the dense index this is exactly sparq::attention().
//
// Launch: local (NT), global (NT * Hq, nQB, B); work-group (h, nQB-1-qb, b) owns rows
// [64 qb, 64 qb + 64) of (b, h). The body is attention/prefill_body.h, shared with dense.cl (the
// same walk over the implicit full index): the same layout, work split and speed knobs HEAD_DIM
// (64/128), ATT_UNROLL, ATT_PREFETCH, ATT_THREADS (128/256; DenseKernelConfig, SPARQ_TUNE_DENSE),
// none of which changes an operation or its order. Slot keys and positions are staged in local
// memory one step ahead; an invisible (row, slot) holds -1 in P (p >= 0 or NaN otherwise), so
// the row sum and the masked P.V path skip exactly the invisible keys.
// Out: O and lse with the strides the host passes (sparq::attention: fp32 contiguous
// [B, Hq, Lq, D] and [B, Hq, Lq]); O is also the merged state R between segments (`scratch`,
// the same buffer), each element owned by one work-item; R's lse lives in local memory.
#define SQ_PREFILL_SPARSE 1
#include "attention/prefill_body.h"
