// MMInference grid head and boundary heads (specs/sparse_attention.md §7.3-7.4): device ≡
// fallback bitwise (grid, estimated stride, kv_group, chunked prefill, Q-boundary, 2D-boundary);
// a float64 reference of steps 1-7; the stride rule; planted grid structure (recall ≥ 0.99);
// permuted attention with the full budget ≡ dense attention; hostile options rejected.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "builders_test_util.h"
#include "host/src/sparse/grid_plan.h"
#include "reference/sparse_ref.h"

namespace sparq::test {
namespace {

// Text [0, 20), a video of 24-token frames at [20, 260), text after it.
std::vector<std::int32_t> modality_of(int lk) {
  std::vector<std::int32_t> m(static_cast<std::size_t>(lk), 0);
  for (int j = 20; j < std::min(lk, 260); ++j) m[static_cast<std::size_t>(j)] = 1;
  return m;
}

void expect_same_grid_index(const HostIndex& a, const HostIndex& b, const std::string& what) {
  expect_same_index(a, b, what);
  EXPECT_EQ(a.qpos, b.qpos) << what;
  EXPECT_EQ(a.kpos, b.kpos) << what;
}

TEST(SparseGrid, DeviceEqualsFallback) {
  Context dev = device_context();
  Context fb = fallback_context();
  struct C {
    QKShape s;
    Grid g;
    IndexSharing sharing = IndexSharing::per_q_head;
  };
  const Grid base{.stride = 24, .top_k = 2, .lines = 1, .segments = {{20, 260, 0}}};
  Grid est = base;
  est.stride = 0;
  Grid qb = base;
  qb.boundary = Boundary::q_boundary;
  qb.modality = modality_of(300);
  Grid two = qb;
  two.boundary = Boundary::two_d;
  const C cases[] = {
      {{1, 4, 2, 300, 300, 64}, base}, {{1, 4, 2, 300, 300, 64}, est, IndexSharing::kv_group},
      {{2, 2, 1, 200, 300, 64}, base},  // chunked prefill: off = 100
      {{1, 2, 2, 300, 300, 128}, qb},  {{1, 2, 1, 300, 300, 64}, two, IndexSharing::kv_group},
  };
  std::uint64_t seed = 9400;
  for (const auto& c : cases) {
    const QK x = random_qk(c.s, seed++);
    const IndexOptions io{.sharing = c.sharing};
    const HostIndex got = build_host(dev, c.s, x, c.g, io);
    const HostIndex want = build_host(fb, c.s, x, c.g, io);
    const std::string what = "seed " + std::to_string(seed - 1);
    expect_same_grid_index(got, want, what);
    EXPECT_NO_THROW(validate_index(want)) << what;
    ASSERT_EQ(want.kpos.size(), static_cast<std::size_t>(c.s.B * c.s.Lk));
  }
}

// Stride rule (§7.3 step 2): a pure phase-5 line of 12-token frames gives 12 (8..11 split the
// line over several phase classes); a float64 re-implementation agrees on random column mass.
TEST(SparseGrid, StrideChoice) {
  std::vector<float> v(400, 0.0f);
  for (int j = 30 + 5; j < 390; j += 12) v[static_cast<std::size_t>(j)] = 1.0f;
  EXPECT_EQ(sparse_detail::choose_grid_stride(v.data(), 30, 390), 12);
  EXPECT_EQ(sparse_detail::choose_grid_stride(v.data(), 30, 45), 0);  // n < 16: no candidate
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    auto r = random_normal(300, seed);
    for (auto& x : r) x = std::abs(x);
    std::int64_t best_f = 0;
    double best = -1;
    for (std::int64_t f = 8; f <= 150; ++f) {
      std::vector<double> m(static_cast<std::size_t>(f), 0.0);
      for (int j = 0; j < 300; ++j) m[static_cast<std::size_t>(j % f)] += r[j];
      std::sort(m.rbegin(), m.rend());
      double sc = 0;
      for (std::int64_t t = 0; t < (f + 7) / 8; ++t) sc += m[static_cast<std::size_t>(t)];
      if (sc > best * (1 + 1e-6)) best = sc, best_f = f;
    }
    EXPECT_EQ(sparse_detail::choose_grid_stride(r.data(), 0, 300), best_f) << "seed " << seed;
  }
}

// Float64 reference of §7.3 steps 1-7 (given stride): probe column mass, permutation, pooled block
// top-k, line tiles, forced tiles. Rows whose k-th / (k+1)-th scores are within 1e-4 are skipped
// (ties are not decidable across precisions); most rows must be checked.
TEST(SparseGrid, MatchesFloat64Reference) {
  Context fb = fallback_context();
  const QKShape s{1, 2, 2, 320, 320, 64};
  const int F = 20, top_k = 2, lines = 2, nkb = 5, nl = 64;
  const Grid g{.stride = F, .top_k = top_k, .lines = lines, .segments = {{0, 300, 0}}};
  const QK x = random_qk(s, 9500);
  const HostIndex idx = build_host(fb, s, x, g);
  const auto perm = grid_permutation(s.Lk, {{0, 300, F}});
  ASSERT_EQ(idx.kpos, perm);
  ASSERT_EQ(idx.qpos, perm);
  std::vector<int> kinv(static_cast<std::size_t>(s.Lk));
  for (int n = 0; n < s.Lk; ++n) kinv[static_cast<std::size_t>(perm[n])] = n;
  const double c = 1.4426950408889634 / 8.0;
  int checked = 0, rows = 0;
  auto top = [](const std::vector<double>& sc, int k, double* margin) {
    std::vector<int> o(sc.size());
    for (std::size_t i = 0; i < o.size(); ++i) o[i] = static_cast<int>(i);
    std::stable_sort(o.begin(), o.end(), [&](int a, int b) { return sc[a] > sc[b]; });
    *margin = k < static_cast<int>(o.size()) ? sc[o[k - 1]] - sc[o[k]] : 1e30;
    o.resize(std::min<std::size_t>(o.size(), k));
    return o;
  };
  for (int h = 0; h < s.Hq; ++h) {
    const float* Q = &x.q[static_cast<std::size_t>(h * s.Lq * s.D)];
    const float* K = &x.k[static_cast<std::size_t>(h * s.Lk * s.D)];
    auto dot = [&](const float* a, const float* b) {
      double d = 0;
      for (int e = 0; e < s.D; ++e) d += static_cast<double>(a[e]) * b[e];
      return d;
    };
    // step 1: probe column mass
    std::vector<double> v(static_cast<std::size_t>(s.Lk), 0.0);
    for (int r = s.Lq - nl; r < s.Lq; ++r) {
      std::vector<double> p(static_cast<std::size_t>(r + 1));
      double m = -1e300, z = 0;
      for (int j = 0; j <= r; ++j) m = std::max(m, p[j] = dot(Q + r * s.D, K + j * s.D) * c);
      for (int j = 0; j <= r; ++j) z += p[j] = std::exp2(p[j] - m);
      for (int j = 0; j <= r; ++j) v[j] += p[j] / z;
    }
    // step 5: line tiles
    std::vector<double> ls(nkb, 0.0);
    for (int n = 0; n < s.Lk; ++n) ls[n / 64] += v[perm[n]];
    double lmargin;
    const auto ltiles = top(ls, lines, &lmargin);
    // step 4: pooled scores over permuted blocks
    auto pool = [&](const float* X, int blk) {
      std::vector<double> m(s.D, 0.0);
      const int r1 = std::min(s.Lk, blk * 64 + 64);
      for (int n = blk * 64; n < r1; ++n)
        for (int e = 0; e < s.D; ++e) m[e] += X[perm[n] * s.D + e];
      for (auto& e : m) e /= r1 - blk * 64;
      return m;
    };
    for (int qb = 0; qb < nkb; ++qb) {
      ++rows;
      const auto qbar = pool(Q, qb);
      int p1 = 0;
      for (int n = qb * 64; n < std::min(s.Lq, qb * 64 + 64); ++n) p1 = std::max(p1, perm[n]);
      std::vector<double> bs;
      std::vector<int> cand;
      for (int kb = 0; kb < nkb; ++kb) {
        int mn = s.Lk;
        for (int n = kb * 64; n < std::min(s.Lk, kb * 64 + 64); ++n) mn = std::min(mn, perm[n]);
        if (mn > p1) continue;
        const auto kbar = pool(K, kb);
        double d = 0;
        for (int e = 0; e < s.D; ++e) d += qbar[e] * kbar[e];
        bs.push_back(d);
        cand.push_back(kb);
      }
      double margin;
      std::set<int> want;
      for (int u : top(bs, top_k, &margin)) want.insert(cand[u] * 64);
      for (int t : ltiles) want.insert(t * 64);
      want.insert(kinv[0] / 64 * 64);
      for (int n = qb * 64; n < std::min(s.Lq, qb * 64 + 64); ++n)
        want.insert(kinv[perm[n]] / 64 * 64);
      std::set<int> kept;  // step 7: a tile some row of the block sees
      for (int t : want) {
        int mn = s.Lk;
        for (int n = t; n < std::min(s.Lk, t + 64); ++n) mn = std::min(mn, perm[n]);
        if (mn <= p1) kept.insert(t);
      }
      if (margin < 1e-4 * (1 + std::abs(bs[0])) || lmargin < 1e-4) continue;
      ++checked;
      const std::size_t row = static_cast<std::size_t>(h * idx.nqb + qb);
      const std::set<int> got(idx.tile_start.begin() + row * idx.max_tiles,
                              idx.tile_start.begin() + row * idx.max_tiles + idx.tile_count[row]);
      EXPECT_EQ(got, kept) << "head " << h << " block " << qb;
    }
  }
  EXPECT_GE(checked, rows * 3 / 4);
}

// Synthetic video: F = 32 tokens per frame over the whole sequence. Tokens of the same in-frame
// position attend to each other across frames (the grid's frame-stride diagonals) and every
// query attends to the keys at phase 7 (the grid's vertical lines).
struct Planted {
  QKShape s{1, 2, 1, 1024, 1024, 64};
  QK x;
  static constexpr int F = 32, hot = 7;
  Planted() {
    x = random_qk(s, 9600);
    for (auto& e : x.q) e *= 0.3f;
    for (auto& e : x.k) e *= 0.3f;
    for (int h = 0; h < s.Hq; ++h)
      for (int i = 0; i < s.Lq; ++i) {
        float* q = &x.q[static_cast<std::size_t>((h * s.Lq + i) * s.D)];
        q[i % F] += 7.0f;
        q[63] += 5.0f;
      }
    for (int j = 0; j < s.Lk; ++j) {
      float* k = &x.k[static_cast<std::size_t>(j * s.D)];
      k[j % F] += 7.0f;
      if (j % F == hot) k[63] += 5.0f;
    }
  }
  bool planted(int i, int j) const { return j <= i && (j % F == i % F || j % F == hot); }
};

// Float64 attention mass of the computed set (original row, original key), averaged over rows
// i >= 256, and the density (computed pairs / causal pairs) of those rows.
struct MassDensity {
  double mass = 0, density = 0, recall = 0;
};
MassDensity score(const Planted& p, const HostIndex& idx, int h) {
  const QKShape& s = p.s;
  const double c = 1.0 / 8.0;
  MassDensity r;
  double pairs = 0, causal = 0, hit = 0, planted = 0;
  int nrows = 0;
  for (int n = 0; n < s.Lq; ++n) {
    const int i = idx.qpos.empty() ? n : idx.qpos[static_cast<std::size_t>(n)];
    if (i < 256) continue;
    std::vector<double> sc(static_cast<std::size_t>(i + 1));
    double m = -1e300, z = 0;
    for (int j = 0; j <= i; ++j) {
      double d = 0;
      for (int e = 0; e < s.D; ++e)
        d += static_cast<double>(p.x.q[static_cast<std::size_t>((h * s.Lq + i) * s.D + e)]) *
             p.x.k[static_cast<std::size_t>(j * s.D + e)];
      m = std::max(m, sc[j] = d * c);
    }
    for (auto& e : sc) z += e = std::exp(e - m);
    double kept = 0;
    for (const int jn : ref::computed_keys(idx, 0, h, n)) {
      const int j = idx.kpos.empty() ? jn : idx.kpos[static_cast<std::size_t>(jn)];
      kept += sc[j] / z;
      hit += p.planted(i, j);
      pairs += 1;
    }
    for (int j = 0; j <= i; ++j) planted += p.planted(i, j);
    causal += i + 1;
    r.mass += kept;
    ++nrows;
  }
  r.mass /= nrows;
  r.density = pairs / causal;
  r.recall = hit / planted;
  return r;
}

// Recall of the planted structure (same-phase pairs and the phase-7 lines) >= 0.99. (The kept
// mass vs vertical-slash at equal density is not asserted yet: on this input the grid index is
// denser than every VS budget tried, so no equal-density pair exists; see docs.)
TEST(SparseGrid, PlantedGridRecall) {
  Context fb = fallback_context();
  const Planted p;
  const Grid g{.stride = Planted::F, .top_k = 1, .lines = 1, .segments = {{0, 1024, 0}}};
  const HostIndex gi = build_host(fb, p.s, p.x, g);
  for (int h = 0; h < p.s.Hq; ++h) EXPECT_GE(score(p, gi, h).recall, 0.99) << "head " << h;
}

// The full budget (every visible block): permuted attention ≡ dense attention. Without segments
// the order is the identity and the result is bitwise dense attention; with a video segment the
// per-row sums run in the permuted key order, so the tolerance is |d| <= 1e-5 (1 + |O|).
TEST(SparseGrid, FullBudgetEqualsDense) {
  Context dev = device_context();
  Context fb = fallback_context();
  const QKShape s{1, 4, 2, 200, 260, 64};
  const QK x = random_qk(s, 9700);
  const auto vv = random_normal(x.k.size(), 9701);
  Grid qbd{.stride = 24, .top_k = 5, .lines = 0, .segments = {{20, 250, 0}}};
  qbd.boundary = Boundary::q_boundary;
  qbd.modality = modality_of(260);
  Grid two = qbd;
  two.boundary = Boundary::two_d;
  const Grid cases[] = {Grid{.top_k = 5, .lines = 0},
                        Grid{.stride = 24, .top_k = 5, .lines = 0, .segments = {{20, 250, 0}}}, qbd,
                        two};
  for (Context* ctx : {&dev, &fb}) {
    const Tensor q = ctx->upload(x.q, DType::f32, {s.B, s.Hq, s.Lq, s.D});
    const Tensor k = ctx->upload(x.k, DType::f32, {s.B, s.Hkv, s.Lk, s.D});
    const Tensor v = ctx->upload(vv, DType::f32, {s.B, s.Hkv, s.Lk, s.D});
    const AttentionOptions ao{.causal = true, .return_lse = true};
    const auto dense = attention(*ctx, q, k, v, ao);
    const auto want = dense.out.download<float>(), want_lse = dense.lse.download<float>();
    for (std::size_t ci = 0; ci < std::size(cases); ++ci) {
      const auto r = attention(*ctx, q, k, v, Pattern(cases[ci]), ao);
      const auto got = r.out.download<float>(), got_lse = r.lse.download<float>();
      if (ci == 0) {
        EXPECT_EQ(compare_bits(got, want), "") << "identity order";
        EXPECT_EQ(compare_bits(got_lse, want_lse), "") << "identity order lse";
        continue;
      }
      double worst = 0, worst_lse = 0;
      for (std::size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(double(got[i]) - want[i]) / (1 + std::abs(want[i])));
      for (std::size_t i = 0; i < got_lse.size(); ++i)
        worst_lse = std::max(
            worst_lse, std::abs(double(got_lse[i]) - want_lse[i]) / (1 + std::abs(want_lse[i])));
      EXPECT_LE(worst, 1e-5) << "case " << ci;
      EXPECT_LE(worst_lse, 1e-5) << "case " << ci;
    }
  }
}

TEST(SparseGrid, RejectsHostileOptions) {
  Context fb = fallback_context();
  const QKShape s{1, 2, 2, 100, 100, 64};
  const QK x = random_qk(s, 9800);
  auto expect_error = [&](const Grid& g, const char* needle, bool causal = true) {
    try {
      build_host(fb, s, x, g, IndexOptions{.causal = causal});
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(Grid{.stride = -4}, "stride");
  expect_error(Grid{.top_k = -1}, "top_k");
  expect_error(Grid{.lines = -2}, "lines");
  expect_error(Grid{.segments = {{10, 120, 8}}}, "segment");
  expect_error(Grid{.segments = {{10, 50, 8}, {40, 60, 8}}}, "segment");
  expect_error(Grid{.segments = {{10, 50, -1}}}, "segment");
  expect_error(Grid{}, "causal", false);
  Grid m{.boundary = Boundary::q_boundary};
  m.modality.assign(99, 0);
  expect_error(m, "modality");
  m.modality.assign(100, 0);
  m.modality[5] = -1;
  expect_error(m, "modality[5]");
}

}  // namespace
}  // namespace sparq::test
