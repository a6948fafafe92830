// sparq::check_finite: one pass over a strided float tensor (mamba_check_finite kernel or a host
// loop over the fallback's memory) finding the first non-finite element; throws naming it.
#include "sparq/check_finite.h"

#include <climits>
#include <mutex>

#include "mamba_common.h"
#include "mamba_kernels.h"

namespace sparq {

using namespace mamba::detail_mamba;

void check_finite(Context& ctx, const Tensor& t, const char* name) {
  constexpr const char* op = "check_finite";
  std::int64_t first = INT64_MAX, n = 0;
  {
    auto& impl = *ctx.impl();
    std::lock_guard lock(impl.mutex);
    detail::check_tensor_owner(op, name, t, impl);
    if (!is_float_dtype(t.dtype()))
      rt::fail(ErrorCode::shape_mismatch, op, "{} has dtype {}; expected f32, f16 or bf16", name,
               dtype_name(t.dtype()));
    if (t.rank() > 4)
      rt::fail(ErrorCode::unsupported, op, "{} has rank {}; at most 4 is supported", name,
               t.rank());
    std::int64_t shape[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
    const int pad = 4 - t.rank();
    for (int i = 0; i < t.rank(); ++i) {
      shape[pad + i] = t.dim(i);
      st[pad + i] = t.strides().at(static_cast<std::size_t>(i));
    }
    n = t.numel();
    if (n == 0) return;
    if (!impl.device) {
      const auto v = host_view(t);  // host_data includes the view offset
      for (std::int64_t i = 0; i < n && first == INT64_MAX; ++i) {
        std::int64_t rem = i;
        const std::int64_t i3 = rem % shape[3];
        rem /= shape[3];
        const std::int64_t i2 = rem % shape[2];
        rem /= shape[2];
        const std::int64_t i1 = rem % shape[1], i0 = rem / shape[1];
        const float x = v.at(i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3]);
        if (std::isnan(x) || std::isinf(x)) first = i;
      }
    } else {
      auto& dev = *impl.device;
      cl::Kernel k = dev.kernel(CheckFiniteKernelConfig::source, CheckFiniteKernelConfig::kernel,
                                CheckFiniteKernelConfig::defines());
      const std::int32_t init = INT32_MAX;
      cl::Buffer flag = dev.allocate(sizeof init, op);
      dev.write(flag, 0, sizeof init, &init, op);
      cl_long4 sh, sd;
      for (int i = 0; i < 4; ++i) {
        sh.s[i] = shape[i];
        sd.s[i] = st[i];
      }
      cl_uint i = 0;
      set_buffer(k, i++, t);
      k.setArg(i++, static_cast<cl_long>(t.offset()));
      k.setArg(i++, static_cast<cl_int>(dtype_code(t)));
      k.setArg(i++, sh);
      k.setArg(i++, sd);
      k.setArg(i++, static_cast<cl_long>(n));
      k.setArg(i++, flag);
      const std::size_t local = 256;
      dev.launch(op, k, cl::NDRange((static_cast<std::size_t>(n) + local - 1) / local * local),
                 cl::NDRange(local));
      std::int32_t got = INT32_MAX;
      dev.read(flag, 0, sizeof got, &got, op);  // blocking, in queue order
      if (got != INT32_MAX) first = got;
    }
  }
  if (first != INT64_MAX)
    rt::fail(ErrorCode::invalid_argument, op,
             "{} holds a non-finite value (NaN or inf) at row-major index {}{}", name, first,
             first >= INT32_MAX - 1 ? " or later" : "");
}

}  // namespace sparq
