// The sparse prefill kernel (spec §3): dense index == sparq::attention() bit for bit (also past
// 4096 keys, where both merge 4096-key segments); kernel == fallback bitwise over shapes, seeds,
// GQA, sharing, permuted positions, token A-shape masks and columns; fallback vs the float64
// reference of the same key sets; bad calls rejected before any kernel runs.
#include <cmath>
#include <functional>

#include "reference/sparse_ref.h"
#include "sparse/sparse_test_util.h"

namespace sparq::test::sparse {
namespace {

std::string name(const Shape& s) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "B%d Hq%d Hkv%d D%d Lq%lld Lk%lld %s%s%s win%d", s.B, s.Hq, s.Hkv,
                s.D, static_cast<long long>(s.Lq), static_cast<long long>(s.Lk),
                s.causal ? "causal" : "full",
                s.sharing == IndexSharing::kv_group ? " kv_group" : "",
                s.permuted ? " permuted" : "", s.window);
  return buf;
}

void dense_equals_dense(Context& ctx, const Shape& s, std::uint64_t seed) {
  const Inputs in = random_inputs(s, seed);
  const Uploaded t = upload(ctx, s, in);
  AttentionOptions o;
  o.causal = s.causal;
  o.return_lse = true;
  const AttentionResult want = sparq::attention(ctx, t.q, t.k, t.v, o);
  const SparseIndex x = dense_index(ctx, s.B, hi_count(s), s.Lq, s.Lk, s.causal, s.sharing);
  const AttentionResult got = sparq::attention(ctx, t.q, t.k, t.v, x, o);
  EXPECT_EQ(compare_bits(f32(got.out), f32(want.out)), "") << name(s);
  EXPECT_EQ(compare_bits(f32(got.lse), f32(want.lse)), "") << name(s);
  // the Dense pattern (through build_index) is the same index
  const AttentionResult viap = sparq::attention(ctx, t.q, t.k, t.v, Dense{}, o);
  EXPECT_EQ(compare_bits(f32(viap.out), f32(want.out)), "") << name(s);
}

std::vector<Shape> dense_shapes() {
  std::vector<Shape> v;
  v.push_back({1, 4, 2, 64, 200, 200, true});
  v.push_back({2, 2, 2, 128, 100, 300, true});
  v.push_back({1, 2, 1, 64, 130, 130, false});
  v.push_back({1, 2, 1, 64, 37, 4300, true});  // past 4096 keys: two segments merged
  v.push_back({1, 1, 1, 128, 64, 4200, false});
  Shape g{1, 4, 2, 64, 150, 150, true};
  g.sharing = IndexSharing::kv_group;
  v.push_back(g);
  return v;
}

TEST(SparsePrefill, DenseIndexEqualsDenseAttentionFallback) {
  Context cpu = fallback_context();
  std::uint64_t seed = 10;
  for (const Shape& s : dense_shapes()) dense_equals_dense(cpu, s, seed++);
}

TEST(SparsePrefill, DenseIndexEqualsDenseAttentionDevice) {
  Context dev = device_context();
  std::uint64_t seed = 10;
  for (const Shape& s : dense_shapes()) dense_equals_dense(dev, s, seed++);
}

std::vector<Shape> random_shapes() {
  std::vector<Shape> v;
  v.push_back({1, 4, 2, 64, 200, 200, true});
  v.push_back({2, 2, 1, 128, 70, 333, true});
  v.push_back({1, 2, 2, 64, 150, 150, false});
  Shape g{1, 4, 2, 64, 129, 260, true};
  g.sharing = IndexSharing::kv_group;
  v.push_back(g);
  Shape p{1, 2, 1, 64, 192, 192, true};
  p.permuted = true;
  v.push_back(p);
  Shape w{1, 2, 1, 64, 300, 300, true};
  w.sink = 8;
  w.window = 40;
  v.push_back(w);
  v.push_back({1, 1, 1, 64, 64, 4500, true});  // tiles across the 4096 boundary
  v.push_back({1, 1, 1, 64, 1, 90, true});     // one query row
  return v;
}

TEST(SparsePrefill, KernelEqualsFallback) {
  Context dev = device_context();
  Context cpu = fallback_context();
  std::uint64_t seed = 100;
  for (const Shape& s : random_shapes())
    for (int rep = 0; rep < 2; ++rep, ++seed) {
      const HostIndex h = random_index(s, seed, 4, rep ? 70 : 20);
      const Inputs in = random_inputs(s, seed);
      AttentionOptions o;
      o.causal = s.causal;
      o.return_lse = rep == 0;
      const Uploaded td = upload(dev, s, in), tc = upload(cpu, s, in);
      const AttentionResult a = sparq::attention(dev, td.q, td.k, td.v, upload_index(dev, h), o);
      const AttentionResult b = sparq::attention(cpu, tc.q, tc.k, tc.v, upload_index(cpu, h), o);
      EXPECT_EQ(compare_bits(f32(a.out), f32(b.out)), "") << name(s) << " seed " << seed;
      if (o.return_lse) {
        EXPECT_EQ(compare_bits(f32(a.lse), f32(b.lse)), "") << name(s);
      }
    }
}

// The sparse kernel shares the dense kernel's body and speed knobs (prefill_body.h,
// DenseKernelConfig): under the other SPARQ_TUNE_DENSE layout (PoCL: 256 work-items with the next
// slice prefetched, i.e. the GPU layout and its one-step-ahead slot staging; GPUs: 128, plain)
// it still equals the fallback bit for bit, and the dense index still equals dense attention.
TEST(SparsePrefill, KernelOtherConfig) {
  Context dev = device_context();
  Context cpu = fallback_context();
  const bool gpu = dev.device().is_gpu;
  struct Env {
    explicit Env(const char* v) { EXPECT_EQ(setenv("SPARQ_TUNE_DENSE", v, 1), 0); }
    ~Env() { unsetenv("SPARQ_TUNE_DENSE"); }
  } env(gpu ? "threads=128,prefetch=0,unroll=0" : "threads=256,prefetch=1,unroll=0");
  std::uint64_t seed = 500;
  for (const Shape& s : random_shapes()) {
    const HostIndex h = random_index(s, seed, 4, seed % 2 ? 70 : 20);
    const Inputs in = random_inputs(s, seed);
    AttentionOptions o;
    o.causal = s.causal;
    o.return_lse = seed % 2 == 0;
    const Uploaded td = upload(dev, s, in), tc = upload(cpu, s, in);
    const AttentionResult a = sparq::attention(dev, td.q, td.k, td.v, upload_index(dev, h), o);
    const AttentionResult b = sparq::attention(cpu, tc.q, tc.k, tc.v, upload_index(cpu, h), o);
    EXPECT_EQ(compare_bits(f32(a.out), f32(b.out)), "") << name(s) << " seed " << seed;
    if (o.return_lse) {
      EXPECT_EQ(compare_bits(f32(a.lse), f32(b.lse)), "") << name(s);
    }
    ++seed;
  }
  // (Two 4096-key segments under the other config: AttentionExact.DenseKernelOtherConfig covers
  // the shared body at 4200 keys; CI time.)
  dense_equals_dense(dev, {2, 2, 2, 128, 100, 300, true}, seed++);
}

TEST(SparsePrefill, NanReachesOnlyRowsThatSeeIt) {
  Context dev = device_context();
  Context cpu = fallback_context();
  const Shape s{1, 1, 1, 64, 200, 200, true};
  const HostIndex h = random_index(s, 7);
  Inputs in = random_inputs(s, 7);
  in.k[static_cast<std::size_t>(150 * 64 + 3)] = std::numeric_limits<float>::quiet_NaN();
  AttentionOptions o;
  o.causal = true;
  const Uploaded td = upload(dev, s, in), tc = upload(cpu, s, in);
  const auto a = f32(sparq::attention(dev, td.q, td.k, td.v, upload_index(dev, h), o).out);
  const auto b = f32(sparq::attention(cpu, tc.q, tc.k, tc.v, upload_index(cpu, h), o).out);
  EXPECT_EQ(compare_bits(a, b), "");
  for (std::int64_t i = 0; i < s.Lq; ++i) {
    const auto keys = ref::computed_keys(h, 0, 0, i);
    const bool sees = std::find(keys.begin(), keys.end(), 150) != keys.end();
    EXPECT_EQ(std::isnan(b[static_cast<std::size_t>(i * 64)]), sees) << "row " << i;
  }
}

TEST(SparsePrefill, FallbackMatchesFloat64Reference) {
  Context cpu = fallback_context();
  std::uint64_t seed = 300;
  double worst = 0;
  for (const Shape& s : random_shapes()) {
    const HostIndex h = random_index(s, seed, 4, 30);
    const Inputs in = random_inputs(s, seed++);
    AttentionOptions o;
    o.causal = s.causal;
    o.return_lse = true;
    const Uploaded t = upload(cpu, s, in);
    const AttentionResult r = sparq::attention(cpu, t.q, t.k, t.v, upload_index(cpu, h), o);
    const auto want = ref::sparse_attention(in.q, in.k, in.v, s.B, s.Hq, s.Hkv, s.D, h);
    const auto out = f32(r.out), lse = f32(r.lse);
    for (std::size_t e = 0; e < out.size(); ++e) {
      const double err = std::abs(out[e] - want.out[e]);
      worst = std::max(worst, err / (1 + std::abs(want.out[e])));
      ASSERT_LE(err, 2e-6 * (1 + std::abs(want.out[e]))) << name(s) << " element " << e;
    }
    for (std::size_t e = 0; e < lse.size(); ++e)
      ASSERT_LE(std::abs(lse[e] - want.lse2[e]), 4e-5) << name(s) << " row " << e;
  }
  std::printf("sparse prefill vs float64: max |err| / (1 + |O|) = %.3g\n", worst);
}

TEST(SparsePrefill, BadCallsAreRejected) {
  Context cpu = fallback_context();
  const Shape s{1, 2, 1, 64, 100, 100, true};
  const Uploaded t = upload(cpu, s, random_inputs(s, 1));
  HostIndex h = random_index(s, 1);
  const SparseIndex x = upload_index(cpu, h);
  AttentionOptions o;
  o.causal = true;
  const auto inv = ErrorCode::invalid_argument;
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, AttentionOptions{}); }, inv,
               {"causal"});
  SparseIndex y = x;
  y.Lq = 99;
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, y, o); }, inv, {"Lq = 99"});
  y = x;
  y.sharing = IndexSharing::kv_group;
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, y, o); }, inv, {"Hi = 2"});
  AttentionOptions f16 = o;
  f16.out_dtype = DType::f16;
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, f16); }, ErrorCode::unsupported,
               {"out_dtype"});
  AttentionOptions bad_precision = o;  // (int8 and nvfp4 run: SparseInt8, Nvfp4Sparse)
  bad_precision.precision = static_cast<Precision>(9);
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, bad_precision); },
               ErrorCode::unsupported, {"precision"});
  const Shape s200{1, 2, 1, 200, 100, 100, true};  // D > 128 (D < 128 runs zero-padded)
  const Uploaded t200 = upload(cpu, s200, random_inputs(s200, 1));
  expect_error([&] { sparq::attention(cpu, t200.q, t200.k, t200.v, x, o); }, ErrorCode::unsupported,
               {"D = 200"});
  // a caller-made index with a broken invariant: rejected before the kernel
  h.tile_start[1] = 40;
  SparseIndex bad = x;
  bad.tile_start = cpu.upload(h.tile_start, DType::i32, {1, 2, 2, h.max_tiles});
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, bad, o); }, inv,
               {"tile_start[b=0, h=0, qb=0, slot=1]"});
  // a builder's index whose tensor was swapped loses its seal and is validated
  SparseIndex sealed = dense_index(cpu, 1, 2, 100, 100, true);
  sealed.tile_start = cpu.upload(std::vector<std::int32_t>(2 * 2 * 2, 8), DType::i32, {1, 2, 2, 2});
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, sealed, o); }, inv, {"invariant"});
  // wrong index tensor shape
  y = x;
  y.tile_count = cpu.upload(std::vector<std::int32_t>(3, 1), DType::i32, {3});
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, y, o); }, ErrorCode::shape_mismatch,
               {"tile_count"});
}

}  // namespace
}  // namespace sparq::test::sparse
