// The fallback's row-block runner, shared by dense.cpp (whole rows, chunks merged in place)
// and decode.cpp (one chunk state per work item, merged after): the defined order of
// kernels_cl/attention/attention_common.h for a block of up to 64 query rows of one
// (sequence, head). Internal to fallback_cpu/attention.
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "attention/attention_common.h"
#include "attention_fallback.h"
#include "context_impl.h"

namespace sparq::fallback::attention_rows {

using attention_detail::Access;
using attention_detail::AttentionPlan;
using attention_detail::HookPlan;
using attention_detail::KvMode;
using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers

constexpr int kTile = SQ_ATT_TILE;
constexpr int kTilesPerChunk = SQ_ATT_TILES_PER_CHUNK;
constexpr int kBlockRows = 64;

inline float load(const std::byte* base, DType t, std::int64_t i) {
  if (t == DType::f32) {
    float x;
    std::memcpy(&x, base + i * 4, 4);
    return x;
  }
  std::uint16_t u;
  std::memcpy(&u, base + i * 2, 2);
  return sq_att_widen16(u, static_cast<int>(t));
}

inline void store(std::byte* base, DType t, std::int64_t i, float x) {
  if (t == DType::f32) {
    std::memcpy(base + i * 4, &x, 4);
    return;
  }
  const std::uint16_t u = sq_att_narrow16(x, static_cast<int>(t));
  std::memcpy(base + i * 2, &u, 2);
}

inline const std::byte* storage_of(const Tensor& t) {
  return t.storage()->host.data();
}

struct Item {
  int b, h;
  std::int64_t i0, i1;
};

// Per-thread scratch of one row block.
struct Scratch {
  std::vector<float> q, kt, v, acc, o_r;
  std::vector<float> m, l, lse_r;
  explicit Scratch(int d)
      : q(kBlockRows * d),
        kt(static_cast<std::size_t>(d) * kTile),
        v(kTile * d),
        acc(kBlockRows * d),
        o_r(kBlockRows * d),
        m(kBlockRows),
        l(kBlockRows),
        lse_r(kBlockRows) {}
};

class BlockRunner {
 public:
  BlockRunner(const AttentionPlan& p, Scratch& s) : p_(p), s_(s), d_(p.head_dim) {}

  // Whole rows: every chunk, each merged into R in place; writes O (and lse).
  void run(const Item& it) {
    const int ntiles = begin(it);
    for (int t0 = 0; t0 < ntiles; t0 += kTilesPerChunk) {
      chunk(it, t0, std::min(ntiles, t0 + kTilesPerChunk));
      for (int r = 0; r < rows_; ++r) {
        const float l = s_.l[r];
        const SqAttMerge w = sq_att_merge_weights(s_.lse_r[r], sq_att_chunk_lse(s_.m[r], l));
        float* o = &s_.o_r[r * d_];
        const float* acc = &s_.acc[r * d_];
        for (int e = 0; e < d_; ++e) o[e] = sq_att_merge_out(w, o[e], sq_att_chunk_out(acc[e], l));
        s_.lse_r[r] = w.lse;
      }
    }
    for (int r = 0; r < rows_; ++r)
      write_row(p_, it.b, it.h, it.i0 + r, &s_.o_r[r * d_], s_.lse_r[r]);
  }

  // The state (o_c [rows][D], lse_c [rows]) of chunk c alone (empty when no row sees a key of it).
  void chunk_state(const Item& it, int c, float* o, float* lse) {
    const int ntiles = begin(it);
    const int t0 = c * kTilesPerChunk, t1 = std::min(ntiles, t0 + kTilesPerChunk);
    chunk(it, t0, t1);
    for (int r = 0; r < rows_; ++r) {
      const float l = s_.l[r];
      lse[r] = sq_att_chunk_lse(s_.m[r], l);
      for (int e = 0; e < d_; ++e) o[r * d_ + e] = sq_att_chunk_out(s_.acc[r * d_ + e], l);
    }
  }

  // Row `i` of (b, h): O from o (fp32, D values) in the output dtype, and lse when requested.
  // With hooks, R (o, lse) is first merged with the sink state (0, sink2[h]) (attention_common.h).
  static void write_row(const AttentionPlan& p, int b, int h, std::int64_t i, const float* o,
                        float lse) {
    const std::int64_t row = p.q_row0(b) + i;
    const std::int64_t at = p.out_at.at(b, h, row);
    std::byte* od = p.out.storage()->host.data();
    SqAttMerge w{};
    if (p.hooks.on) {
      w = sq_att_merge_weights(lse, p.hooks.sink2(h));
      lse = w.lse;
    }
    for (int e = 0; e < p.head_dim; ++e)
      store(od, p.out_dtype, at + e, p.hooks.on ? sq_att_merge_out(w, o[e], 0.0f) : o[e]);
    if (p.lse.defined())
      store(p.lse.storage()->host.data(), DType::f32, p.lse_at.at(b, h, row), lse);
  }

 private:
  std::int64_t kv_row(const Access& a, int b, int hk, int j) const {
    if (p_.mode == KvMode::paged) {
      const std::int64_t page = p_.page_table[b * p_.max_pages + j / p_.page_size];
      return a.at(page, hk, j % p_.page_size);
    }
    return a.at(b, hk, p_.k_row0(b) + j);
  }

  float row_scale(const Tensor& t, const Access& a, int b, int hk, int j) const {
    return reinterpret_cast<const float*>(storage_of(t))[kv_row(a, b, hk, j)];
  }

  // K transposed [d][64] and V [64][d] of keys [j0, j0 + 64); keys >= lk are zero (never used).
  void load_tile(int b, int hk, int j0, int lk) {
    const std::byte* kd = storage_of(p_.k);
    const std::byte* vd = storage_of(p_.v);
    for (int jj = 0; jj < kTile; ++jj) {
      const int j = j0 + jj;
      if (j >= lk) {
        for (int e = 0; e < d_; ++e) s_.kt[e * kTile + jj] = 0.0f;
        std::fill_n(&s_.v[jj * d_], d_, 0.0f);
        continue;
      }
      const std::int64_t ka = kv_row(p_.k_at, b, hk, j), va = kv_row(p_.v_at, b, hk, j);
      if (p_.k_at.dtype == DType::i8) {  // int8 pages: codes times the row's scale
        const float ks = row_scale(p_.k_scales, p_.ks_at, b, hk, j);
        const float vs = row_scale(p_.v_scales, p_.vs_at, b, hk, j);
        const auto* kc = reinterpret_cast<const std::int8_t*>(kd);
        const auto* vc = reinterpret_cast<const std::int8_t*>(vd);
        for (int e = 0; e < d_; ++e) s_.kt[e * kTile + jj] = sq_att_deq_i8(kc[ka + e], ks);
        for (int e = 0; e < d_; ++e) s_.v[jj * d_ + e] = sq_att_deq_i8(vc[va + e], vs);
        continue;
      }
      if (p_.k_at.dtype == DType::u8) {  // NVFP4 pages: E2M1 codes times their group's scale
        const auto* kc = reinterpret_cast<const uchar*>(kd);
        const auto* vc = reinterpret_cast<const uchar*>(vd);
        const auto* ks = reinterpret_cast<const uchar*>(storage_of(p_.k_scales));
        const auto* vs = reinterpret_cast<const uchar*>(storage_of(p_.v_scales));
        const std::int64_t ksa = kv_row(p_.ks_at, b, hk, j), vsa = kv_row(p_.vs_at, b, hk, j);
        for (int e = 0; e < d_; ++e)
          s_.kt[e * kTile + jj] = sq_kv_element(kc, ka, SQ_DT_FP4, e, ks, ksa);
        for (int e = 0; e < d_; ++e)
          s_.v[jj * d_ + e] = sq_kv_element(vc, va, SQ_DT_FP4, e, vs, vsa);
        continue;
      }
      for (int e = 0; e < d_; ++e) s_.kt[e * kTile + jj] = load(kd, p_.k_at.dtype, ka + e);
      for (int e = 0; e < d_; ++e) s_.v[jj * d_ + e] = load(vd, p_.v_at.dtype, va + e);
    }
  }

  void tile(int b, int hk, int j0, int lq, int lk, std::int64_t i0, int rows) {
    load_tile(b, hk, j0, lk);
    for (int r = 0; r < rows; ++r) {
      const int ve = sq_att_visible_end(static_cast<int>(i0 + r), lq, lk, p_.causal) - j0;
      if (ve <= 0) continue;  // no visible key: a no-op tile for this row (attention_common.h)
      const int nv = ve < kTile ? ve : kTile;
      alignas(64) float s[kTile] = {};
      const float* q = &s_.q[r * d_];
      for (int e = 0; e < d_; ++e) {
        const float qe = q[e];
        const float* kt = &s_.kt[e * kTile];
        for (int jj = 0; jj < kTile; ++jj) s[jj] = std::fma(qe, kt[jj], s[jj]);
      }
      bool vis[kTile];  // visible': the causal prefix, then the hooks' window and key mask
      for (int jj = 0; jj < kTile; ++jj) vis[jj] = jj < nv;
      if (p_.hooks.on) hook_row(static_cast<int>(i0 + r), lq, lk, j0, nv, s, vis);
      float m_t = sq_att_neg_inf();
      for (int jj = 0; jj < nv; ++jj)
        if (vis[jj]) m_t = sq_mx(m_t, s[jj]);
      const float m_new = sq_mx(s_.m[r], m_t);
      if (m_new == sq_att_neg_inf()) continue;
      const float alpha = sq_att_alpha(s_.m[r], m_new);
      float p[kTile];
      float rsum = 0.0f;
      for (int jj = 0; jj < nv; ++jj) {
        if (!vis[jj]) continue;
        p[jj] = sq_att_prob(s[jj], m_new);
        rsum = rsum + p[jj];
      }
      s_.l[r] = std::fma(s_.l[r], alpha, rsum);
      float* acc = &s_.acc[r * d_];
      for (int e = 0; e < d_; ++e) acc[e] = acc[e] * alpha;
      for (int jj = 0; jj < nv; ++jj) {
        if (!vis[jj]) continue;
        const float pj = p[jj];
        const float* v = &s_.v[jj * d_];
        for (int e = 0; e < d_; ++e) acc[e] = std::fma(pj, v[e], acc[e]);
      }
      s_.m[r] = m_new;
    }
  }

  // Hooks of row i over keys [j0, j0 + nv) (attention_common.h HOOKS): visible' and s'.
  void hook_row(int i, int lq, int lk, int j0, int nv, float* s, bool* vis) const {
    const HookPlan& hk = p_.hooks;
    const int qp = lk - lq + i;
    const float slope2 = hk.slope2(h_);
    const std::uint8_t* mask = hk.mask_row(b_);
    for (int jj = 0; jj < nv; ++jj) {
      const int j = j0 + jj;
      vis[jj] = sq_att_hook_window(qp, j, hk.wl, hk.wr) && (mask == nullptr || mask[j] != 0);
      s[jj] = sq_att_hook_score(s[jj], hk.cap2, slope2, qp, j);
    }
  }

  // Loads q' = q * c of the item's rows and empties R; returns the block's tile count.
  int begin(const Item& it) {
    b_ = it.b;
    h_ = it.h;
    hk_ = it.h / (p_.hq / p_.hkv);
    lq_ = static_cast<int>(p_.seq_lq(it.b));
    lk_ = static_cast<int>(p_.seq_lk(it.b));
    rows_ = static_cast<int>(it.i1 - it.i0);
    i0_ = it.i0;
    const std::byte* qd = storage_of(p_.q);
    for (int r = 0; r < rows_; ++r) {
      const std::int64_t at = p_.q_at.at(it.b, it.h, p_.q_row0(it.b) + it.i0 + r);
      for (int e = 0; e < d_; ++e) s_.q[r * d_ + e] = load(qd, p_.q_at.dtype, at + e) * p_.c;
      s_.lse_r[r] = sq_att_neg_inf();
      std::fill_n(&s_.o_r[r * d_], d_, 0.0f);
    }
    // Visible ends grow with the row, so the last row bounds the block's keys.
    const int kend = sq_att_visible_end(static_cast<int>(it.i1 - 1), lq_, lk_, p_.causal);
    return kend > 0 ? (kend + kTile - 1) / kTile : 0;
  }

  // Tiles [t0, t1) of one chunk from a fresh state (m, l, acc).
  void chunk(const Item&, int t0, int t1) {
    for (int r = 0; r < rows_; ++r) {
      s_.m[r] = sq_att_neg_inf();
      s_.l[r] = 0.0f;
      std::fill_n(&s_.acc[r * d_], d_, 0.0f);
    }
    for (int n = t0; n < t1; ++n) tile(b_, hk_, n * kTile, lq_, lk_, i0_, rows_);
  }

  const AttentionPlan& p_;
  Scratch& s_;
  int d_;
  int b_ = 0, h_ = 0, hk_ = 0, lq_ = 0, lk_ = 0, rows_ = 0;
  std::int64_t i0_ = 0;
};

}  // namespace sparq::fallback::attention_rows
