// Dynamic index builder cases (specs/sparse_attention.md §3 "builder cost", §14): vertical-slash
// (MInference defaults 1000/6096) and XAttention (S = 8, tau = 0.9), timed alone (build_index),
// small shapes for CI and 8K/32K/128K, Hq = 32, Hkv in {32, 8}, D = 128 for a GPU.
//
// Counting (per call, B = 1; nl = min(64, Lq) probe rows; 2 flops per MAC):
//   vertical-slash: flops = Hq * (2 * nl * Lk * D + 8 * nl * Lk)   (probe QK^T + softmax/sums)
//                   bytes = 4 * Hq * (nl + Lk) * D + index bytes   (probe rows + K per query head)
//   XAttention:     flops = Hq * (2 * P * S * D + 8 * P), P = visible (query group, key group)
//                   pairs = sum over gi of min(ceil(Lk/S), gi + off/S + 1) (~ Lq Lk / (2 S^2))
//                   bytes = 4 * Hq * (Lq + Lk) * D + index bytes
//   index bytes = 4 * B * Hi * nQB * (max_tiles + max_cols + 2).
// Q and K: seeded normal values with a sink (keys 0..15 share a direction every query has), so
// the probe is not uniform. Validation: small cases run the fallback on the whole shape; large
// cases compare index head 0 (Q head 0, its K head) and, for XAttention, the last 1024 query
// rows (a chunked-prefill view: off + Lk - 1024 stays a multiple of 128, rows are independent).
#include <fmt/format.h>

#include <algorithm>

#include "cases/case.h"
#include "sparq/sparse.h"

namespace sparq::bench {
namespace {

struct BuilderShape {
  std::int64_t hq, hkv, lq, lk, dim;
  bool xattn;         // false: vertical-slash
  bool grid = false;  // MMInference grid (F = 256 tokens per frame over [64, Lk - 64))
};

Pattern pattern_of(const BuilderShape& s) {
  if (s.grid) return Grid{.stride = 256, .segments = {{64, s.lk - 64, 0}}};
  if (s.xattn) return XAttention{.stride = 8, .threshold = 0.9f};
  return VerticalSlash{};
}

std::vector<std::int32_t> flatten(const SparseIndex& x) {
  const HostIndex h = download_index(x);
  std::vector<std::int32_t> all = h.tile_count;
  for (const auto* v : {&h.tile_start, &h.col_count, &h.col_index})
    all.insert(all.end(), v->begin(), v->end());
  return all;
}

class BuilderInstance : public Instance {
 public:
  BuilderInstance(Context& ctx, BuilderShape s, SizeClass size, std::uint64_t seed)
      : ctx_(ctx), s_(s), size_(size) {
    q_ = random_normal(static_cast<std::size_t>(s.hq * s.lq * s.dim), seed * 2, 0.5f);
    k_ = random_normal(static_cast<std::size_t>(s.hkv * s.lk * s.dim), seed * 2 + 1, 0.5f);
    for (std::int64_t h = 0; h < s.hq; ++h)
      for (std::int64_t i = 0; i < s.lq; ++i)
        q_[static_cast<std::size_t>((h * s.lq + i) * s.dim)] += 2.0f;
    for (std::int64_t h = 0; h < s.hkv; ++h)
      for (std::int64_t j = 0; j < std::min<std::int64_t>(16, s.lk); ++j)
        k_[static_cast<std::size_t>((h * s.lk + j) * s.dim)] += 2.0f;
    q_dev_ = upload_as(ctx_, q_, DType::f32, {1, s.hq, s.lq, s.dim});
    k_dev_ = upload_as(ctx_, k_, DType::f32, {1, s.hkv, s.lk, s.dim});
  }

  void run() override { index_ = build_index(ctx_, q_dev_, k_dev_, pattern_of(s_)); }

  Validation validate(Context& fallback) override {
    if (size_ == SizeClass::small) {
      const auto got = flatten(index_);
      const auto want = flatten(build_index(
          fallback, upload_as(fallback, q_, DType::f32, {1, s_.hq, s_.lq, s_.dim}),
          upload_as(fallback, k_, DType::f32, {1, s_.hkv, s_.lk, s_.dim}), pattern_of(s_)));
      return compare_ints(got, want, "full");
    }
    // Head 0 (rows r0..lq of it for XAttention) on both executors.
    const std::int64_t r0 = s_.xattn ? std::max<std::int64_t>(0, s_.lq - 1024) : 0;
    const std::vector<float> qs(q_.begin() + r0 * s_.dim, q_.begin() + s_.lq * s_.dim);
    const std::vector<float> ks(k_.begin(), k_.begin() + s_.lk * s_.dim);
    const std::vector<std::int64_t> qshape{1, 1, s_.lq - r0, s_.dim}, kshape{1, 1, s_.lk, s_.dim};
    const auto got = flatten(build_index(ctx_, upload_as(ctx_, qs, DType::f32, qshape),
                                         upload_as(ctx_, ks, DType::f32, kshape), pattern_of(s_)));
    const auto want =
        flatten(build_index(fallback, upload_as(fallback, qs, DType::f32, qshape),
                            upload_as(fallback, ks, DType::f32, kshape), pattern_of(s_)));
    return compare_ints(
        got, want, s_.xattn ? "head 0, last 1024 query rows (chunked-prefill view)" : "head 0");
  }

 private:
  // The index arrays, compared as integers.
  static Validation compare_ints(const std::vector<std::int32_t>& got,
                                 const std::vector<std::int32_t>& want, std::string scope) {
    Validation v;
    v.scope = std::move(scope);
    v.values_compared = std::min(got.size(), want.size());
    v.exact = got == want;
    if (got.size() != want.size()) {
      v.detail = fmt::format("index sizes {} vs {}", got.size(), want.size());
    } else if (!v.exact) {
      const auto i = static_cast<std::size_t>(
          std::mismatch(got.begin(), got.end(), want.begin()).first - got.begin());
      v.detail = fmt::format("index int {} differs: {} vs {}", i, got[i], want[i]);
    }
    return v;
  }
  Context ctx_;
  BuilderShape s_;
  SizeClass size_;
  std::vector<float> q_, k_;
  Tensor q_dev_, k_dev_;
  SparseIndex index_;
};

Case builder_case(BuilderShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "sparse";
  c.op = s.grid ? "build_grid" : s.xattn ? "build_xattention" : "build_vertical_slash";
  c.name = fmt::format("sparse/build {} {} L{} D{}",
                       s.grid    ? "grid F256 100/16"
                       : s.xattn ? "xattn S8 t0.9"
                                 : "vs 1000/6096",
                       head_label(s.hq, s.hkv), s.lk, s.dim);
  c.size = size;
  c.seed = seed;
  c.params = {{"B", 1}, {"Hq", s.hq}, {"Hkv", s.hkv}, {"Lq", s.lq}, {"Lk", s.lk}, {"D", s.dim}};
  const double hq = static_cast<double>(s.hq), D = static_cast<double>(s.dim);
  const double nqb = static_cast<double>((s.lq + 63) / 64);
  if (s.xattn) {
    const std::int64_t S = 8, ngi = (s.lq + S - 1) / S, ngj = (s.lk + S - 1) / S;
    const std::int64_t shift = (s.lk - s.lq) / S;
    double pairs = 0;
    for (std::int64_t gi = 0; gi < ngi; ++gi)
      pairs += static_cast<double>(std::min(ngj, gi + shift + 1));
    const double max_tiles = 2.0 * static_cast<double>((s.lk + 127) / 128);
    c.flops = hq * (2 * pairs * S * D + 8 * pairs);
    c.bytes_moved = 4 * hq * static_cast<double>(s.lq + s.lk) * D + 4 * hq * nqb * (max_tiles + 2);
  } else {
    const double nl = static_cast<double>(std::min<std::int64_t>(64, s.lq));
    const double lk = static_cast<double>(s.lk);
    const double V = std::min(lk, 1000.0), S = std::min(lk, 6096.0);
    const double max_tiles = std::min(2 * (S + 1), static_cast<double>((s.lk + 63) / 64));
    c.flops = hq * (2 * nl * lk * D + 8 * nl * lk);
    c.bytes_moved = 4 * hq * (nl + lk) * D + 4 * hq * nqb * (max_tiles + V + 2);
  }
  c.prepare = [s, size, seed](Context& ctx) {
    return std::make_unique<BuilderInstance>(ctx, s, size, seed);
  };
  return c;
}

}  // namespace

std::vector<Case> sparse_builder_cases() {
  std::vector<Case> cases;
  std::uint64_t seed = 7100;
  for (bool x : {false, true}) {
    cases.push_back(builder_case({2, 1, 384, 512, 64, x}, SizeClass::small, seed++));
    for (std::int64_t len : {8192, 32768, 131072})
      for (std::int64_t hkv : {32, 8})
        cases.push_back(builder_case({32, hkv, len, len, 128, x}, SizeClass::large, seed++));
  }
  // Grid (§7.3): the vertical-slash probe + pooled block scores; counted as vertical-slash's
  // probe (the pooling and block scores add O((Lq + Lk) D + nQB nKB D)).
  cases.push_back(builder_case({2, 1, 384, 512, 64, false, true}, SizeClass::small, seed++));
  for (std::int64_t len : {32768, 131072})
    cases.push_back(builder_case({32, 8, len, len, 128, false, true}, SizeClass::large, seed++));
  return cases;
}

}  // namespace sparq::bench
