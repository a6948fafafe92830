// XAttention builder (spec §6): device ≡ fallback bit for bit over strides, offsets, lengths not
// multiples of 64/128/S, sharing, causal and not, thresholds; the selection equals the §6.2 rule
// (written here independently) on the same block scores, including the crossing block; block
// scores against float64; planted hot blocks recovered; threshold tables; bad options rejected.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>

#include "builders_test_util.h"
#include "fallback_cpu/sparse/builders_fallback.h"
#include "sparse/builder_math.h"
#include "sparse/sparse_select.h"

namespace sparq::test {
namespace {

using V = std::vector<std::int32_t>;

struct XCase {
  QKShape s;
  XAttention p;
  IndexSharing sharing = IndexSharing::per_q_head;
  bool causal = true;
};

TEST(SparseXAttention, DeviceMatchesFallbackBitwise) {
  Context dev = device_context();
  Context fb = fallback_context();
  const XCase cases[] = {
      {{1, 2, 2, 256, 256, 64}, {.stride = 8}},
      {{1, 2, 1, 200, 328, 64}, {.stride = 4, .threshold = 0.5f}},  // off = 128, GQA
      {{1, 4, 2, 300, 300, 128}, {.stride = 16, .threshold = 0.95f}, IndexSharing::kv_group},
      {{2, 2, 2, 77, 333, 64}, {.stride = 8, .threshold = 1.0f}},  // off = 256
      {{1, 2, 2, 1, 129, 64}, {.stride = 8}},                      // Lq = 1, off = 128
      {{1, 2, 2, 190, 190, 64}, {.stride = 8, .threshold = 0.3f}, IndexSharing::per_q_head, false},
      {{1, 4, 2, 140, 140, 64},
       {.stride = 4, .per_head_threshold = std::vector<float>{0.2f, 0.9f, 0.6f, 0.4f}},
       IndexSharing::kv_group},
  };
  std::uint64_t seed = 6100;
  for (const auto& c : cases) {
    const QK x = random_qk(c.s, seed++);
    const IndexOptions opt{.causal = c.causal, .sharing = c.sharing};
    const HostIndex d = build_host(dev, c.s, x, c.p, opt);
    const HostIndex f = build_host(fb, c.s, x, c.p, opt);
    const std::string what = "S " + std::to_string(c.p.stride) + " Lq " + std::to_string(c.s.Lq) +
                             " Lk " + std::to_string(c.s.Lk) + " seed " + std::to_string(seed - 1);
    expect_same_index(d, f, what);
    EXPECT_NO_THROW(validate_index(f)) << what;
  }
}

// The §6.2 rule, written from the spec: forced {0, diag}; need = tau * total; others in §4 order;
// keep adding while the kept mass is below need (the crossing block is kept).
std::vector<int> reference_select(const std::vector<float>& sb, int qb, int off, bool causal,
                                  float tau) {
  const int nkb = static_cast<int>(sb.size());
  const int diag = (128 * qb + off) / 128;
  std::vector<int> forced = causal ? std::vector<int>{0, diag} : std::vector<int>{qb};
  std::sort(forced.begin(), forced.end());
  forced.erase(std::unique(forced.begin(), forced.end()), forced.end());
  float total = 0.0f;
  for (float v : sb) total = total + v;
  const float need = tau * total;
  float cum = 0.0f;
  for (int f : forced) cum = cum + sb[static_cast<std::size_t>(f)];
  std::vector<int> others;
  for (int kb = 0; kb < (causal ? diag + 1 : nkb); ++kb)
    if (std::find(forced.begin(), forced.end(), kb) == forced.end()) others.push_back(kb);
  std::stable_sort(others.begin(), others.end(), [&](int a, int b) {
    return cl_common::sq_topk_before(sb[static_cast<std::size_t>(a)], a,
                                     sb[static_cast<std::size_t>(b)], b) != 0;
  });
  std::vector<int> sel = forced;
  for (int kb : others) {
    if (!(cum < need)) break;
    sel.push_back(kb);
    cum = cum + sb[static_cast<std::size_t>(kb)];
  }
  std::sort(sel.begin(), sel.end());
  return sel;
}

// Index rows 2qb, 2qb+1 from a set of selected 128-blocks (tiles of 64, clipped to end when
// causal).
V tiles_of(const std::vector<int>& sel, int row, int lq, int lk, bool causal) {
  const int off = lk - lq;
  const int end = off + std::min(64 * row + 64, lq);
  const int hi = causal ? std::min(end, lk) : lk;
  V t;
  for (int kb : sel)
    for (int s = 128 * kb; s < 128 * kb + 128 && s < hi; s += 64) t.push_back(s);
  return t;
}

TEST(SparseXAttention, SelectionEqualsRuleIncludingCrossingBlock) {
  using namespace sparq::cl_common;
  // Hand-made scores: forced {0, 4} hold 2/16; with tau = 0.8 the walk keeps kb 1 (cum 10/16 <
  // 0.8), then kb 2 (cum 14/16 >= 0.8: the crossing block, kept) and stops before kb 3.
  const std::vector<float> sb = {1 / 16.f, 8 / 16.f, 4 / 16.f, 2 / 16.f, 1 / 16.f};
  const int lk = 5 * 128, lq = 128, qb = 0;  // off = 512: diag = 4
  std::vector<std::int32_t> ts(2 * 10, 0), tc(2, 0);
  sq_sb_xattn_convert(sb.data(), 5, qb, 2, lq, lk, 1, 0.8f, ts.data(), 10, tc.data());
  const V want = {0, 64, 128, 192, 256, 320, 512};
  EXPECT_EQ(V(ts.begin(), ts.begin() + tc[0]), want);
  EXPECT_EQ(reference_select(sb, qb, lk - lq, true, 0.8f), (std::vector<int>{0, 1, 2, 4}));
  // ties (kb 1 == kb 2 == kb 4, kb 3 == kb 5) resolved by index ascending.
  const std::vector<float> tie = {0.1f, 0.2f, 0.2f, 0.3f, 0.2f, 0.3f, 0.05f};
  EXPECT_EQ(reference_select(tie, 0, 6 * 128, true, 0.55f), (std::vector<int>{0, 3, 5, 6}));
  sq_sb_xattn_convert(tie.data(), 7, 0, 2, 128, 7 * 128, 1, 0.55f, ts.data(), 10, tc.data());
  EXPECT_EQ(V(ts.begin(), ts.begin() + tc[0]), (V{0, 64, 384, 448, 640, 704, 768}));

  // Random inputs: the built index equals the rule on the fallback's own block scores.
  for (const bool causal : {true, false}) {
    const QKShape s{1, 2, 2, 333, 461, 64};  // off = 128
    const QK x = random_qk(s, 6200 + causal);
    for (const float tau : {0.3f, 0.9f, 1.0f}) {
      fallback::sparse::XAttentionProblem p;
      p.q = {reinterpret_cast<const std::byte*>(x.q.data()), 0, 2 * 333 * 64, 333 * 64, 64};
      p.k = {reinterpret_cast<const std::byte*>(x.k.data()), 0, 2 * 461 * 64, 461 * 64, 64};
      p.B = 1;
      p.Hq = 2;
      p.G = 1;
      p.gi = 1;
      p.D = 64;
      p.Lq = 333;
      p.Lk = 461;
      p.stride = 8;
      p.causal = causal;
      p.cx = static_cast<float>(0.125 * 1.4426950408889634 / 8);
      const std::vector<float> taus = {tau, tau};
      p.tau = taus.data();
      const int nkb = 4, nqb128 = 3, nqb = 6, mt = 8;
      std::vector<std::int32_t> tc(2 * nqb), ts(2 * nqb * mt), cc(2 * nqb);
      p.out = {tc.data(), ts.data(), cc.data(), nullptr, mt, 0};
      std::vector<float> sbs;
      p.block_scores = &sbs;
      fallback::sparse::xattention(p);
      for (int h = 0; h < 2; ++h)
        for (int qb = 0; qb < nqb128; ++qb) {
          const std::vector<float> row(sbs.begin() + (h * nqb128 + qb) * nkb,
                                       sbs.begin() + (h * nqb128 + qb + 1) * nkb);
          const auto sel = reference_select(row, qb, 128, causal, tau);
          for (int half = 0; half < 2 && 2 * qb + half < nqb; ++half) {
            const int r = h * nqb + 2 * qb + half;
            EXPECT_EQ(V(ts.begin() + r * mt, ts.begin() + r * mt + tc[static_cast<std::size_t>(r)]),
                      tiles_of(sel, 2 * qb + half, 333, 461, causal))
                << "causal " << causal << " tau " << tau << " h " << h << " qb " << qb;
          }
        }
    }
  }
}

TEST(SparseXAttention, BlockScoresMatchFloat64) {
  const int lq = 200, lk = 328, S = 8, D = 64, off = 128;
  const QKShape s{1, 1, 1, lq, lk, D};
  const QK x = random_qk(s, 6300);
  fallback::sparse::XAttentionProblem p;
  p.q = {reinterpret_cast<const std::byte*>(x.q.data()), 0, lq * D, lq * D, D};
  p.k = {reinterpret_cast<const std::byte*>(x.k.data()), 0, lk * D, lk * D, D};
  p.B = p.Hq = p.G = p.gi = 1;
  p.D = D;
  p.Lq = lq;
  p.Lk = lk;
  p.stride = S;
  const double cx = 0.125 * 1.4426950408889634 / S;
  p.cx = static_cast<float>(cx);
  const float tau = 0.9f;
  p.tau = &tau;
  std::vector<std::int32_t> tc(4), ts(4 * 6), cc(4);
  p.out = {tc.data(), ts.data(), cc.data(), nullptr, 6, 0};
  std::vector<float> sbs;
  p.block_scores = &sbs;
  fallback::sparse::xattention(p);
  const int ngi = (lq + S - 1) / S, ngj = (lk + S - 1) / S, nkb = 3;
  std::vector<double> want(2 * nkb, 0.0);
  for (int gi = 0; gi < ngi; ++gi) {
    std::vector<double> a(static_cast<std::size_t>(ngj), -INFINITY);
    double m = -INFINITY;
    const int vend = std::min(ngj, gi + off / S + 1);
    for (int gj = 0; gj < vend; ++gj) {
      double acc = 0;
      for (int t = 0; t < S; ++t) {
        const int qr = gi * S + S - 1 - t, kr = gj * S + t;
        if (qr >= lq || kr >= lk) continue;
        for (int d = 0; d < D; ++d)
          acc += static_cast<double>(x.q[static_cast<std::size_t>(qr * D + d)]) *
                 x.k[static_cast<std::size_t>(kr * D + d)];
      }
      a[static_cast<std::size_t>(gj)] = acc * cx;
      m = std::max(m, acc * cx);
    }
    double z = 0;
    for (int gj = 0; gj < vend; ++gj) z += std::exp2(a[static_cast<std::size_t>(gj)] - m);
    for (int gj = 0; gj < vend; ++gj)
      want[static_cast<std::size_t>((gi / 16) * nkb + gj / 16)] +=
          std::exp2(a[static_cast<std::size_t>(gj)] - m) / z;
  }
  for (std::size_t e = 0; e < want.size(); ++e)
    EXPECT_NEAR(sbs[e], want[e], 1e-5 * (1 + want[e])) << "block " << e;
}

TEST(SparseXAttention, RecoversPlantedHotBlocks) {
  // Keys of 128-blocks {1, 4} carry a direction every query shares: those blocks hold most of
  // every row's mass. Planted elements: visible (i, j) with j in a hot block.
  const QKShape s{1, 2, 2, 640, 768, 64};
  const int off = s.Lk - s.Lq;
  QK x = random_qk(s, 6400);
  for (auto& v : x.q) v *= 0.2f;
  for (auto& v : x.k) v *= 0.2f;
  auto hot = [](int j) { return j / 128 == 1 || j / 128 == 4; };
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < s.Lq; ++i) x.q[static_cast<std::size_t>((h * s.Lq + i) * s.D + 5)] += 6.0f;
    for (int j = 0; j < s.Lk; ++j)
      if (hot(j)) x.k[static_cast<std::size_t>((h * s.Lk + j) * s.D + 5)] += 6.0f;
  }
  const XAttention p{.stride = 8, .threshold = 0.9f};
  Context dev = device_context();
  Context fb = fallback_context();
  const HostIndex f = build_host(fb, s, x, p);
  expect_same_index(build_host(dev, s, x, p), f, "planted");
  std::int64_t planted = 0, hit = 0, computed = 0;
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < s.Lq; ++i) {
      const auto keys = computed_keys(f, 0, h, i / 64, i);
      computed += static_cast<std::int64_t>(keys.size());
      for (int j = 0; j <= off + i; ++j) {
        if (!hot(j)) continue;
        ++planted;
        hit += keys.count(j) ? 1 : 0;
      }
    }
  ASSERT_GT(planted, 10000);
  EXPECT_GE(static_cast<double>(hit) / static_cast<double>(planted), 0.99);
  // and it is sparse: well below the dense causal count
  std::int64_t dense = 0;
  for (int i = 0; i < s.Lq; ++i) dense += 2 * (off + i + 1);
  EXPECT_LT(computed, dense * 3 / 4);
}

TEST(SparseXAttention, ThresholdTables) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparq_xattn_" + std::to_string(getpid()) + ".json"))
                               .string();
  { std::ofstream(path) << "[[0.9, 0.8], [0.95, 0.5]]"; }
  const auto table = load_xattention_thresholds(path);
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[1][1], 0.5f);
  // layer 1 from the table == per_head_threshold of layer 1
  Context fb = fallback_context();
  const QKShape s{1, 2, 2, 256, 256, 64};
  const QK x = random_qk(s, 6500);
  const HostIndex a = build_host(fb, s, x, XAttention{.threshold_table = table}, {.layer = 1});
  const HostIndex b =
      build_host(fb, s, x, XAttention{.per_head_threshold = std::vector<float>{0.95f, 0.5f}});
  expect_same_index(a, b, "table layer 1");
  { std::ofstream(path) << "[[0.9, 1.5]]"; }
  EXPECT_THROW(load_xattention_thresholds(path), Error);
  { std::ofstream(path) << "{\"a\": 1}"; }
  EXPECT_THROW(load_xattention_thresholds(path), Error);
  std::filesystem::remove(path);
  EXPECT_THROW(load_xattention_thresholds(path), Error);
}

void expect_invalid(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no sparq::Error; expected one mentioning '" << part << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(SparseXAttention, RejectsBadOptions) {
  Context fb = fallback_context();
  const QKShape s{1, 2, 2, 64, 128, 64};  // off = 64
  const QK x = random_qk(s, 1);
  expect_invalid([&] { build_host(fb, s, x, XAttention{}); }, "multiple of 128");
  const QKShape t{1, 2, 2, 64, 64, 64};
  const QK y = random_qk(t, 2);
  auto build = [&](XAttention p, IndexOptions o = {}) { build_host(fb, t, y, p, o); };
  expect_invalid([&] { build({.stride = 5}); }, "stride = 5");
  expect_invalid([&] { build({.stride = 32}); }, "stride = 32");
  expect_invalid([&] { build({.threshold = 0.0f}); }, "tau must be in (0, 1]");
  expect_invalid([&] { build({.threshold = 1.01f}); }, "tau must be in (0, 1]");
  expect_invalid([&] { build({.threshold = std::nanf("")}); }, "tau must be in (0, 1]");
  expect_invalid([&] { build({.per_head_threshold = std::vector<float>{0.5f}}); },
                 "per_head_threshold has 1");
  expect_invalid(
      [&] {
        build({.per_head_threshold = std::vector<float>{0.5f, -1.0f}});
      },
      "tau must be in (0, 1]");
  expect_invalid(
      [&] {
        build({.threshold_table = {{0.5f, 0.5f}}}, {.layer = 3});
      },
      "options.layer = 3");
}

}  // namespace
}  // namespace sparq::test
