// Sparse attention cases (specs/sparse_attention.md §3, §14): the A-shape and block-sparse index
// builders and the sparse prefill kernel over their indices, causal, B = 1; the prefill also with
// Precision::nvfp4 (op prefill_nvfp4: smoothing, quantization and fp4_attention_sparse) and
// Precision::int8 (op prefill_int8: smoothing, int8 quantization and sage8's sparse mode).
//
// Counting (spec §3): computed pairs N = sum over (b, h, qb) of rows(qb) * (64 * tile_count +
// col_count); kernel flops = 4 * D * N; kernel bytes = 4 * (|Q| + |O|) + 4 * 2 * D * sum over
// index rows (b, hi, qb) of (64 * tile_count + col_count) + index bytes. density_ppm =
// 1e6 * N / N_dense (N of the dense causal index, same formula). The tile counts are computed on
// the host from the builders' definitions (A-shape: static; block-sparse: max(#forced,
// min(top_k, #candidates)) blocks per query block, whatever the data).
// prefill_nvfp4: the same flops; bytes = fp32 Q, K, V read once and O written once (the
// compulsory traffic of the fp32-in op, as nvfp4/attention) + the packed K/V of every visited
// key (D/2 + D/16 bytes each of K and V) + index bytes. prefill_int8: the same, with the int8
// K/V of every visited key (D bytes of codes each of K and V, plus V's fp32 scale per 16 tokens
// and channel: D/4 bytes; K's one scale per 64 keys is not counted).
// Builders: A-shape reads nothing (bytes = index written); block-sparse pools Q and K
// (bytes = |Q| + |K| in fp32 + index) and scores nQB x nKB / 2 block pairs (causal) per head
// (flops = 2 * D * that + (Lq + Lk) * D for the pooling sums).
// Validation: small cases compare the whole index (as int32) and output with the fallback;
// large cases rebuild on the fallback the last 128 query rows of the first and last query head
// (all keys) — index rows depend only on their block's rows and on K, and output rows are
// independent — and compare those index rows and outputs.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "cases/case.h"

namespace sparq::bench {
namespace {

constexpr std::int64_t kSubsetRows = 128;

struct SparseShape {
  std::int64_t hq, hkv, l, dim;
  bool block_sparse;  // else A-shape (128, 3968)
  int top_k = 100;
  int n_init = 128, n_local = 3968;
  Precision precision = Precision::fp32;  // of the prefill
  AttentionOptions options() const {
    AttentionOptions o;
    o.causal = true;
    o.precision = precision;
    return o;
  }
  Pattern pattern() const {
    if (block_sparse) return BlockSparse{top_k};
    return AShape{n_init, n_local};
  }
  std::string pattern_name() const {
    return block_sparse ? fmt::format("block_sparse({})", top_k)
                        : fmt::format("ashape({},{})", n_init, n_local);
  }
};

// Tiles per query block, from the builders' definitions (causal, Lq == Lk, identity order).
std::vector<std::int64_t> tiles_per_block(const SparseShape& s) {
  const std::int64_t nqb = (s.l + 63) / 64;
  std::vector<std::int64_t> t(static_cast<std::size_t>(nqb));
  for (std::int64_t qb = 0; qb < nqb; ++qb) {
    const std::int64_t p0 = 64 * qb, p1 = std::min(64 * qb + 64, s.l) - 1, end = p1 + 1;
    if (s.block_sparse) {
      const std::int64_t ncand = p1 / 64 + 1, nforced = qb == 0 ? 1 : 2;
      t[static_cast<std::size_t>(qb)] =
          std::max<std::int64_t>(nforced, std::min<std::int64_t>(s.top_k, ncand));
    } else {
      std::vector<std::pair<std::int32_t, std::int32_t>> iv{
          {0, static_cast<std::int32_t>(std::min<std::int64_t>(s.n_init, end))},
          {static_cast<std::int32_t>(std::max<std::int64_t>(0, p0 - s.n_local + 1)),
           static_cast<std::int32_t>(end)}};
      t[static_cast<std::size_t>(qb)] = static_cast<std::int64_t>(
          normalize_index_row(iv, {}, static_cast<std::int32_t>(p1), static_cast<std::int32_t>(s.l),
                              true, {}, 1 << 20, 0)
              .tiles.size());
    }
  }
  return t;
}

struct Counts {
  double pairs = 0, dense_pairs = 0, kv_keys = 0;
};
Counts count(const SparseShape& s) {
  Counts c;
  const auto t = tiles_per_block(s);
  for (std::size_t qb = 0; qb < t.size(); ++qb) {
    const std::int64_t r0 = 64 * static_cast<std::int64_t>(qb);
    const std::int64_t rows = std::min<std::int64_t>(64, s.l - r0);
    const std::int64_t dense_tiles = (std::min(r0 + 64, s.l) + 63) / 64;
    c.pairs += static_cast<double>(rows * 64 * t[qb]) * s.hq;
    c.dense_pairs += static_cast<double>(rows * 64 * dense_tiles) * s.hq;
    c.kv_keys += 64.0 * t[qb] * s.hq;  // per index row (per_q_head: Hi = Hq)
  }
  return c;
}

std::vector<float> slice_rows(const std::vector<float>& m, std::int64_t i, std::int64_t rows,
                              std::int64_t d, std::int64_t r0, std::int64_t r1) {
  auto first = m.begin() + (i * rows + r0) * d;
  return std::vector<float>(first, first + (r1 - r0) * d);
}

// Compares int32 index arrays as exact integers (a Validation, like BitComparer).
struct IntComparer {
  std::size_t compared = 0, bad = 0;
  std::string first;
  void compare(const std::int32_t* got, const std::int32_t* want, std::size_t n,
               const std::string& where) {
    for (std::size_t i = 0; i < n; ++i, ++compared)
      if (got[i] != want[i] && bad++ == 0)
        first = fmt::format("{}[{}]: {} vs {}", where, i, got[i], want[i]);
  }
};

class SparseInstance : public Instance {
 public:
  SparseInstance(Context& ctx, SparseShape s, bool kernel, std::uint64_t seed)
      : ctx_(ctx), s_(s), kernel_(kernel) {
    q_ = random_normal(static_cast<std::size_t>(s.hq * s.l * s.dim), seed * 4 + 0);
    k_ = random_normal(static_cast<std::size_t>(s.hkv * s.l * s.dim), seed * 4 + 1);
    q_dev_ = ctx_.upload(q_, DType::f32, {1, s.hq, s.l, s.dim});
    k_dev_ = ctx_.upload(k_, DType::f32, {1, s.hkv, s.l, s.dim});
    if (kernel_) {
      v_ = random_normal(static_cast<std::size_t>(s.hkv * s.l * s.dim), seed * 4 + 2);
      v_dev_ = ctx_.upload(v_, DType::f32, {1, s.hkv, s.l, s.dim});
      index_ = build_index(ctx_, q_dev_, k_dev_, s_.pattern());
    }
  }

  void run() override {
    if (kernel_)
      out_ = attention(ctx_, q_dev_, k_dev_, v_dev_, index_, s_.options()).out;
    else
      index_ = build_index(ctx_, q_dev_, k_dev_, s_.pattern());
  }

  Validation validate(Context& fallback) override {
    const HostIndex got = download_index(index_);
    const std::vector<float> out = kernel_ ? out_.download<float>() : std::vector<float>{};
    IntComparer ic;
    BitComparer bc;
    std::string scope = "full";
    if (s_.l <= 1024) {
      Tensor q = fallback.upload(q_, DType::f32, {1, s_.hq, s_.l, s_.dim});
      Tensor k = fallback.upload(k_, DType::f32, {1, s_.hkv, s_.l, s_.dim});
      const SparseIndex x = build_index(fallback, q, k, s_.pattern());
      const HostIndex want = download_index(x);
      ic.compare(got.tile_count.data(), want.tile_count.data(), want.tile_count.size(),
                 "tile_count");
      ic.compare(got.tile_start.data(), want.tile_start.data(), want.tile_start.size(),
                 "tile_start");
      if (kernel_) {
        Tensor v = fallback.upload(v_, DType::f32, {1, s_.hkv, s_.l, s_.dim});
        bc.compare(out, attention(fallback, q, k, v, x, s_.options()).out.download<float>(), "out");
      }
    } else {
      const std::int64_t rows = kSubsetRows, r0 = s_.l - rows, group = s_.hq / s_.hkv;
      const int nqb = got.nqb, sub_nqb = static_cast<int>(rows / 64);
      for (std::int64_t h : {std::int64_t{0}, s_.hq - 1}) {
        const std::int64_t hk = h / group;
        Tensor q = fallback.upload(slice_rows(q_, h, s_.l, s_.dim, r0, s_.l), DType::f32,
                                   {1, 1, rows, s_.dim});
        Tensor k = fallback.upload(slice_rows(k_, hk, s_.l, s_.dim, 0, s_.l), DType::f32,
                                   {1, 1, s_.l, s_.dim});
        const SparseIndex x = build_index(fallback, q, k, s_.pattern());
        const HostIndex want = download_index(x);
        for (int qb = 0; qb < sub_nqb; ++qb) {
          const std::int64_t grow = h * nqb + (nqb - sub_nqb + qb);
          ic.compare(&got.tile_count[static_cast<std::size_t>(grow)],
                     &want.tile_count[static_cast<std::size_t>(qb)], 1,
                     fmt::format("tile_count[h={}, qb={}]", h, grow % nqb));
          const int mt = std::min(got.max_tiles, want.max_tiles);
          ic.compare(&got.tile_start[static_cast<std::size_t>(grow * got.max_tiles)],
                     &want.tile_start[static_cast<std::size_t>(qb * want.max_tiles)],
                     static_cast<std::size_t>(mt),
                     fmt::format("tile_start[h={}, qb={}]", h, grow % nqb));
        }
        if (kernel_) {
          Tensor v = fallback.upload(slice_rows(v_, hk, s_.l, s_.dim, 0, s_.l), DType::f32,
                                     {1, 1, s_.l, s_.dim});
          // (nvfp4/int8: the last 128 rows are one whole smoothing block, and K is whole)
          const auto want_out = attention(fallback, q, k, v, x, s_.options()).out.download<float>();
          bc.compare(out.data() + (h * s_.l + r0) * s_.dim, want_out.data(), want_out.size(),
                     fmt::format("out[h={}, rows {}..{}]", h, r0, s_.l - 1));
        }
      }
      scope = fmt::format("subset: heads 0,{}, query rows {}..{} (index rows and output)",
                          s_.hq - 1, r0, s_.l - 1);
    }
    Validation v = kernel_ ? bc.result(scope) : Validation{};
    v.scope = scope;
    v.values_compared += ic.compared;
    if (!kernel_) v.exact = ic.compared > 0;
    if (ic.bad) {
      v.exact = false;
      v.detail = fmt::format("{} of {} index entries differ; {}{}", ic.bad, ic.compared, ic.first,
                             v.detail.empty() ? "" : "; " + v.detail);
    }
    return v;
  }

 private:
  Context ctx_;
  SparseShape s_;
  bool kernel_;
  std::vector<float> q_, k_, v_;
  Tensor q_dev_, k_dev_, v_dev_, out_;
  SparseIndex index_;
};

Case sparse_case(SparseShape s, bool kernel, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "sparse";
  const bool fp4 = s.precision == Precision::nvfp4, int8 = s.precision == Precision::int8;
  c.op = kernel ? (fp4 ? "prefill_nvfp4" : int8 ? "prefill_int8" : "prefill") : "build";
  c.name = fmt::format("sparse/{} {} causal B1 {} L{} D{}", c.op, s.pattern_name(),
                       head_label(s.hq, s.hkv), s.l, s.dim);
  c.size = size;
  c.seed = seed;
  const Counts n = count(s);
  const std::int64_t nqb = (s.l + 63) / 64;
  const int max_tiles = s.block_sparse
                            ? static_cast<int>(std::min<std::int64_t>(s.top_k + 3, nqb))
                            : static_cast<int>(std::min<std::int64_t>(
                                  (s.n_init + 63) / 64 + (s.n_local + 63) / 64 + 2, nqb));
  const double index_bytes = 4.0 * s.hq * nqb * (max_tiles + 2);
  c.params = {{"B", 1},
              {"Hq", s.hq},
              {"Hkv", s.hkv},
              {"Lq", s.l},
              {"Lk", s.l},
              {"D", s.dim},
              {"causal", 1},
              {"density_ppm", static_cast<std::int64_t>(1e6 * n.pairs / n.dense_pairs)},
              {"computed_pairs", static_cast<std::int64_t>(n.pairs)}};
  if (kernel && fp4) {
    c.flops = 4.0 * s.dim * n.pairs;
    c.bytes_moved = 4.0 * 2 * (s.hq + s.hkv) * s.l * s.dim +
                    2.0 * (s.dim / 2 + s.dim / 16) * n.kv_keys + index_bytes;
  } else if (kernel && int8) {
    c.flops = 4.0 * s.dim * n.pairs;
    c.bytes_moved = 4.0 * 2 * (s.hq + s.hkv) * s.l * s.dim +
                    (2.0 * s.dim + s.dim / 4.0) * n.kv_keys + index_bytes;
  } else if (kernel) {
    c.flops = 4.0 * s.dim * n.pairs;
    c.bytes_moved = 4.0 * 2 * s.hq * s.l * s.dim + 4.0 * 2 * s.dim * n.kv_keys + index_bytes;
  } else if (s.block_sparse) {
    const double pairs = static_cast<double>(nqb) * nqb / 2.0;
    c.flops = 2.0 * s.dim * pairs * s.hq + static_cast<double>(s.hq + s.hkv) * s.l * s.dim;
    c.bytes_moved = 4.0 * (s.hq + s.hkv) * s.l * s.dim + index_bytes;
  } else {
    c.flops = 0;
    c.bytes_moved = index_bytes;
  }
  c.prepare = [s, kernel, seed](Context& ctx) {
    return std::make_unique<SparseInstance>(ctx, s, kernel, seed);
  };
  return c;
}

}  // namespace

std::vector<Case> sparse_cases() {
  std::vector<Case> v;
  std::uint64_t seed = 9100;
  // small (CI): short sink/window so A-shape is sparse at 512 keys
  for (bool bs : {false, true}) {
    SparseShape s{4, 2, 512, 64, bs};
    s.top_k = 3;
    s.n_init = 64;
    s.n_local = 128;
    v.push_back(sparse_case(s, false, SizeClass::small, seed++));
    v.push_back(sparse_case(s, true, SizeClass::small, seed++));
  }
  {
    SparseShape s{2, 2, 300, 128, true};
    s.top_k = 2;
    v.push_back(sparse_case(s, true, SizeClass::small, seed++));
  }
  // large: the spec's sizes with the papers' defaults
  for (std::int64_t l : {8192, 32768, 131072})
    for (std::int64_t hkv : {32, 8})
      for (bool bs : {false, true}) {
        const SparseShape s{32, hkv, l, 128, bs};
        v.push_back(sparse_case(s, false, SizeClass::large, seed++));
        v.push_back(sparse_case(s, true, SizeClass::large, seed++));
      }
  // sparse x nvfp4 (own seeds, so the cases above keep theirs): CI size, then GQA 32/8 at 32K
  // and 128K with both patterns
  std::uint64_t fp4_seed = 9300;
  {
    SparseShape s{4, 2, 512, 64, false};
    s.n_init = 64;
    s.n_local = 128;
    s.precision = Precision::nvfp4;
    v.push_back(sparse_case(s, true, SizeClass::small, fp4_seed++));
  }
  for (std::int64_t l : {32768, 131072})
    for (bool bs : {false, true}) {
      SparseShape s{32, 8, l, 128, bs};
      s.precision = Precision::nvfp4;
      v.push_back(sparse_case(s, true, SizeClass::large, fp4_seed++));
    }
  // sparse x int8: the same shapes as sparse x nvfp4 (own seeds)
  std::uint64_t int8_seed = 9400;
  {
    SparseShape s{4, 2, 512, 64, false};
    s.n_init = 64;
    s.n_local = 128;
    s.precision = Precision::int8;
    v.push_back(sparse_case(s, true, SizeClass::small, int8_seed++));
  }
  for (std::int64_t l : {32768, 131072})
    for (bool bs : {false, true}) {
      SparseShape s{32, 8, l, 128, bs};
      s.precision = Precision::int8;
      v.push_back(sparse_case(s, true, SizeClass::large, int8_seed++));
    }
  return v;
}

}  // namespace sparq::bench
