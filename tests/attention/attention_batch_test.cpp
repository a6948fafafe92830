// Kernel == fallback, bit for bit, for packed (varlen) batches and paged KV caches. Unused
// page slots are NaN, so reading one would show in the output.
#include <fmt/format.h>

#include "attention/attention_test_util.h"

namespace sparq::test::attn {
namespace {

struct VarlenCase {
  std::vector<std::int32_t> lq, lk;
  int hq = 2, hkv = 1, d = 64;
  bool causal = true;
  DType in = DType::f32, out = DType::f32;
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format("lq=[{}] lk=[{}] Hq={} Hkv={} D={} causal={} in={} out={} seed={}",
                       fmt::join(lq, ","), fmt::join(lk, ","), hq, hkv, d, causal, dt(in), dt(out),
                       seed);
  }
};

std::vector<std::int32_t> offsets(const std::vector<std::int32_t>& lens) {
  std::vector<std::int32_t> cu{0};
  for (auto l : lens) cu.push_back(cu.back() + l);
  return cu;
}

void check_varlen(Context& dev, Context& cpu, const VarlenCase& c) {
  SCOPED_TRACE(c.name());
  const auto cq = offsets(c.lq), ck = offsets(c.lk);
  const auto q = random_normal(std::size_t(cq.back()) * c.hq * c.d, c.seed);
  const auto k = random_normal(std::size_t(ck.back()) * c.hkv * c.d, c.seed + 1);
  const auto v = random_normal(std::size_t(ck.back()) * c.hkv * c.d, c.seed + 2);
  auto tq = upload_pair(dev, cpu, q, c.in, {cq.back(), c.hq, c.d});
  auto tk = upload_pair(dev, cpu, k, c.in, {ck.back(), c.hkv, c.d});
  auto tv = upload_pair(dev, cpu, v, c.in, {ck.back(), c.hkv, c.d});
  const std::vector<std::int64_t> n{static_cast<std::int64_t>(cq.size())};
  auto tcq = upload_index_pair(dev, cpu, cq, n), tck = upload_index_pair(dev, cpu, ck, n);
  const AttentionOptions o{.causal = c.causal, .return_lse = true, .out_dtype = c.out};
  expect_same(attention_varlen(dev, tq.dev, tk.dev, tv.dev, tcq.dev, tck.dev, o),
              attention_varlen(cpu, tq.cpu, tk.cpu, tv.cpu, tcq.cpu, tck.cpu, o), c.name());
}

TEST(AttentionBatchExact, Varlen) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 400;
  // Empty sequences, Lq > Lk (fully masked causal rows), tile and chunk edges.
  const std::vector<std::int32_t> lq{5, 0, 70, 100, 1, 65, 3}, lk{5, 10, 70, 200, 4100, 0, 64};
  for (int d : {64, 128, 80})
    for (bool causal : {false, true})
      check_varlen(dev, cpu, {.lq = lq, .lk = lk, .d = d, .causal = causal, .seed = seed++});
  check_varlen(
      dev, cpu,
      {.lq = {1, 1, 1}, .lk = {9, 4097, 300}, .hq = 8, .hkv = 2, .d = 128, .seed = seed++});
  check_varlen(dev, cpu,
               {.lq = {40, 33},
                .lk = {40, 50},
                .hq = 4,
                .hkv = 4,
                .d = 64,
                .in = DType::bf16,
                .out = DType::f16,
                .seed = seed++});
}

struct PagedCase {
  std::vector<std::int32_t> lens;
  int lq = 1, hq = 4, hkv = 2, d = 128, page_size = 16;
  bool nhd = true, causal = true, rank3 = false;
  DType in = DType::f32, out = DType::f32;
  std::uint64_t seed = 1;
  std::string name() const {
    return fmt::format(
        "lens=[{}] Lq={} Hq={} Hkv={} D={} page={} {} causal={} rank3={} in={} "
        "out={} seed={}",
        fmt::join(lens, ","), lq, hq, hkv, d, page_size, nhd ? "NHD" : "HND", causal, rank3, dt(in),
        dt(out), seed);
  }
};

void check_paged(Context& dev, Context& cpu, const PagedCase& c) {
  SCOPED_TRACE(c.name());
  std::vector<std::vector<float>> k, v;
  for (std::size_t b = 0; b < c.lens.size(); ++b) {
    k.push_back(random_normal(std::size_t(c.hkv) * c.lens[b] * c.d, c.seed + 10 * b));
    v.push_back(random_normal(std::size_t(c.hkv) * c.lens[b] * c.d, c.seed + 10 * b + 1));
  }
  const PagedHost host = make_paged(k, v, c.lens, c.hkv, c.d, c.page_size, c.nhd, c.seed);
  const int b = static_cast<int>(c.lens.size());
  const auto q = random_normal(std::size_t(b) * c.hq * c.lq * c.d, c.seed + 7);
  const std::vector<std::int64_t> qs = c.rank3 ? std::vector<std::int64_t>{b, c.hq, c.d}
                                               : std::vector<std::int64_t>{b, c.hq, c.lq, c.d};
  auto tq = upload_pair(dev, cpu, q, c.in, qs);
  const AttentionOptions o{.causal = c.causal, .return_lse = true, .out_dtype = c.out};
  expect_same(attention_paged(dev, tq.dev, upload_paged(dev, host, c.in), o),
              attention_paged(cpu, tq.cpu, upload_paged(cpu, host, c.in), o), c.name());
}

TEST(AttentionBatchExact, Paged) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 500;
  for (bool nhd : {true, false})
    for (int page : {16, 64}) {
      check_paged(
          dev, cpu,
          {.lens = {1, 5000, 300}, .page_size = page, .nhd = nhd, .rank3 = true, .seed = seed++});
      check_paged(dev, cpu,
                  {.lens = {4, 70, 4097},
                   .lq = 4,
                   .hq = 8,
                   .hkv = 1,
                   .d = 64,
                   .page_size = page,
                   .nhd = nhd,
                   .seed = seed++});
    }
  check_paged(dev, cpu,
              {.lens = {9000},
               .hq = 32,
               .hkv = 8,
               .d = 128,
               .rank3 = true,
               .in = DType::bf16,
               .out = DType::bf16,
               .seed = seed++});
  check_paged(dev, cpu,
              {.lens = {33, 0, 100},
               .lq = 3,
               .hq = 2,
               .hkv = 2,
               .d = 80,
               .page_size = 8,
               .causal = false,
               .in = DType::f16,
               .seed = seed++});
}

}  // namespace
}  // namespace sparq::test::attn
