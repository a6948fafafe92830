// merge_states: kernel == fallback bit for bit (random states, empty sides, NaN, strided and
// f16 inputs, 1 to 4 leading dims), and the documented empty-side rule.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "attention/attention_test_util.h"

namespace sparq::test::attn {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct MergeInputs {
  std::vector<std::int64_t> lead;
  std::int64_t d;
  std::vector<float> oa, la, ob, lb;
  MergeInputs(std::vector<std::int64_t> lead_, std::int64_t d_, std::uint64_t seed)
      : lead(std::move(lead_)), d(d_) {
    std::int64_t rows = 1;
    for (auto x : lead) rows *= x;
    oa = random_normal(rows * d, seed);
    ob = random_normal(rows * d, seed + 1);
    la = random_normal(rows, seed + 2, 8.0f);
    lb = random_normal(rows, seed + 3, 8.0f);
    if (rows > 3) {  // empty sides, both empty, a NaN state
      la[0] = -kInf;
      lb[1] = -kInf;
      la[2] = lb[2] = -kInf;
      lb[3] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  std::vector<std::int64_t> out_shape() const {
    auto s = lead;
    s.push_back(d);
    return s;
  }
};

TEST(MergeStates, KernelEqualsFallback) {
  Context dev = device_context(), cpu = fallback_context();
  std::uint64_t seed = 1000;
  for (const auto& lead :
       std::vector<std::vector<std::int64_t>>{{7}, {3, 5}, {2, 3, 4}, {2, 2, 3, 5}})
    for (std::int64_t d : {1, 64, 130}) {
      SCOPED_TRACE(fmt::format("lead=[{}] D={} seed={}", fmt::join(lead, ","), d, seed));
      MergeInputs in(lead, d, seed++);
      auto oa = upload_pair(dev, cpu, in.oa, DType::f32, in.out_shape());
      auto ob = upload_pair(dev, cpu, in.ob, DType::f16, in.out_shape());
      auto la = upload_pair(dev, cpu, in.la, DType::f32, lead);
      auto lb = upload_pair(dev, cpu, in.lb, DType::f32, lead);
      expect_same(merge_states(dev, oa.dev, la.dev, ob.dev, lb.dev),
                  merge_states(cpu, oa.cpu, la.cpu, ob.cpu, lb.cpu), "merge_states");
    }
  {  // strided views: out stored [H, L, D] read as [L, H, D]; lse stored [H, L] read as [L, H]
    const std::int64_t h = 3, l = 9, d = 16;
    MergeInputs in({h, l}, d, seed++);
    auto oa = upload_pair(dev, cpu, in.oa, DType::f32, {h, l, d});
    auto ob = upload_pair(dev, cpu, in.ob, DType::bf16, {h, l, d});
    auto la = upload_pair(dev, cpu, in.la, DType::f32, {h, l});
    auto lb = upload_pair(dev, cpu, in.lb, DType::f32, {h, l});
    auto vo = [&](const Tensor& t) { return t.view({l, h, d}, {d, l * d, 1}); };
    auto vl = [&](const Tensor& t) { return t.view({l, h}, {1, l}); };
    expect_same(merge_states(dev, vo(oa.dev), vl(la.dev), vo(ob.dev), vl(lb.dev)),
                merge_states(cpu, vo(oa.cpu), vl(la.cpu), vo(ob.cpu), vl(lb.cpu)), "strided");
  }
}

TEST(MergeStates, EmptySideReturnsTheOther) {
  Context cpu = fallback_context();
  MergeInputs in({8}, 4, 1100);
  const Tensor oa = cpu.upload(in.oa, DType::f32, {8, 4}),
               ob = cpu.upload(in.ob, DType::f32, {8, 4});
  const Tensor la = cpu.upload(in.la, DType::f32, {8}), lb = cpu.upload(in.lb, DType::f32, {8});
  const AttentionResult m = merge_states(cpu, oa, la, ob, lb);
  const auto o = m.out.download<float>();
  const auto l = m.lse.download<float>();
  for (int e = 0; e < 4; ++e) {
    EXPECT_EQ(o[0 * 4 + e], in.ob[0 * 4 + e]) << "a empty -> b";
    EXPECT_EQ(o[1 * 4 + e], in.oa[1 * 4 + e]) << "b empty -> a";
    EXPECT_EQ(o[2 * 4 + e], in.ob[2 * 4 + e]) << "both empty -> b";
    EXPECT_TRUE(std::isnan(o[3 * 4 + e])) << "a NaN lse reaches the output";
  }
  EXPECT_EQ(l[0], in.lb[0]);
  EXPECT_EQ(l[1], in.la[1]);
  EXPECT_EQ(l[2], -kInf);
  // Equal states merge to the same output and lse + 1 (two equal halves).
  const AttentionResult same = merge_states(cpu, oa, la, oa, la);
  const auto so = same.out.download<float>();
  const auto sl = same.lse.download<float>();
  EXPECT_EQ(so[4 * 4 + 1], in.oa[4 * 4 + 1]);
  EXPECT_EQ(sl[4], in.la[4] + 1.0f);
}

}  // namespace
}  // namespace sparq::test::attn
