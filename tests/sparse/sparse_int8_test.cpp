// Precision::int8 attention over a SparseIndex (kernels_cl/attention/sage8_sparse.h): the dense
// index gives dense int8 attention's bits; kernel == fallback bitwise for every pattern (A-shape,
// exact A-shape, block-sparse, vertical-slash with columns, XAttention, random indices with
// permuted positions, token masks, kv_group sharing), portable and emulated-MMA kernels; fallback
// vs the float64 reference of the same key sets; bad combinations refused.
#include <cmath>
#include <functional>
#include <numeric>
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

struct DenseCase {
  Shape s;
  QSmooth qs;
};
std::vector<DenseCase> dense_cases() {
  Shape g{1, 4, 2, 64, 70, 200, true};  // GQA, Lq < Lk, two 128-row delta blocks of K
  Shape f{1, 2, 1, 128, 130, 130, false};
  Shape k{1, 4, 2, 64, 150, 150, true};
  k.sharing = IndexSharing::kv_group;
  return {{g, QSmooth::per_block128}, {f, QSmooth::per_head}, {k, QSmooth::off}};
}

TEST(SparseInt8, DenseIndexEqualsDenseInt8Fallback) {
  Context cpu = fallback_context();
  std::uint64_t seed = 10;
  for (const DenseCase& c : dense_cases()) dense_index_equals_dense(cpu, c.s, c.qs, seed++);
}

TEST(SparseInt8, DenseIndexEqualsDenseInt8Device) {
  Context dev = device_context();
  std::uint64_t seed = 10;
  for (const DenseCase& c : dense_cases()) dense_index_equals_dense(dev, c.s, c.qs, seed++);
}

// One kernel-vs-fallback case: a pattern through build_index, or a random valid index.
struct Case {
  std::string what;
  Shape s;
  std::optional<Pattern> pattern;  // none: random_index(s, seed) with columns
  QSmooth qs = QSmooth::per_block128;
};

std::int64_t total_columns(const SparseIndex& x) {
  const auto cc = x.col_count.download<std::int32_t>();
  return std::accumulate(cc.begin(), cc.end(), std::int64_t{0});
}

void kernel_equals_fallback(Context& dev, Context& cpu, const Case& c, std::uint64_t seed) {
  const std::string what = name(c.s, c.what);
  const Inputs in = int8_inputs(c.s, seed);
  const Uploaded td = upload(dev, c.s, in), tc = upload(cpu, c.s, in);
  const AttentionOptions o = int8_options(c.s.causal, c.qs);
  SparseIndex xd, xc;
  if (c.pattern) {
    IndexOptions io;
    io.causal = c.s.causal;
    io.sharing = c.s.sharing;
    xd = build_index(dev, td.q, td.k, *c.pattern, io);
    xc = build_index(cpu, tc.q, tc.k, *c.pattern, io);
  } else {
    const HostIndex h = random_index(c.s, seed, 3, 50);
    xd = upload_index(dev, h);
    xc = upload_index(cpu, h);
  }
  const bool has_cols = !c.pattern || std::holds_alternative<VerticalSlash>(*c.pattern);
  if (has_cols) {
    EXPECT_GT(total_columns(xc), 0) << what << ": the case must exercise column steps";
  }
  const auto a = f32(sparq::attention(dev, td.q, td.k, td.v, xd, o).out);
  const auto b = f32(sparq::attention(cpu, tc.q, tc.k, tc.v, xc, o).out);
  EXPECT_EQ(compare_bits(a, b), "") << what << " seed " << seed;
  for (float e : b) ASSERT_TRUE(std::isfinite(e)) << what;
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

std::vector<Case> portable_cases() {
  std::vector<Case> v;
  v.push_back({"A-shape", shape(2, 1, 64, 200, 260, true), AShape{32, 64, false}});
  v.push_back({"exact A-shape", shape(2, 2, 128, 150, 150, true), AShape{20, 50, true}});
  v.push_back({"block-sparse", shape(4, 2, 64, 192, 192, false), BlockSparse{2}});
  v.push_back({"vertical-slash", shape(2, 1, 128, 130, 300, true), VerticalSlash{40, 60, 64, 4, 8},
               QSmooth::per_head});
  v.push_back({"XAttention", shape(2, 2, 64, 256, 256, true), XAttention{8, 0.6f, {}, {}}});
  Shape p = shape(2, 1, 64, 192, 192, true);
  p.permuted = true;
  v.push_back({"random, permuted", p, std::nullopt});
  Shape g = shape(4, 2, 128, 129, 260, false);
  g.sharing = IndexSharing::kv_group;
  v.push_back({"random, kv_group", g, std::nullopt, QSmooth::off});
  return v;
}

TEST(SparseInt8, KernelEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 100;
  for (const Case& c : portable_cases()) kernel_equals_fallback(dev, cpu, c, seed++);
}

// The MMA kernel's sparse mode with mma.sync / shfl.sync emulated (same indexing as the PTX).
TEST(SparseInt8, MmaPathEmulated) {
  const ScopedEnv mma("SPARQ_SAGE8_MMA", "emulate");
  Context dev = device_context(), cpu = fallback_context();
  Shape w = shape(2, 1, 64, 150, 150, true);
  w.sink = 8;
  w.window = 40;
  Shape p = shape(2, 1, 128, 128, 128, true);
  p.permuted = true;
  std::uint64_t seed = 200;
  for (const Case& c :
       {Case{"vertical-slash", shape(2, 1, 64, 100, 230, true), VerticalSlash{30, 50, 64, 4, 8}},
        Case{"random, token window", w, std::nullopt},
        Case{"random, permuted", p, std::nullopt, QSmooth::per_head}})
    kernel_equals_fallback(dev, cpu, c, seed++);
  dense_index_equals_dense(dev, shape(2, 2, 128, 100, 100, true), QSmooth::per_block128, seed++);
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
  const Shape s96 = shape(2, 1, 96, 100, 100, true);
  const Uploaded t96 = upload(cpu, s96, random_inputs(s96, 1));
  expect_error([&] { sparq::attention(cpu, t96.q, t96.k, t96.v, x, o); }, ErrorCode::unsupported,
               "D = 96");
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, VerticalSlash{}, int8_options(false)); },
               ErrorCode::invalid_argument, "causal");
  EXPECT_NO_THROW(sparq::attention(cpu, t.q, t.k, t.v, x, o));
}

}  // namespace
}  // namespace sparq::test::sparse
