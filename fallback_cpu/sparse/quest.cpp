// Fallback twin of kernels_cl/sparse/quest.cl (defined order stated there and in docs/quest.md).
// Metadata per (item, kv head, d); bounds per (b, index head, page), one chain over d; selection
// by sorting (key, index) pairs — the §4 order is a strict total order, so any exact selection
// method gives the kernel's radix-select set; decode per (b, query head) row: split states by
// the page loop, merged left to right.
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "attention/kv_pages.h"
#include "context_impl.h"
#include "fallback_cpu/common/parallel_chunks.h"
#include "quest_fallback.h"
#include "sparse/quest_math.h"

namespace sparq::fallback::quest {

using namespace sparq::cl_common;  // NOLINT: the shared kernel helpers
using quest_detail::QuestCache;

namespace {

const float* f32(const Tensor& t) {
  return reinterpret_cast<const float*>(t.storage()->host.data());
}
float* f32_mut(const Tensor& t) {
  return reinterpret_cast<float*>(t.storage()->host.data());
}
std::int32_t* i32_mut(const Tensor& t) {
  return reinterpret_cast<std::int32_t*>(t.storage()->host.data());
}

}  // namespace

void metadata(const quest_detail::MetadataPlan& p) {
  const QuestCache& c = *p.cache;
  const auto* k = reinterpret_cast<const uchar*>(c.k.storage()->host.data());
  const auto* ks =
      c.k_scales.defined() ? reinterpret_cast<const uchar*>(c.k_scales.storage()->host.data()) : k;
  float* kmin = f32_mut(p.kmin);
  float* kmax = f32_mut(p.kmax);
  const int d = c.head_dim, hkv = c.hkv;
  parallel_chunks(
      static_cast<std::int64_t>(p.items.size()), 16, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i) {
          const auto& w = p.items[static_cast<std::size_t>(i)];
          for (int hk = 0; hk < hkv; ++hk)
            for (int e = 0; e < d; ++e) {
              const std::int64_t at = (static_cast<std::int64_t>(w.meta) * hkv + hk) * d + e;
              const std::int64_t base =
                  c.k_at.base + std::int64_t{w.x} * c.k_at.s0 + hk * c.k_at.sh;
              const std::int64_t sbase =
                  c.ks_at.base + std::int64_t{w.x} * c.ks_at.s0 + hk * c.ks_at.sh;
              auto elem = [&](std::int64_t slot) {
                return sq_kv_element(k, base + slot * c.k_at.ss, c.k_dt, e, ks,
                                     sbase + slot * c.ks_at.ss);
              };
              float mn, mxv;
              int s = w.from;
              if (w.from > 0) {
                mn = kmin[at];
                mxv = kmax[at];
              } else {
                mn = elem(w.slot0);
                mxv = mn;
                s = 1;
              }
              for (; s < w.valid; ++s) {
                const float v = elem(std::int64_t{w.slot0} + s);
                mn = sq_mn(mn, v);
                mxv = sq_mx(mxv, v);
              }
              kmin[at] = mn;
              kmax[at] = mxv;
            }
        }
      });
}

void select(const quest_detail::SelectPlan& p) {
  const QuestCache& c = *p.cache;
  const int hi_count = p.share ? c.hkv : p.hq, group = p.hq / c.hkv, d = c.head_dim;
  const float* q = f32(p.q);
  const float* kmin = f32(p.kmin);
  const float* kmax = f32(p.kmax);
  float* bounds = f32_mut(p.bounds);
  std::int32_t* pages = i32_mut(p.pages);
  std::int32_t* counts = i32_mut(p.counts);
  const std::int64_t mp = c.max_pages;
  parallel_chunks(
      static_cast<std::int64_t>(c.batch) * hi_count, 1, [&](std::int64_t lo, std::int64_t hi_end) {
        std::vector<std::pair<std::uint32_t, std::int32_t>> cand;
        for (std::int64_t item = lo; item < hi_end; ++item) {
          const int b = static_cast<int>(item / hi_count), hi = static_cast<int>(item % hi_count);
          const int hk = p.share ? hi : hi / group;
          const int h0 = p.share ? hi * group : hi, nh = p.share ? group : 1;
          const std::int64_t n = c.n_pages(b);
          float* bnd = bounds + item * mp;
          for (std::int64_t pg = 0; pg < mp; ++pg) {
            float u = 0.0f;
            if (pg < n) {
              const std::int64_t meta = c.meta_id(b, pg);
              const float* lo_row = kmin + (meta * c.hkv + hk) * d;
              const float* up_row = kmax + (meta * c.hkv + hk) * d;
              for (int g = 0; g < nh; ++g) {
                const float* qr = q + p.q.offset() + b * p.q_sb + (h0 + g) * p.q_sh;
                float uh = 0.0f;
                for (int e = 0; e < d; ++e)
                  uh = uh + sq_quest_bound_term(qr[e], lo_row[e], up_row[e]);
                u = p.share ? u + uh : uh;
              }
            }
            bnd[pg] = u;
          }
          const int budget = std::max(p.page_budget, 1);
          std::int32_t* out = pages + item * p.cap;
          std::fill(out, out + p.cap, -1);
          if (n <= budget) {
            for (std::int64_t t = 0; t < n; ++t) out[t] = static_cast<std::int32_t>(t);
            counts[item] = static_cast<std::int32_t>(n);
            continue;
          }
          const int k = budget - 1;
          cand.clear();
          for (std::int64_t pg = 0; pg < n - 1; ++pg)
            cand.emplace_back(sq_quest_order_key(bnd[pg]), static_cast<std::int32_t>(pg));
          std::nth_element(cand.begin(), cand.begin() + k, cand.end());
          std::vector<std::int32_t> chosen;
          for (int t = 0; t < k; ++t) chosen.push_back(cand[static_cast<std::size_t>(t)].second);
          std::sort(chosen.begin(), chosen.end());
          std::copy(chosen.begin(), chosen.end(), out);
          out[k] = static_cast<std::int32_t>(n - 1);
          counts[item] = k + 1;
        }
      });
}

void decode(const quest_detail::DecodePlan& p) {
  const QuestCache& c = *p.cache;
  const int hi_count = p.share ? c.hkv : p.hq, group = p.hq / c.hkv, d = c.head_dim;
  const int pg = c.page_size;
  const float* q = f32(p.q);
  const float* k = f32(c.k);
  const float* v = f32(c.v);
  const std::int32_t* pages =
      p.all_pages ? nullptr : reinterpret_cast<const std::int32_t*>(p.pages.storage()->host.data());
  float* out = f32_mut(p.out);
  float* lse = p.lse.defined() ? f32_mut(p.lse) : nullptr;
  const float neg_inf = sq_quest_neg_inf();
  parallel_chunks(
      static_cast<std::int64_t>(c.batch) * p.hq, 1, [&](std::int64_t lo, std::int64_t hi_end) {
        std::vector<float> qs(static_cast<std::size_t>(d)), sp(static_cast<std::size_t>(pg));
        std::vector<float> acc(static_cast<std::size_t>(d)), macc(static_cast<std::size_t>(d));
        for (std::int64_t row = lo; row < hi_end; ++row) {
          const int b = static_cast<int>(row / p.hq), h = static_cast<int>(row % p.hq);
          const int hi = p.share ? h / group : h, hk = h / group;
          const std::int64_t item = static_cast<std::int64_t>(b) * hi_count + hi;
          const std::int64_t len = c.seq_lens[b];
          const std::int64_t count = p.counts_host[static_cast<std::size_t>(item)];
          const std::int64_t splits = (count + p.pages_per_split - 1) / p.pages_per_split;
          for (int e = 0; e < d; ++e) qs[e] = q[p.q.offset() + b * p.q_sb + h * p.q_sh + e] * p.c;
          float mm = neg_inf, ml = 0.0f;
          std::fill(macc.begin(), macc.end(), 0.0f);
          for (std::int64_t s = 0; s < splits; ++s) {
            float m = neg_inf, l = 0.0f;
            std::fill(acc.begin(), acc.end(), 0.0f);
            const std::int64_t t1 = std::min(count, (s + 1) * p.pages_per_split);
            for (std::int64_t t = s * p.pages_per_split; t < t1; ++t) {
              const std::int64_t page = p.all_pages ? t : pages[item * p.cap + t];
              const int valid = static_cast<int>(std::min<std::int64_t>(pg, len - page * pg));
              const std::int64_t x = c.row_x(b, page), slot0 = c.slot0(page);
              float mt = neg_inf;
              for (int j = 0; j < valid; ++j) {
                const float* kr = k + c.k_at.at(x, slot0 + j, hk);
                float sc = 0.0f;
                for (int e = 0; e < d; ++e) sc = sq_fma(qs[e], kr[e], sc);
                sp[j] = sc;
                mt = sq_mx(mt, sc);
              }
              const float m_new = sq_mx(m, mt);
              if (m_new == neg_inf) continue;
              const float alpha = sq_exp2(m - m_new);
              float r = 0.0f;
              for (int j = 0; j < valid; ++j) {
                sp[j] = sp[j] == neg_inf ? 0.0f : sq_exp2(sp[j] - m_new);
                r = r + sp[j];
              }
              l = sq_fma(l, alpha, r);
              for (int e = 0; e < d; ++e) {
                float a = acc[e] * alpha;
                for (int j = 0; j < valid; ++j)
                  a = sq_fma(sp[j], v[c.v_at.at(x, slot0 + j, hk) + e], a);
                acc[e] = a;
              }
              m = m_new;
            }
            if (s == 0) {
              mm = m;
              ml = l;
              macc = acc;
            } else {
              const SqQuestMerge w = sq_quest_merge_weights(mm, m);
              ml = sq_quest_merge_value(w, ml, l);
              for (int e = 0; e < d; ++e) macc[e] = sq_quest_merge_value(w, macc[e], acc[e]);
              mm = w.m;
            }
          }
          for (int e = 0; e < d; ++e) out[row * d + e] = sq_quest_out(macc[e], ml);
          if (lse) lse[row] = sq_quest_lse(mm, ml);
        }
      });
}

}  // namespace sparq::fallback::quest
