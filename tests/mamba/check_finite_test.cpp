// sparq::check_finite: finite tensors pass; a NaN or inf anywhere (f32, f16, bf16, strided views)
// raises sparq::Error naming the tensor and the first row-major index, on the device and on the
// fallback alike; non-float tensors and rank > 4 are refused.
#include "sparq/check_finite.h"

#include <limits>

#include "mamba/mamba_test_util.h"

namespace sparq::test::mamba_t {
namespace {

std::string message_of(Context& ctx, const Tensor& t) {
  try {
    check_finite(ctx, t, "u");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    return e.what();
  }
  return "";
}

TEST(MambaCheckFinite, FindsTheFirstNonFiniteElement) {
  for (bool on_device : {true, false}) {
    Context ctx = on_device ? device_context() : fallback_context();
    for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
      auto x = random_normal(2 * 6 * 33, 5);
      EXPECT_EQ(message_of(ctx, upload_as(ctx, x, dt, {2, 6, 33})), "");
      x[200] = std::numeric_limits<float>::quiet_NaN();
      x[300] = -INFINITY;
      const Tensor t = upload_as(ctx, x, dt, {2, 6, 33});
      EXPECT_NE(message_of(ctx, t).find("u holds a non-finite value"), std::string::npos);
      EXPECT_NE(message_of(ctx, t).find("index 200"), std::string::npos) << message_of(ctx, t);
      // x is [2, 6, 33]: the NaN is (1, 0, 2), the inf (1, 3, 3). Strided views of rows 3..5
      // and rows 0..2 of each batch row see one each, at view index 99 + 3 and 99 + 2.
      const Tensor v = t.view({2, 3, 33}, {6 * 33, 33, 1}, 3 * 33);
      EXPECT_NE(message_of(ctx, v).find("index 102"), std::string::npos) << message_of(ctx, v);
      const Tensor w = t.view({2, 3, 33}, {6 * 33, 33, 1}, 0);
      EXPECT_NE(message_of(ctx, w).find("index 101"), std::string::npos) << message_of(ctx, w);
      EXPECT_EQ(message_of(ctx, t.view({1, 6, 33}, {}, 0)), "") << "batch row 0 is finite";
    }
    EXPECT_THROW(check_finite(ctx, ctx.upload(std::vector<std::int32_t>(4), DType::i32, {4}), "i"),
                 Error);
    EXPECT_THROW(
        check_finite(ctx, ctx.upload(std::vector<float>(32), DType::f32, {2, 2, 2, 2, 2}), "r5"),
        Error);
  }
}

}  // namespace
}  // namespace sparq::test::mamba_t
