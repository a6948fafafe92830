// Index builders A-shape (§5.1) and block-sparse (§5.3): device == fallback (int arrays), the
// spec's definitions row by row, forced blocks, budgets, planted structure, dense layers, errors.
#include <cmath>
#include <functional>
#include <set>

#include "reference/sparse_ref.h"
#include "sparse/sparse_test_util.h"

namespace sparq::test::sparse {
namespace {

void expect_same_index(const HostIndex& a, const HostIndex& b, const std::string& what) {
  EXPECT_EQ(a.max_tiles, b.max_tiles) << what;
  EXPECT_EQ(a.tile_count, b.tile_count) << what;
  EXPECT_EQ(a.tile_start, b.tile_start) << what;
  EXPECT_EQ(a.col_count, b.col_count) << what;
  EXPECT_EQ(a.col_index, b.col_index) << what;
}

// Builds on both contexts; returns the fallback's index after checking device == fallback.
HostIndex build_both(const Shape& s, const Inputs& in, const Pattern& p, const std::string& what,
                     IndexOptions o = {}) {
  Context dev = device_context();
  Context cpu = fallback_context();
  o.causal = s.causal;
  o.sharing = s.sharing;
  const Uploaded td = upload(dev, s, in), tc = upload(cpu, s, in);
  const HostIndex a = download_index(build_index(dev, td.q, td.k, p, o));
  const HostIndex b = download_index(build_index(cpu, tc.q, tc.k, p, o));
  expect_same_index(a, b, what);
  validate_index(b);
  return b;
}

std::vector<std::int32_t> row_tiles(const HostIndex& h, int b, int hi, int qb) {
  const std::size_t row = static_cast<std::size_t>((b * h.Hi + hi) * h.nqb + qb);
  const auto first = h.tile_start.begin() + static_cast<std::ptrdiff_t>(row * h.max_tiles);
  return std::vector<std::int32_t>(first, first + h.tile_count[row]);
}

TEST(SparseBuild, AShapeMatchesDefinition) {
  struct C {
    Shape s;
    AShape a;
  };
  const std::vector<C> cases = {
      {{1, 2, 1, 64, 300, 300, true}, {64, 128}},
      {{2, 2, 2, 64, 100, 500, true}, {20, 100}},
      {{1, 2, 1, 128, 200, 200, false}, {16, 64}},
      {{1, 1, 1, 64, 700, 700, true}, {128, 3968}},  // defaults: everything within the window
  };
  for (const C& c : cases) {
    const Inputs in = random_inputs(c.s, 5);
    const HostIndex h = build_both(c.s, in, c.a, "ashape");
    for (int qb = 0; qb < h.nqb; ++qb) {
      const std::int32_t p0 = static_cast<std::int32_t>(h.off + 64 * qb);
      const std::int32_t p1 =
          static_cast<std::int32_t>(h.off + std::min<std::int64_t>(64 * qb + 64, h.Lq) - 1);
      const auto want = normalize_index_row(
          {{0, std::min(c.a.n_init, p1 + 1)}, {std::max(0, p0 - c.a.n_local + 1), p1 + 1}}, {}, p1,
          static_cast<std::int32_t>(h.Lk), c.s.causal, {}, 1000, 0);
      for (int b = 0; b < h.B; ++b)
        for (int hi = 0; hi < h.Hi; ++hi) EXPECT_EQ(row_tiles(h, b, hi, qb), want.tiles) << qb;
    }
  }
}

TEST(SparseBuild, AShapeExactKernelMatchesReference) {
  Context dev = device_context();
  Context cpu = fallback_context();
  const Shape s{1, 2, 1, 64, 333, 333, true};
  const Inputs in = random_inputs(s, 9);
  const AShape a{8, 70, true};
  AttentionOptions o;
  o.causal = true;
  o.return_lse = true;
  const Uploaded td = upload(dev, s, in), tc = upload(cpu, s, in);
  const AttentionResult rd = sparq::attention(dev, td.q, td.k, td.v, a, o);
  const AttentionResult rc = sparq::attention(cpu, tc.q, tc.k, tc.v, a, o);
  EXPECT_EQ(compare_bits(f32(rd.out), f32(rc.out)), "");
  EXPECT_EQ(compare_bits(f32(rd.lse), f32(rc.lse)), "");
  const HostIndex h = download_index(build_index(cpu, tc.q, tc.k, a));
  EXPECT_EQ(h.sink_tokens, 8);
  EXPECT_EQ(h.window_tokens, 70);
  // token-exact: row i sees j < 8 or i - 70 < j <= i, nothing else
  for (std::int64_t i : {0, 5, 100, 332}) {
    const auto keys = ref::computed_keys(h, 0, 0, i);
    std::vector<std::int32_t> want;
    for (std::int32_t j = 0; j <= i; ++j)
      if (j < 8 || j > i - 70) want.push_back(j);
    EXPECT_EQ(keys, want) << "row " << i;
  }
  const auto ref = ref::sparse_attention(in.q, in.k, in.v, s.B, s.Hq, s.Hkv, s.D, h);
  const auto out = f32(rc.out);
  for (std::size_t e = 0; e < out.size(); ++e)
    ASSERT_LE(std::abs(out[e] - ref.out[e]), 2e-6 * (1 + std::abs(ref.out[e]))) << e;
}

TEST(SparseBuild, BlockSparseDeviceEqualsFallback) {
  std::uint64_t seed = 40;
  std::vector<Shape> shapes = {{1, 4, 2, 64, 300, 300, true},
                               {2, 2, 1, 128, 100, 450, true},
                               {1, 2, 2, 64, 250, 250, false}};
  Shape g{1, 4, 2, 64, 257, 257, true};
  g.sharing = IndexSharing::kv_group;
  shapes.push_back(g);
  for (const Shape& s : shapes)
    for (int top_k : {0, 3, 100}) {
      const Inputs in = random_inputs(s, seed++);
      const HostIndex h = build_both(s, in, BlockSparse{top_k}, "block_sparse");
      // forced blocks: 0 and the diagonal; tile counts as the definition says
      for (int b = 0; b < h.B; ++b)
        for (int hi = 0; hi < h.Hi; ++hi)
          for (int qb = 0; qb < h.nqb; ++qb) {
            const auto t = row_tiles(h, b, hi, qb);
            const std::int64_t p0 = h.off + 64 * qb;
            const std::int64_t p1 = h.off + std::min<std::int64_t>(64 * qb + 64, h.Lq) - 1;
            std::set<std::int32_t> forced{0};
            for (std::int64_t kb = p0 / 64; kb <= p1 / 64; ++kb)
              forced.insert(static_cast<std::int32_t>(kb * 64));
            for (auto f : forced)
              EXPECT_NE(std::find(t.begin(), t.end(), f), t.end()) << "forced " << f;
            const std::int64_t ncand = s.causal ? p1 / 64 + 1 : (h.Lk + 63) / 64;
            const std::int64_t want = std::max<std::int64_t>(
                static_cast<std::int64_t>(forced.size()), std::min<std::int64_t>(top_k, ncand));
            EXPECT_EQ(static_cast<std::int64_t>(t.size()), want) << "qb " << qb << " k " << top_k;
          }
    }
}

TEST(SparseBuild, BlockSparseLargeBudgetIsDense) {
  Context cpu = fallback_context();
  const Shape s{1, 2, 1, 64, 300, 300, true};
  const Inputs in = random_inputs(s, 3);
  const Uploaded t = upload(cpu, s, in);
  const HostIndex h = download_index(build_index(cpu, t.q, t.k, BlockSparse{100}));
  const HostIndex d = download_index(dense_index(cpu, 1, 2, 300, 300, true));
  EXPECT_EQ(h.tile_count, d.tile_count);
  for (int qb = 0; qb < h.nqb; ++qb) EXPECT_EQ(row_tiles(h, 0, 1, qb), row_tiles(d, 0, 1, qb));
  // the kernel on it equals dense attention
  AttentionOptions o;
  o.causal = true;
  EXPECT_EQ(compare_bits(f32(sparq::attention(cpu, t.q, t.k, t.v, BlockSparse{100}, o).out),
                         f32(sparq::attention(cpu, t.q, t.k, t.v, o).out)),
            "");
}

TEST(SparseBuild, BlockSparseRecoversPlantedBlocks) {
  // Keys of blocks {3, 7, 11} carry a common direction u that every query shares; the others are
  // noise. With top_k = #forced + 3 every query block late enough must pick exactly them.
  const Shape s{1, 2, 1, 64, 1024, 1024, true};
  Inputs in = random_inputs(s, 77, 0.1f);
  std::vector<float> u = random_normal(64, 78);
  for (std::int64_t i = 0; i < s.Hq * s.Lq; ++i)
    for (int d = 0; d < 64; ++d)
      in.q[static_cast<std::size_t>(i * 64 + d)] += u[static_cast<std::size_t>(d)];
  const std::set<int> hot{3, 7, 11};
  for (int kb : hot)
    for (int r = 0; r < 64; ++r)
      for (int d = 0; d < 64; ++d)
        in.k[static_cast<std::size_t>((kb * 64 + r) * 64 + d)] +=
            2.0f * u[static_cast<std::size_t>(d)];
  const HostIndex h = build_both(s, in, BlockSparse{5}, "planted");
  int found = 0, planted = 0;
  for (int hi = 0; hi < h.Hi; ++hi)
    for (int qb = 12; qb < h.nqb; ++qb) {  // blocks that can see all planted blocks
      const auto t = row_tiles(h, 0, hi, qb);
      for (int kb : hot) {
        ++planted;
        found += std::find(t.begin(), t.end(), kb * 64) != t.end();
      }
    }
  EXPECT_GE(static_cast<double>(found) / planted, 0.99) << found << " of " << planted;
}

TEST(SparseBuild, DenseLayersAndSharing) {
  Context cpu = fallback_context();
  const Shape s{1, 4, 2, 64, 200, 200, true};
  const Uploaded t = upload(cpu, s, random_inputs(s, 2));
  IndexOptions o;
  o.layer = 1;
  o.dense_layers = {0, 1};
  const HostIndex h = download_index(build_index(cpu, t.q, t.k, AShape{0, 1}, o));
  const HostIndex d = download_index(dense_index(cpu, 1, 4, 200, 200, true));
  EXPECT_EQ(h.tile_start, d.tile_start);
  o.layer = 2;
  EXPECT_NE(download_index(build_index(cpu, t.q, t.k, AShape{0, 1}, o)).tile_count, d.tile_count);
  o.sharing = IndexSharing::kv_group;
  EXPECT_EQ(build_index(cpu, t.q, t.k, BlockSparse{2}, o).Hi, 2);
}

TEST(SparseBuild, BadArgumentsAreRejected) {
  Context cpu = fallback_context();
  const Shape s{1, 2, 1, 64, 100, 100, true};
  const Uploaded t = upload(cpu, s, random_inputs(s, 1));
  const auto inv = ErrorCode::invalid_argument;
  expect_error([&] { build_index(cpu, t.q, t.k, BlockSparse{-1}); }, inv, {"top_k = -1"});
  expect_error([&] { build_index(cpu, t.q, t.k, AShape{-1, 10}); }, inv, {"n_init = -1"});
  expect_error([&] { build_index(cpu, t.q, t.k, AShape{1, 0, true}); }, inv, {"n_local >= 1"});
  const Shape s96{1, 2, 1, 96, 100, 100, true};
  const Uploaded t96 = upload(cpu, s96, random_inputs(s96, 1));
  expect_error([&] { build_index(cpu, t96.q, t96.k, BlockSparse{}); }, ErrorCode::unsupported,
               {"D = 96"});
  EXPECT_NO_THROW(build_index(cpu, t96.q, t96.k, AShape{}));  // reads no Q/K values
  const Shape sl{1, 2, 1, 64, 100, 50, true};
  const Uploaded tl = upload(cpu, sl, random_inputs(sl, 1));
  expect_error([&] { build_index(cpu, tl.q, tl.k, AShape{}); }, inv, {"Lq = 100 > Lk = 50"});
}

}  // namespace
}  // namespace sparq::test::sparse
