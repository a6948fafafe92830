// Precision::int8 attention over a SparseIndex (kernels_cl/attention/sage8_sparse.h): the dense
// index gives dense int8 attention's bits; kernel == fallback bitwise over tiny shapes that reach
// every path (tiles and column chunks, vertical-slash, random indices with permuted positions,
// the token sink/window mask, kv_group sharing, GQA, partial blocks), portable and emulated-MMA
// kernels; fallback vs the float64 reference of the same key sets; bad combinations refused.
// Kept small for CI (PoCL, 2 cores): indices are built on the fallback and uploaded.
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>

#include "reference/sparse_ref.h"
#include "runtime/runtime_test_util.h"
#include "sparse/sparse_test_util.h"

namespace sparq::test::sparse {
namespace {

std::string name(const Shape& s, const std::string& what) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: B%d Hq%d Hkv%d D%d Lq%lld Lk%lld %s%s%s win%d", what.c_str(),
                s.B, s.Hq, s.Hkv, s.D, static_cast<long long>(s.Lq), static_cast<long long>(s.Lk),
                s.causal ? "causal" : "full",
                s.sharing == IndexSharing::kv_group ? " kv_group" : "",
                s.permuted ? " permuted" : "", s.window);
  return buf;
}

AttentionOptions int8_options(bool causal, QSmooth qs = QSmooth::per_block128) {
  AttentionOptions o;
  o.causal = causal;
  o.precision = Precision::int8;
  o.quant.q_smooth = qs;
  return o;
}

// K with a per-channel bias (what K smoothing removes), as the dense int8 tests use.
Inputs int8_inputs(const Shape& s, std::uint64_t seed) {
  Inputs in = random_inputs(s, seed);
  for (std::size_t i = 0; i < in.k.size(); ++i)
    in.k[i] += (i % static_cast<std::size_t>(s.D)) % 7 == 1 ? 4.0f : 0.0f;
  return in;
}

void dense_index_equals_dense(Context& ctx, const Shape& s, QSmooth qs, std::uint64_t seed) {
  const Uploaded t = upload(ctx, s, int8_inputs(s, seed));
  const AttentionOptions o = int8_options(s.causal, qs);
  const auto want = f32(sparq::attention(ctx, t.q, t.k, t.v, o).out);
  const SparseIndex x = dense_index(ctx, s.B, hi_count(s), s.Lq, s.Lk, s.causal, s.sharing);
  EXPECT_EQ(compare_bits(f32(sparq::attention(ctx, t.q, t.k, t.v, x, o).out), want), "")
      << name(s, "dense index");
  IndexOptions io;
  io.causal = s.causal;
  io.sharing = s.sharing;
  EXPECT_EQ(compare_bits(f32(sparq::attention(ctx, t.q, t.k, t.v, Dense{}, o, io).out), want), "")
      << name(s, "Dense pattern");
}

Shape shape(int hq, int hkv, int d, std::int64_t lq, std::int64_t lk, bool causal) {
  Shape s;
  s.Hq = hq;
  s.Hkv = hkv;
  s.D = d;
  s.Lq = lq;
  s.Lk = lk;
  s.causal = causal;
  return s;
}

// The dense index gives dense int8's bits: on the fallback for GQA with Lq < Lk over two 128-row
// delta blocks of K, D = 128 non-causal, kv_group; on the device for one small causal GQA shape
// with partial tiles (the kernels' sparse mode against their dense mode).
TEST(SparseInt8, DenseIndexEqualsDenseInt8) {
  Context cpu = fallback_context();
  Shape k = shape(4, 2, 64, 150, 150, true);
  k.sharing = IndexSharing::kv_group;
  dense_index_equals_dense(cpu, shape(4, 2, 64, 70, 200, true), QSmooth::per_block128, 10);
  dense_index_equals_dense(cpu, shape(2, 1, 128, 130, 130, false), QSmooth::per_head, 11);
  dense_index_equals_dense(cpu, k, QSmooth::off, 12);
  Context dev = device_context();
  dense_index_equals_dense(dev, shape(2, 1, 64, 70, 100, true), QSmooth::per_block128, 13);
}

// One kernel-vs-fallback case: an index built on the fallback (a pattern) or a random valid
// index, uploaded to both contexts (the builders' own kernels are tested elsewhere).
struct Case {
  std::string what;
  Shape s;
  std::optional<Pattern> pattern;  // none: random_index(s, seed, n_iv, n_col)
  QSmooth qs = QSmooth::per_block128;
  int n_iv = 3, n_col = 50;
  int min_cols = 1;  // columns the index of some row must reach (column chunks exercised)
};

void kernel_equals_fallback(Context& dev, Context& cpu, const Case& c, std::uint64_t seed) {
  const std::string what = name(c.s, c.what);
  const Inputs in = int8_inputs(c.s, seed);
  const Uploaded td = upload(dev, c.s, in), tc = upload(cpu, c.s, in);
  const AttentionOptions o = int8_options(c.s.causal, c.qs);
  HostIndex h;
  if (c.pattern) {
    IndexOptions io;
    io.causal = c.s.causal;
    io.sharing = c.s.sharing;
    h = download_index(build_index(cpu, tc.q, tc.k, *c.pattern, io));
  } else {
    h = random_index(c.s, seed, c.n_iv, c.n_col);
  }
  const int most_cols = *std::max_element(h.col_count.begin(), h.col_count.end());
  EXPECT_GE(most_cols, c.min_cols) << what << ": the case must exercise column chunks";
  const auto a = f32(sparq::attention(dev, td.q, td.k, td.v, upload_index(dev, h), o).out);
  const auto b = f32(sparq::attention(cpu, tc.q, tc.k, tc.v, upload_index(cpu, h), o).out);
  EXPECT_EQ(compare_bits(a, b), "") << what << " seed " << seed;
  for (float e : b) ASSERT_TRUE(std::isfinite(e)) << what;
}

// Tiny shapes that still reach every path: partial query blocks and key tiles (Lq, Lk not
// multiples of 64, V groups past the stored V), the causal diagonal with Lq < Lk, GQA, two
// 128-row Q smoothing blocks, per-head and no smoothing, column steps with two chunks (> 64
// columns in a row) and a vertical-slash index, permuted positions, the token sink/window mask,
// kv_group sharing without causality. D = 64 here; D = 128 in MmaPathEmulated (the sparse staging
// helpers are shared by both kernels, and that variant builds in 1 s on PoCL, the portable one 3
// s).
std::vector<Case> cases() {
  std::vector<Case> v;
  v.push_back({"vertical-slash", shape(2, 1, 64, 150, 200, true), VerticalSlash{40, 60, 64, 4, 8}});
  v.push_back({"random, two column chunks", shape(2, 1, 64, 64, 256, false), std::nullopt,
               QSmooth::per_block128, 0, 150, 65});
  Shape p = shape(2, 1, 64, 100, 100, true);
  p.permuted = true;
  v.push_back({"random, permuted", p, std::nullopt, QSmooth::per_head, 3, 50, 0});
  Shape w = shape(2, 1, 64, 70, 130, true);
  w.sink = 8;
  w.window = 40;
  v.push_back({"random, token window", w, std::nullopt});
  Shape g = shape(4, 2, 64, 65, 100, false);
  g.sharing = IndexSharing::kv_group;
  v.push_back({"random, kv_group", g, std::nullopt, QSmooth::off, 3, 30});
  return v;
}

TEST(SparseInt8, KernelEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 100;
  for (const Case& c : cases()) kernel_equals_fallback(dev, cpu, c, seed++);
}

// The MMA kernel's sparse mode with mma.sync / shfl.sync emulated (same indexing as the PTX):
// one tiny case, D = 128, with tiles, columns, a partial query block, Lq < Lk and GQA.
TEST(SparseInt8, MmaPathEmulated) {
  const ScopedEnv mma("SPARQ_SAGE8_MMA", "emulate");
  Context dev = device_context(), cpu = fallback_context();
  kernel_equals_fallback(dev, cpu, {"random", shape(2, 1, 128, 70, 130, true), std::nullopt}, 200);
}

// Past one 4096-key chunk: a tile whose start >> 12 changes starts a fresh segment, and the
// segment states merge as dense int8's chunks do. The dense index == dense int8 (fallback; GQA,
// causal and not); a random causal index whose rows hold tiles in both segments (the diagonal
// past key 4096, random intervals before it) and columns: kernel == fallback, portable and
// emulated MMA.
TEST(SparseInt8, SegmentsPastOneChunk) {
  Context cpu = fallback_context();
  dense_index_equals_dense(cpu, shape(2, 1, 64, 40, 4200, true), QSmooth::per_block128, 400);
  dense_index_equals_dense(cpu, shape(2, 1, 64, 3, 8193, false), QSmooth::off, 401);
  Context dev = device_context();
  const Case c{"random, two segments", shape(2, 1, 64, 40, 4200, true), std::nullopt};
  const HostIndex h = random_index(c.s, 402, c.n_iv, c.n_col);
  bool crosses = false;  // some row holds tiles on both sides of key 4096
  for (int r = 0; r < h.B * h.Hi * h.nqb; ++r) {
    const auto* ts = h.tile_start.data() + static_cast<std::ptrdiff_t>(r) * h.max_tiles;
    const int n = h.tile_count[static_cast<std::size_t>(r)];
    crosses = crosses || (n > 1 && ts[0] < 4096 && ts[n - 1] >= 4096);
  }
  EXPECT_TRUE(crosses);
  kernel_equals_fallback(dev, cpu, c, 402);
  const ScopedEnv mma("SPARQ_SAGE8_MMA", "emulate");
  kernel_equals_fallback(dev, cpu, c, 402);
}

// Accuracy of the definition against float64 attention over the same key sets.
TEST(SparseInt8, FallbackMatchesFloat64Reference) {
  Context cpu = fallback_context();
  std::uint64_t seed = 300;
  for (const bool causal : {true, false}) {
    const Shape s = shape(2, 1, 128, 256, 256, causal);
    const HostIndex h = random_index(s, seed, 4, 60);
    const Inputs in = random_inputs(s, seed++);
    const Uploaded t = upload(cpu, s, in);
    const auto got =
        f32(sparq::attention(cpu, t.q, t.k, t.v, upload_index(cpu, h), int8_options(causal)).out);
    const auto want = ref::sparse_attention(in.q, in.k, in.v, s.B, s.Hq, s.Hkv, s.D, h);
    double dot = 0, n1 = 0, n2 = 0;
    for (std::size_t e = 0; e < got.size(); ++e) {
      dot += got[e] * want.out[e];
      n1 += double{got[e]} * got[e];
      n2 += want.out[e] * want.out[e];
    }
    const double cosine = dot / std::sqrt(n1 * n2);
    std::printf("[sparse int8 accuracy] causal=%d cosine %.6f\n", causal, cosine);
    EXPECT_GE(cosine, 0.999) << name(s, "random index");
  }
}

void expect_error(const std::function<void()>& f, ErrorCode code, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no sparq::Error; expected one mentioning '" << part << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(SparseInt8, BadCombinationsAreRefused) {
  Context cpu = fallback_context();
  const Shape s = shape(2, 1, 64, 100, 100, true);
  const Uploaded t = upload(cpu, s, random_inputs(s, 1));
  const SparseIndex x = upload_index(cpu, random_index(s, 1));
  const AttentionOptions o = int8_options(true);
  AttentionOptions lse = o;
  lse.return_lse = true;
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, lse); }, ErrorCode::unsupported,
               "return_lse");
  AttentionOptions f16 = o;
  f16.out_dtype = DType::f16;
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, f16); }, ErrorCode::unsupported,
               "out_dtype");
  AttentionOptions qs = o;
  qs.quant.q_smooth = static_cast<QSmooth>(7);
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, qs); }, ErrorCode::invalid_argument,
               "q_smooth");
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, int8_options(false)); },
               ErrorCode::invalid_argument, "causal");
  const Shape s200 = shape(2, 1, 200, 100, 100, true);  // D > 128 (D < 128 runs zero-padded)
  const Uploaded t200 = upload(cpu, s200, random_inputs(s200, 1));
  expect_error([&] { sparq::attention(cpu, t200.q, t200.k, t200.v, x, o); }, ErrorCode::unsupported,
               "D = 200");
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, VerticalSlash{}, int8_options(false)); },
               ErrorCode::invalid_argument, "causal");
  EXPECT_NO_THROW(sparq::attention(cpu, t.q, t.k, t.v, x, o));
}

}  // namespace
}  // namespace sparq::test::sparse
