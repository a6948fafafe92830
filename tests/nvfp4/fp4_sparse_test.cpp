// NVFP4 attention over a SparseIndex (specs/fp4_attention.md §4.1, §4.6; sparse_attention.md
// §11): kernel ≡ fallback bitwise for the builders' patterns (A-shape, exact A-shape,
// block-sparse, vertical-slash with columns, XAttention) and random indices (columns, permuted
// positions, kv_group sharing, GQA, causal or not), D 64 and 128, portable and emulated-MMA
// kernels; the dense index ≡ dense nvfp4 attention bitwise; accuracy against the float64
// reference of the same key sets; bad calls refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

#include "context_impl.h"
#include "host/src/nvfp4/nvfp4_common.h"
#include "nvfp4/fp4_test_util.h"
#include "reference/sparse_ref.h"
#include "sparse/sparse_test_util.h"

namespace sparq::test {
namespace {

using sparse::Shape;

AttentionOptions nvfp4_options(bool causal) {
  AttentionOptions o;
  o.causal = causal;
  o.precision = Precision::nvfp4;
  return o;
}

// An index source: a builder pattern (built on the fallback) or a random valid index.
struct Case {
  const char* what;
  Shape s;
  std::function<HostIndex(Context&, const sparse::Uploaded&)> index;
  bool columns = false;   // the index must have column chunks
  bool segments = false;  // some row must have tiles in two 4096-key chunks
};

Case pattern_case(const char* what, Shape s, Pattern p, bool columns = false) {
  return {what, s,
          [s, p](Context& cpu, const sparse::Uploaded& t) {
            IndexOptions io;
            io.causal = s.causal;
            io.sharing = s.sharing;
            return download_index(build_index(cpu, t.q, t.k, p, io));
          },
          columns};
}
Case random_case(const char* what, Shape s, std::uint64_t seed, int n_col) {
  return {what, s,
          [s, seed, n_col](Context&, const sparse::Uploaded&) {
            return sparse::random_index(s, seed, 3, n_col);
          },
          true};
}

std::vector<Case> d64_cases() {
  std::vector<Case> v;
  v.push_back(pattern_case("A-shape GQA", {1, 4, 2, 64, 300, 300, true}, AShape{64, 128}));
  v.push_back(pattern_case("exact A-shape", {1, 2, 1, 64, 260, 260, true}, AShape{20, 90, true}));
  v.push_back(pattern_case("block-sparse Lq<Lk", {1, 2, 1, 64, 150, 280, true}, BlockSparse{2}));
  v.push_back(pattern_case(
      "vertical-slash", {1, 2, 1, 64, 320, 320, true},
      VerticalSlash{.vertical = 40, .slash = 0, .forced_cols = 4, .forced_diags = 8}, true));
  v.push_back(pattern_case("XAttention", {1, 2, 1, 64, 256, 256, true}, XAttention{8, 0.6f}));
  Shape perm{1, 2, 1, 64, 192, 192, true};
  perm.permuted = true;
  v.push_back(random_case("permuted", perm, 31, 30));
  Shape group{1, 4, 2, 64, 129, 200, false};
  group.sharing = IndexSharing::kv_group;
  v.push_back(random_case("kv_group full", group, 32, 70));
  Case two = random_case("two chunks", {1, 2, 1, 64, 64, 4500, true}, 33, 20);
  two.segments = true;  // tiles below and above key 4096: the state restarts, then merges
  v.push_back(two);
  return v;
}
std::vector<Case> d128_cases() {
  std::vector<Case> v;
  v.push_back(random_case("columns full", {1, 2, 1, 128, 100, 170, false}, 41, 80));
  v.push_back(pattern_case(
      "vertical-slash", {1, 2, 2, 128, 200, 200, true},
      VerticalSlash{.vertical = 30, .slash = 50, .forced_cols = 3, .forced_diags = 5}));
  return v;
}

// The fp4 plan over an index with a forced dot path: Q/K/V quantized unsmoothed, random delta
// rows (so the bias path is covered too).
std::vector<float> run_plan(Context& ctx, const Shape& s, const sparse::Inputs& in,
                            const HostIndex& h, nvfp4_detail::Fp4DotPath path) {
  const sparse::Uploaded t = sparse::upload(ctx, s, in);
  const SparseIndex x = upload_index(ctx, h);
  nvfp4_detail::Fp4Plan p;
  p.batch = s.B;
  p.hq = s.Hq;
  p.hkv = s.Hkv;
  p.lq = static_cast<int>(s.Lq);
  p.lk = static_cast<int>(s.Lk);
  p.lk64 = (p.lk + 63) / 64 * 64;
  p.d = s.D;
  p.causal = s.causal;
  p.c = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.D)) * 1.4426950408889634);
  p.q = fp4_quantize_rows(ctx, t.q);
  p.k = fp4_quantize_rows(ctx, t.k);
  p.v = fp4_quantize_tokens(ctx, t.v);
  p.delta_nblk = (p.lq + 127) / 128;
  p.delta =
      ctx.upload(random_normal(static_cast<std::size_t>(s.B * s.Hq * p.delta_nblk * s.Lk), 7, 2.0f),
                 DType::f32, {s.B, s.Hq, p.delta_nblk, s.Lk});
  p.row_end = p.lq;
  p.index = &x;
  std::lock_guard lock(ctx.impl()->mutex);
  const Tensor out = nvfp4_detail::new_tensor(ctx, DType::f32, {s.B, s.Hq, s.Lq, s.D});
  nvfp4_detail::run_fp4_attention(ctx, p, out, &path);
  return out.download<float>();
}

// mode: 0 the public entry (device default kernel, Q/K smoothing) ≡ fallback; 1 the plan with
// the emulated-MMA kernel (and on NVIDIA the mma.sync kernel) ≡ the fallback's plan.
void check_cases(const std::vector<Case>& cases, int mode) {
  Context dev = device_context();
  if (dev.backend() == Backend::fallback) GTEST_SKIP() << "the test context has no OpenCL device";
  Context cpu = fallback_context();
  std::uint64_t seed = 500;
  for (const Case& c : cases) {
    const sparse::Inputs in = sparse::random_inputs(c.s, ++seed);
    const sparse::Uploaded tc = sparse::upload(cpu, c.s, in);
    const HostIndex h = c.index(cpu, tc);
    int cols = 0;
    for (std::int32_t n : h.col_count) cols += n;
    if (c.columns) {
      EXPECT_GT(cols, 0) << c.what << ": the case must exercise column chunks";
    }
    bool two_chunks = false;
    for (std::size_t row = 0; row < h.tile_count.size(); ++row) {
      const std::int32_t* ts = h.tile_start.data() + row * h.max_tiles;
      for (int n = 1; n < h.tile_count[row]; ++n)
        two_chunks = two_chunks || ts[n] / 4096 != ts[n - 1] / 4096;
    }
    if (c.segments) {
      EXPECT_TRUE(two_chunks) << c.what << ": the case must have tiles in two chunks";
    }
    if (mode == 0) {
      const sparse::Uploaded td = sparse::upload(dev, c.s, in);
      const AttentionOptions o = nvfp4_options(c.s.causal);
      const auto want =
          sparse::f32(sparq::attention(cpu, tc.q, tc.k, tc.v, upload_index(cpu, h), o).out);
      const auto got =
          sparse::f32(sparq::attention(dev, td.q, td.k, td.v, upload_index(dev, h), o).out);
      EXPECT_EQ(compare_bits(got, want), "") << c.what << " D" << c.s.D << " seed " << seed;
    } else {
      const auto want = run_plan(cpu, c.s, in, h, nvfp4_detail::Fp4DotPath::portable);
      EXPECT_EQ(compare_bits(run_plan(dev, c.s, in, h, nvfp4_detail::Fp4DotPath::emulated), want),
                "")
          << c.what << " D" << c.s.D << " emulated MMA, seed " << seed;
      if (dev.impl()->device->quirks().inline_ptx) {  // NVIDIA: the real mma.sync path too
        EXPECT_EQ(compare_bits(run_plan(dev, c.s, in, h, nvfp4_detail::Fp4DotPath::mma), want), "")
            << c.what << " D" << c.s.D << " mma.sync, seed " << seed;
      }
    }
  }
}

TEST(Nvfp4Sparse, D64KernelEqualsFallback) {
  check_cases(d64_cases(), 0);
}
TEST(Nvfp4Sparse, D64EmulatedMmaEqualsFallback) {
  check_cases(d64_cases(), 1);
}
TEST(Nvfp4Sparse, D128KernelEqualsFallback) {
  check_cases(d128_cases(), 0);
}

// The dense index through the sparse path gives dense nvfp4 attention's bits (same tiles, same
// order, the same 4096-key chunks: Lk 4200), on the fallback (also through the Dense pattern) and
// with the device's sparse kernel (against the fallback's dense op: dense kernel ≡ fallback is
// Nvfp4AttentionExact's job, so this process builds one attention program).
TEST(Nvfp4Sparse, DenseIndexEqualsDenseNvfp4) {
  Context dev = device_context();
  Context cpu = fallback_context();
  std::vector<Shape> shapes = {
      {1, 4, 2, 64, 130, 200, true}, {1, 2, 1, 128, 70, 70, false}, {1, 2, 1, 64, 64, 4200, true}};
  Shape g{1, 4, 2, 64, 150, 150, true};
  g.sharing = IndexSharing::kv_group;
  shapes.push_back(g);
  std::uint64_t seed = 900;
  for (const Shape& s : shapes) {
    const sparse::Inputs in = sparse::random_inputs(s, ++seed);
    const sparse::Uploaded t = sparse::upload(cpu, s, in);
    AttentionOptions o = nvfp4_options(s.causal);
    o.quant.q_smooth = s.D == 128 ? QSmooth::per_head : QSmooth::per_block128;
    const auto want = sparse::f32(sparq::attention(cpu, t.q, t.k, t.v, o).out);
    char what[64];
    std::snprintf(what, sizeof what, "D%d Lq%lld", s.D, static_cast<long long>(s.Lq));
    const int hi = sparse::hi_count(s);
    const SparseIndex x = dense_index(cpu, s.B, hi, s.Lq, s.Lk, s.causal, s.sharing);
    EXPECT_EQ(compare_bits(sparse::f32(sparq::attention(cpu, t.q, t.k, t.v, x, o).out), want), "")
        << what;
    IndexOptions io;
    io.sharing = s.sharing;
    const auto viap = sparse::f32(sparq::attention(cpu, t.q, t.k, t.v, Dense{}, o, io).out);
    EXPECT_EQ(compare_bits(viap, want), "") << "Dense pattern " << what;
    if (dev.backend() == Backend::fallback || s.D == 128) continue;
    const sparse::Uploaded td = sparse::upload(dev, s, in);
    const SparseIndex xd = dense_index(dev, s.B, hi, s.Lq, s.Lk, s.causal, s.sharing);
    EXPECT_EQ(compare_bits(sparse::f32(sparq::attention(dev, td.q, td.k, td.v, xd, o).out), want),
              "")
        << "device " << what;
  }
}

// Against float64 attention over the same key sets (tests/reference/sparse_ref.h): over the
// exact inputs (the format's loss, as dense nvfp4: cosine >= 0.98) and over the dequantized
// Q/K/V without smoothing (the kernel's own steps: cosine >= 0.99, rel-L1 <= 0.1).
TEST(Nvfp4Sparse, AccuracyVsFloat64) {
  Context cpu = fallback_context();
  for (int d : {64, 128}) {
    const Shape s{1, 2, 1, d, 256, 256, true};
    const sparse::Inputs in = sparse::random_inputs(s, 60 + d);
    const sparse::Uploaded t = sparse::upload(cpu, s, in);
    const HostIndex h = download_index(build_index(
        cpu, t.q, t.k,
        VerticalSlash{.vertical = 30, .slash = 60, .forced_cols = 4, .forced_diags = 8}));
    AttentionOptions o = nvfp4_options(true);
    o.quant.q_smooth = QSmooth::off;
    o.quant.k_smooth = false;
    const auto got = sparse::f32(sparq::attention(cpu, t.q, t.k, t.v, upload_index(cpu, h), o).out);
    const Accuracy a = accuracy(got, ref::sparse_attention(in.q, in.k, in.v, 1, 2, 1, d, h).out);
    const auto qd = dequantize_rows(fp4_quantize_rows(cpu, t.q));
    const auto kd = dequantize_rows(fp4_quantize_rows(cpu, t.k));
    const auto vd = dequantize_tokens(fp4_quantize_tokens(cpu, t.v), 1, 256, d);
    const Accuracy b = accuracy(got, ref::sparse_attention(qd, kd, vd, 1, 2, 1, d, h).out);
    std::printf(
        "[nvfp4 sparse] VS D=%d: vs exact cosine %.5f rel-L1 %.4f; vs dequantized QKV "
        "cosine %.5f rel-L1 %.4f\n",
        d, a.cosine, a.rel_l1, b.cosine, b.rel_l1);
    EXPECT_GE(a.cosine, 0.98);
    EXPECT_LE(a.rel_l1, 0.2);
    EXPECT_GE(b.cosine, 0.99);
    EXPECT_LE(b.rel_l1, 0.1);
  }
}

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no sparq::Error; expected one mentioning '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(Nvfp4Sparse, BadCallsAreRefused) {
  Context cpu = fallback_context();
  const Shape s{1, 2, 1, 64, 64, 64, true};
  const sparse::Inputs in = sparse::random_inputs(s, 3);
  const sparse::Uploaded t = sparse::upload(cpu, s, in);
  const SparseIndex x = dense_index(cpu, 1, 2, 64, 64, true);
  AttentionOptions o = nvfp4_options(true);
  o.return_lse = true;
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, o); }, "return_lse");
  o = nvfp4_options(false);  // the index was built causal
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, o); }, "causal");
  o = nvfp4_options(true);
  const Tensor q16 =
      cpu.upload(std::vector<std::uint16_t>(64 * 64 * 2), DType::f16, {1, 2, 64, 64});
  expect_error([&] { sparq::attention(cpu, q16, t.k, t.v, x, o); }, "f32");
  o.quant.q_smooth = static_cast<QSmooth>(7);
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, x, o); }, "q_smooth");
  const SparseIndex kv = dense_index(cpu, 1, 2, 64, 64, true, IndexSharing::kv_group);
  o = nvfp4_options(true);
  expect_error([&] { sparq::attention(cpu, t.q, t.k, t.v, kv, o); }, "Hi");
}

}  // namespace
}  // namespace sparq::test
