// Tensors on both backends: upload/download, views with bounds checks, strided downloads,
// size checks, allocation limits, and tensors that outlive their Context.
#include <gtest/gtest.h>

#include <numeric>

#include "runtime_test_util.h"

namespace sparq::test {
namespace {

std::vector<float> iota_f32(std::size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

template <class F>
ErrorCode code_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no sparq::Error thrown";
  return ErrorCode::internal;
}

class TensorOnBackend : public testing::TestWithParam<bool> {
 protected:
  Context ctx() { return GetParam() ? device_context() : fallback_context(); }
};

TEST(RuntimeTensorBasics, DtypesAndDescribe) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i8), 1u);
  EXPECT_STREQ(dtype_name(DType::f16), "f16");
  EXPECT_STREQ(dtype_name(DType::i32), "i32");
  TensorDesc d{DType::bf16, {2, 8, 64, 128}, {}, 0};
  EXPECT_EQ(d.describe(), "bf16[2, 8, 64, 128]");
  d.strides = {65536, 128, 1024, 1};
  d.offset = 5;
  EXPECT_EQ(d.describe(), "bf16[2, 8, 64, 128] strides [65536, 128, 1024, 1] offset 5");
}

TEST_P(TensorOnBackend, UploadDownloadRoundTrip) {
  auto c = ctx();
  const auto data = iota_f32(24);
  auto t = c.upload(data, DType::f32, {2, 3, 4});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.strides(), (std::vector<std::int64_t>{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.storage_bytes(), 96u);
  EXPECT_EQ(t.download<float>(), data);
  const std::vector<std::uint16_t> halves = {1, 2, 3, 0xffff};
  EXPECT_EQ(c.upload(halves, DType::bf16, {4}).download<std::uint16_t>(), halves);
  auto e = c.empty(DType::i32, {0, 5});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.download<std::int32_t>().empty());
}

TEST_P(TensorOnBackend, StridedViewsDownloadInViewOrder) {
  auto c = ctx();
  auto t = c.upload(iota_f32(24), DType::f32, {2, 3, 4});
  // Transpose of the last two dims: [2, 4, 3].
  auto tr = t.view({2, 4, 3}, {12, 1, 4});
  EXPECT_FALSE(tr.is_contiguous());
  std::vector<float> want;
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 3; ++i) want.push_back(static_cast<float>(b * 12 + i * 4 + j));
  EXPECT_EQ(tr.download<float>(), want);
  // A window with an offset: row 1 of batch 1, columns 1..2.
  auto w = t.view({2}, {1}, 12 + 4 + 1);
  EXPECT_EQ(w.download<float>(), (std::vector<float>{17, 18}));
  // Broadcast-like zero stride is allowed (reads the same element).
  EXPECT_EQ(t.view({3}, {0}, 23).download<float>(), (std::vector<float>{23, 23, 23}));
  // A contiguous view with an offset takes the direct path.
  EXPECT_EQ(t.view({4}, {}, 20).download<float>(), (std::vector<float>{20, 21, 22, 23}));
}

TEST_P(TensorOnBackend, ViewsOutsideTheStorageAreRejected) {
  auto c = ctx();
  auto t = c.upload(iota_f32(24), DType::f32, {2, 3, 4});
  std::string msg;
  EXPECT_EQ(code_of([&] { t.view({2, 3, 5}, {}); }, &msg), ErrorCode::shape_mismatch);
  EXPECT_NE(msg.find("storage holds 24"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { t.view({4}, {1}, 21); }), ErrorCode::shape_mismatch);
  EXPECT_EQ(code_of([&] { t.view({4}, {-1}, 3); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { t.view({4}, {1}, -1); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { t.view({-1}, {1}); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { t.view({2, 2}, {1}); }), ErrorCode::shape_mismatch);
  EXPECT_EQ(code_of([&] { t.view({2}, {std::int64_t{1} << 62}); }), ErrorCode::shape_mismatch);
  EXPECT_EQ(code_of([&] {
              t.view({1 << 20, 1 << 20}, {std::int64_t{1} << 44, 1});
            }),
            ErrorCode::too_large);
  EXPECT_NO_THROW(t.view({0, 7}, {100, 100}, 24));  // empty views touch nothing
}

TEST_P(TensorOnBackend, SizeMismatchesAreErrors) {
  auto c = ctx();
  std::string msg;
  EXPECT_EQ(code_of(
                [&] {
                  c.upload(iota_f32(5), DType::f32, {2, 3});
                },
                &msg),
            ErrorCode::shape_mismatch);
  EXPECT_NE(msg.find("needs 24"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { c.upload(iota_f32(6), DType::f16, {2, 3}); }), ErrorCode::shape_mismatch);
  EXPECT_EQ(code_of([&] { c.empty(DType::f32, {2, -3}); }), ErrorCode::invalid_argument);
  auto t = c.upload(iota_f32(6), DType::f32, {6});
  std::vector<float> small(5);
  EXPECT_EQ(code_of([&] { t.download_raw(small.data(), small.size() * 4); }),
            ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([] { Tensor().download<float>(); }), ErrorCode::invalid_argument);
}

TEST_P(TensorOnBackend, AllocationsOverTheLimitAreTooLarge) {
  auto c = ctx();
  std::string msg;
  if (GetParam()) {
    const auto max_alloc = c.device().max_alloc_bytes;
    const auto n = static_cast<std::int64_t>(max_alloc / 4 + 1);
    EXPECT_EQ(code_of([&] { c.empty(DType::f32, {n}); }, &msg), ErrorCode::too_large);
    EXPECT_NE(msg.find("CL_DEVICE_MAX_MEM_ALLOC_SIZE"), std::string::npos) << msg;
  }
  EXPECT_EQ(code_of([&] { c.empty(DType::f32, {std::int64_t{1} << 62}); }), ErrorCode::too_large);
  EXPECT_EQ(code_of([&] {
              c.empty(DType::f32, {1 << 30, 1 << 30, 1 << 30});
            }),
            ErrorCode::too_large);
}

TEST_P(TensorOnBackend, TensorOutlivesItsContext) {
  Tensor t = ctx().upload(iota_f32(8), DType::f32, {2, 4});  // the Context is a temporary
  EXPECT_EQ(t.download<float>(), iota_f32(8));
  EXPECT_EQ(t.view({2}, {4}, 1).download<float>(), (std::vector<float>{1, 5}));
}

TEST_P(TensorOnBackend, OwnershipCheckRejectsOtherContexts) {
  auto a = ctx();
  auto b = ctx();
  auto t = a.upload(iota_f32(4), DType::f32, {4});
  EXPECT_NO_THROW(detail::check_tensor_owner("op", "q", t, *a.impl()));
  std::string msg;
  EXPECT_EQ(code_of([&] { detail::check_tensor_owner("attention", "q", t, *b.impl()); }, &msg),
            ErrorCode::invalid_argument);
  EXPECT_NE(msg.find("attention: q belongs to another Context"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { detail::check_tensor_owner("op", "k", Tensor(), *a.impl()); }),
            ErrorCode::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Runtime, TensorOnBackend, testing::Values(false, true),
                         [](const auto& info) { return info.param ? "device" : "fallback"; });

}  // namespace
}  // namespace sparq::test
