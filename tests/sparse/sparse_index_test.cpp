// The common sparse index (spec §2, §4): normalization cases from the spec text, the top-k order,
// the validator (each invariant violated once, message naming field and (b, h, qb, slot)),
// .sqidx files and block-mask interop.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "sparse/sparse_select.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using Iv = std::vector<std::pair<std::int32_t, std::int32_t>>;
using V = std::vector<std::int32_t>;

NormalizedRow norm(Iv iv, V cols, int p1, int lk, bool causal = true, V kpos = {},
                   int max_tiles = 64, int max_cols = 64) {
  return normalize_index_row(std::move(iv), std::move(cols), p1, lk, causal, kpos, max_tiles,
                             max_cols);
}

TEST(SparseIndex, NormalizeMergesRoundsAndCursors) {
  // one interval -> consecutive 64-tiles from its 16-rounded start
  EXPECT_EQ(norm({{0, 100}}, {}, 1000, 2000).tiles, (V{0, 64}));
  // touching intervals merge ([5,40) + [40,70) = [5,70)), start rounded down to 0
  EXPECT_EQ(norm({{40, 70}, {5, 40}}, {}, 1000, 2000).tiles, (V{0, 64}));
  // an isolated 64-key slash interval whose start is not a multiple of 16 needs two tiles
  EXPECT_EQ(norm({{70, 134}}, {}, 1000, 2000).tiles, (V{64, 128}));
  // the cursor: [0,10) emits tile 0 (overshoots to 64); [32,100) then starts at 64
  EXPECT_EQ(norm({{0, 10}, {32, 100}}, {}, 1000, 2000).tiles, (V{0, 64}));
  // starts already multiples of 16 (MInference's conversion): tiles follow the intervals
  EXPECT_EQ(norm({{16, 80}, {200, 264}, {256, 320}}, {}, 1000, 2000).tiles, (V{16, 192, 256}));
  // causal clipping to end(qb) = P1 + 1 (identity order) and to Lk
  EXPECT_EQ(norm({{0, 500}}, {}, 99, 2000).tiles, (V{0, 64}));
  EXPECT_EQ(norm({{0, 500}}, {}, 1000, 70, false).tiles, (V{0, 64}));
  EXPECT_EQ(norm({{-40, 20}, {90, 80}, {3000, 4000}}, {}, 1000, 2000).tiles, (V{0}));
  // non-causal: no clip to P1
  EXPECT_EQ(norm({{0, 500}}, {}, 99, 2000, false).tiles, (V{0, 64, 128, 192, 256, 320, 384, 448}));
}

TEST(SparseIndex, NormalizeColumns) {
  // sorted, duplicates removed, out of range / invisible / inside a tile dropped
  const auto r = norm({{0, 64}}, {200, 5, 150, 200, -1, 1000, 64, 63}, 300, 400);
  EXPECT_EQ(r.tiles, (V{0}));
  EXPECT_EQ(r.cols, (V{64, 150, 200}));
  EXPECT_EQ(norm({{0, 64}}, {200, 5, 150, 181}, 180, 400).cols, (V{150}));
  EXPECT_EQ(norm({{0, 64}}, {200, 5, 150, 181}, 180, 400, false).cols, (V{150, 181, 200}));
  EXPECT_TRUE(norm({}, {3, 2, 1}, 180, 400).tiles.empty());
  EXPECT_EQ(norm({}, {3, 2, 1}, 180, 400).cols, (V{1, 2, 3}));
}

TEST(SparseIndex, NormalizeWithKpos) {
  V kpos(128);
  for (int j = 0; j < 128; ++j) kpos[static_cast<std::size_t>(j)] = 127 - j;
  // tile [0,64) holds positions 127..64 > P1 = 10: dropped; [64,128) holds 63..0: kept
  const auto r = norm({{0, 128}}, {0, 100, 120}, 10, 128, true, kpos);
  EXPECT_EQ(r.tiles, (V{64}));
  EXPECT_TRUE(r.cols.empty());  // 0 invisible (kpos 127), 100 and 120 inside tile 64
  // no clipping by P1 with kpos: [0, 128) is not cut at 11
  EXPECT_EQ(norm({{0, 128}}, {}, 200, 128, true, kpos).tiles, (V{0, 64}));
  const auto c = norm({{64, 128}}, {10, 60, 3}, 70, 128, true, kpos);
  EXPECT_EQ(c.cols, (V{60}));  // kpos(60) = 67 <= 70; kpos(10) = 117, kpos(3) = 124 invisible
}

TEST(SparseIndex, NormalizeCapacityOverflowIsAnError) {
  expect_error(
      [] {
        norm({{0, 200}}, {}, 1000, 2000, true, {}, 3, 0);
      },
      ErrorCode::internal, {"tiles", "capacity 3"});
  expect_error(
      [] {
        norm({{0, 64}}, {100, 200}, 1000, 2000, true, {}, 4, 1);
      },
      ErrorCode::internal, {"columns", "capacity 1"});
  EXPECT_EQ(norm({{0, 200}}, {}, 1000, 2000, true, {}, 4, 0).tiles, (V{0, 64, 128, 192}));
}

TEST(SparseIndex, TopkOrder) {
  using namespace sparq::cl_common;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(sq_topk_before(inf, 9, 1e30f, 0));
  EXPECT_TRUE(sq_topk_before(2.0f, 9, 1.0f, 0));
  EXPECT_TRUE(sq_topk_before(1.0f, 0, 1.0f, 9));
  EXPECT_FALSE(sq_topk_before(1.0f, 9, 1.0f, 0));
  EXPECT_TRUE(sq_topk_before(-0.0f, 1, 0.0f, 2));  // -0 == +0: by index
  EXPECT_FALSE(sq_topk_before(0.0f, 2, -0.0f, 1));
  EXPECT_TRUE(sq_topk_before(-1e30f, 9, -inf, 0));
  EXPECT_TRUE(sq_topk_before(-inf, 9, nan, 0));
  EXPECT_TRUE(sq_topk_before(nan, 0, nan, 1));
  EXPECT_TRUE(sq_topk_before(inf, 0, inf, 1));
  // selection: scores with ties, NaN, infinities; result sorted by index
  std::vector<float> s = {1.0f, nan, 3.0f, -inf, 3.0f, inf, 0.0f, -0.0f, 2.0f};
  std::vector<float> ws(9);
  std::vector<int> out(9);
  auto sel = [&](int k) {
    const int n =
        sq_topk_select(s.data(), nullptr, static_cast<int>(s.size()), k, ws.data(), out.data());
    return std::vector<int>(out.begin(), out.begin() + n);
  };
  EXPECT_EQ(sel(1), (std::vector<int>{5}));
  EXPECT_EQ(sel(2), (std::vector<int>{2, 5}));
  EXPECT_EQ(sel(3), (std::vector<int>{2, 4, 5}));
  EXPECT_EQ(sel(5), (std::vector<int>{0, 2, 4, 5, 8}));
  EXPECT_EQ(sel(6), (std::vector<int>{0, 2, 4, 5, 6, 8}));        // +0 at 6 before -0 at 7 (index)
  EXPECT_EQ(sel(8), (std::vector<int>{0, 2, 3, 4, 5, 6, 7, 8}));  // -inf before NaN
  EXPECT_EQ(sel(20).size(), 9u);
  EXPECT_TRUE(sel(0).empty());
  // explicit candidate indices
  std::vector<float> cs = {5.0f, 5.0f, 7.0f};
  std::vector<int> ci = {40, 10, 30};
  const int n = sq_topk_select(cs.data(), ci.data(), 3, 2, ws.data(), out.data());
  EXPECT_EQ(std::vector<int>(out.begin(), out.begin() + n), (std::vector<int>{10, 30}));
}

// A valid index to break: B 2, Hi 2, Lq 150, Lk 200 (off 50), causal, one column per row.
HostIndex valid_index() {
  Context ctx = fallback_context();
  HostIndex h = download_index(dense_index(ctx, 2, 2, 150, 200, true));
  EXPECT_EQ(h.nqb, 3);
  EXPECT_EQ(h.max_tiles, 4);
  validate_index(h);
  return h;
}

void expect_invalid(const HostIndex& h, const std::vector<std::string>& parts) {
  expect_error([&] { validate_index(h); }, ErrorCode::invalid_argument, parts);
}

TEST(SparseIndex, DenseIndexShape) {
  const HostIndex h = valid_index();
  // block 0: rows 0..63 at positions 50..113 -> tiles 0, 64; block 2: rows 128..149 -> 178..199
  EXPECT_EQ(h.tile_count, (V{2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3, 4}));
  EXPECT_EQ(V(h.tile_start.begin(), h.tile_start.begin() + 4), (V{0, 64, -1, -1}));
  EXPECT_EQ(h.max_cols, 0);
}

TEST(SparseIndex, ValidatorRejectsEachInvariant) {
  HostIndex base = valid_index();
  // give rows room for columns: max_cols 2, one column in row (1, 1, 1) (tiles 0, 64, 128)
  auto with_cols = [&] {
    HostIndex h = base;
    h.max_cols = 2;
    h.col_index.assign(h.tile_count.size() * 2, -1);
    return h;
  };
  const std::int64_t row = (1 * 2 + 1) * 3 + 1;  // b=1, h=1, qb=1
  const std::size_t ts = static_cast<std::size_t>(row * 4);
  {
    HostIndex h = base;
    h.tile_count[static_cast<std::size_t>(row)] = 5;
    expect_invalid(h, {"tile_count[b=1, h=1, qb=1]", "invariant 1"});
    h.tile_count[static_cast<std::size_t>(row)] = -1;
    expect_invalid(h, {"tile_count[b=1, h=1, qb=1]", "invariant 1"});
  }
  {
    HostIndex h = with_cols();
    h.col_count[static_cast<std::size_t>(row)] = 3;
    expect_invalid(h, {"col_count[b=1, h=1, qb=1]", "invariant 1"});
  }
  {
    HostIndex h = base;  // tiles 0, 64, 128 -> 0, 48, 128: overlap
    h.tile_start[ts + 1] = 48;
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1, slot=1] = 48", "invariant 2"});
    h.tile_start[ts + 1] = 0;  // not ascending
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1, slot=1] = 0", "invariant 2"});
  }
  {
    HostIndex h = base;  // tile start >= Lk
    h.tile_start[ts + 2] = 208;
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1, slot=2] = 208", "invariant 3"});
    h.tile_start[ts + 0] = -16;
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1, slot=0] = -16", "invariant 3"});
  }
  {
    HostIndex h = base;  // block 0 (P1 = 113): a tile at 128 is invisible
    const std::size_t t0 = static_cast<std::size_t>(((1 * 2 + 1) * 3 + 0) * 4);
    h.tile_count[static_cast<std::size_t>((1 * 2 + 1) * 3 + 0)] = 3;
    h.tile_start[t0 + 2] = 128;
    expect_invalid(h, {"tile_start[b=1, h=1, qb=0, slot=2] = 128", "invariant 4"});
  }
  {
    HostIndex h = with_cols();  // row (1,1,1): P1 = 177; tiles 0, 64, 128 cover [0, 192)
    h.tile_count[static_cast<std::size_t>(row)] = 2;
    h.tile_start[ts + 2] = -1;  // tiles 0, 64: but rows up to 177 need their own key (inv 6)
    h.col_count[static_cast<std::size_t>(row)] = 1;
    h.col_index[static_cast<std::size_t>(row * 2)] = 190;  // invisible column
    expect_invalid(h, {"col_index[b=1, h=1, qb=1, slot=0] = 190", "invariant 4"});
    h.col_index[static_cast<std::size_t>(row * 2)] = 100;  // inside tile 64
    expect_invalid(h, {"col_index[b=1, h=1, qb=1, slot=0] = 100", "invariant 5"});
    h.col_index[static_cast<std::size_t>(row * 2)] = 130;
    h.col_index[static_cast<std::size_t>(row * 2 + 1)] = 130;
    h.col_count[static_cast<std::size_t>(row)] = 2;  // duplicate column
    expect_invalid(h, {"col_index[b=1, h=1, qb=1, slot=1] = 130", "invariant 5"});
    h.col_index[static_cast<std::size_t>(row * 2 + 1)] = 300;  // out of range
    expect_invalid(h, {"col_index[b=1, h=1, qb=1, slot=1] = 300", "invariant 3"});
    h.col_index[static_cast<std::size_t>(row * 2 + 1)] = 131;  // fine columns: coverage fails
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1]", "row 78", "invariant 6"});
  }
  {
    HostIndex h = base;  // unused slot not -1
    h.tile_start[ts + 3] = 0;
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1, slot=3] = 0", "invariant 7"});
    HostIndex g = with_cols();
    g.col_index[static_cast<std::size_t>(row * 2 + 1)] = 7;
    expect_invalid(g, {"col_index[b=1, h=1, qb=1, slot=1] = 7", "invariant 7"});
  }
  {
    HostIndex h = base;  // 16-alignment
    h.tile_start[ts + 2] = 136;
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1, slot=2] = 136", "invariant 8"});
  }
  {
    HostIndex h = base;  // zero tiles (edge case of §12)
    h.tile_count[static_cast<std::size_t>(row)] = 0;
    std::fill_n(h.tile_start.begin() + static_cast<std::ptrdiff_t>(ts), 4, -1);
    expect_invalid(h, {"tile_start[b=1, h=1, qb=1]", "invariant 6"});
    h.causal = false;
    expect_invalid(h, {"tile_count[b=1, h=1, qb=1] = 0", "invariant 6"});
  }
  {
    HostIndex h = base;  // metadata
    h.off = 0;
    expect_invalid(h, {"off = 0"});
    h = base;
    h.nqb = 2;
    expect_invalid(h, {"nqb = 2"});
    h = base;
    h.kpos.assign(400, 0);
    h.qpos.assign(300, 0);
    expect_invalid(h, {"kpos[b=0][1] = 0", "permutation"});
  }
  // a valid index with columns passes
  HostIndex h = with_cols();
  h.col_count[static_cast<std::size_t>(row)] = 0;
  validate_index(h);
}

TEST(SparseIndex, PermutedIndexValidates) {
  // Lq = Lk = 128, keys reversed: kpos(j) = 127 - j; queries in identity positions.
  HostIndex h;
  h.B = 1;
  h.Hi = 1;
  h.Lq = 128;
  h.Lk = 128;
  h.nqb = 2;
  h.max_tiles = 2;
  h.max_cols = 0;
  h.tile_count = {1, 2};
  h.col_count = {0, 0};
  h.tile_start = {64, -1, 0, 64};  // block 0 (positions 0..63) sees keys 64..127 only
  for (int i = 0; i < 128; ++i) h.qpos.push_back(i);
  for (int j = 0; j < 128; ++j) h.kpos.push_back(127 - j);
  validate_index(h);
  h.tile_count = {2, 2};
  h.tile_start = {0, 64, 0, 64};  // tile 0 of block 0 holds positions 127..64 > P1 = 63
  expect_invalid(h, {"tile_start[b=0, h=0, qb=0, slot=0] = 0", "invariant 4"});
  h.tile_count = {1, 1};
  h.tile_start = {64, -1, 64, -1};  // block 1's rows 64..127 live in keys 63..0: not covered
  expect_invalid(h, {"tile_start[b=0, h=0, qb=1]", "invariant 6"});
}

TEST(SparseIndex, SaveLoadRoundTrip) {
  Context ctx = fallback_context();
  HostIndex h = valid_index();
  h.max_cols = 2;
  h.col_index.assign(h.tile_count.size() * 2, -1);
  const SparseIndex x = upload_index(ctx, h);
  const auto dir =
      std::filesystem::temp_directory_path() / ("sparq_sqidx_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "a.sqidx").string();
  save_index(x, path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const HostIndex back = download_index(load_index(ctx, path));
  EXPECT_EQ(back.tile_count, h.tile_count);
  EXPECT_EQ(back.tile_start, h.tile_start);
  EXPECT_EQ(back.col_index, h.col_index);
  EXPECT_EQ(back.Lq, 150);
  EXPECT_EQ(back.off, 50);
  // truncated file and bad magic are io_errors; a file with a broken invariant is rejected
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  expect_error([&] { load_index(ctx, path); }, ErrorCode::io_error, {"bytes"});
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "not an index";
  }
  expect_error([&] { load_index(ctx, path); }, ErrorCode::io_error, {"not a .sqidx"});
  HostIndex bad = h;
  bad.tile_start[1] = 72;
  SparseIndex xb = x;
  xb.tile_start = ctx.upload(bad.tile_start, DType::i32, {2, 2, 3, 4});
  save_index(xb, path);
  expect_error([&] { load_index(ctx, path); }, ErrorCode::invalid_argument, {"invariant"});
  std::filesystem::remove_all(dir);
}

TEST(SparseIndex, BlockMaskRoundTrip) {
  Context ctx = fallback_context();
  // Lq = Lk = 300, causal; mask 128-blocks: qblock 1 keeps key block 0 only; qblock 2 keeps 1
  const std::int64_t nq = 3, nk = 3;
  std::vector<std::uint8_t> m(static_cast<std::size_t>(nq * nk), 0);
  m[0 * 3 + 0] = 1;
  m[1 * 3 + 0] = 1;
  m[2 * 3 + 1] = 1;
  const Tensor mask = ctx.upload(m, DType::u8, {1, 1, nq, nk});
  const SparseIndex x = from_block_mask(ctx, mask, 128, 300, 300, true);
  EXPECT_TRUE(x.added_diagonal);  // qblock 1 lacks its diagonal block, qblock 2 too
  const HostIndex h = download_index(x);
  validate_index(h);
  // index rows (64): qb 0,1 <- mask row 0: [0,128) clipped; qb 2,3 <- row 1: key block 0 +
  // diagonal (qb 3: tiles 0, 64, 192); qb 4 <- row 2: key block 1 + diagonal
  EXPECT_EQ(h.tile_count, (V{1, 2, 3, 3, 3}));
  EXPECT_EQ(V(h.tile_start.begin() + 2 * 5, h.tile_start.begin() + 3 * 5), (V{0, 64, 128, -1, -1}));
  EXPECT_EQ(V(h.tile_start.begin() + 4 * 5, h.tile_start.begin() + 5 * 5),
            (V{128, 192, 256, -1, -1}));
  const auto back = to_block_mask(ctx, x, 128).download<std::uint8_t>();
  EXPECT_EQ(back, (std::vector<std::uint8_t>{1, 0, 0, 1, 1, 0, 0, 1, 1}));
  // a mask with its diagonal already set adds nothing
  const Tensor full = ctx.upload(back, DType::u8, {1, 1, nq, nk});
  EXPECT_FALSE(from_block_mask(ctx, full, 128, 300, 300, true).added_diagonal);
  expect_error([&] { from_block_mask(ctx, full, 32, 300, 300, true); }, ErrorCode::invalid_argument,
               {"block = 32"});
  expect_error([&] { from_block_mask(ctx, full, 64, 300, 300, true); }, ErrorCode::shape_mismatch,
               {"mask is"});
}

}  // namespace
}  // namespace sparq::test
