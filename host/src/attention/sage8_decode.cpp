// sage8_decode_packed (sparq/int8_attention.h): Precision::int8 attention of short query blocks
// split at the 4096-key chunks: kernels_cl/attention/sage8_decode.cl (+ merge.cl when Lk > 4096)
// or fallback_cpu/attention/sage8_decode.cpp. run_sage8_decode is also where run_sage8_slice
// routes dense calls with Lq <= 127 (attention(), sage8_attention_packed and their plans).
#include <mutex>

#include "attention_validate.h"
#include "context_impl.h"
#include "errors.h"
#include "fallback_cpu/attention/sage8_fallback.h"
#include "quant_decode.h"
#include "sage8_attention.h"
#include "sparq/int8_attention.h"

namespace sparq {

using namespace attention_detail;

namespace {

constexpr int kRowsPerGroup = 16;  // QD_ROWS of sage8_decode.cl

const cl::Buffer& buffer(const Tensor& t) {
  return t.storage()->buffer;
}
template <class T>
const T* host_ptr(const Tensor& t) {
  return reinterpret_cast<const T*>(detail::host_data(t));
}

}  // namespace

namespace attention_detail {

void run_sage8_decode(Context& ctx, const Sage8Packed& p, const Sage8Dims& x, const Tensor& delta,
                      bool causal, float c, const Tensor& out, const char* op) {
  auto& impl = *ctx.impl();
  const bool has_delta = delta.defined();
  if (!impl.device) {
    fallback::Sage8Problem f;
    f.q8 = host_ptr<std::int8_t>(p.q.codes);
    f.k8 = host_ptr<std::int8_t>(p.k.codes);
    f.v8 = host_ptr<std::int8_t>(p.v.codes);
    f.sq = host_ptr<float>(p.q.scales);
    f.sk = host_ptr<float>(p.k.scales);
    f.sv = host_ptr<float>(p.v.scales);
    f.delta = has_delta ? host_ptr<float>(delta) : nullptr;
    f.out = reinterpret_cast<float*>(detail::host_data_mut(out));
    f.batch = x.batch;
    f.hq = x.hq;
    f.hkv = x.hkv;
    f.d = x.d;
    f.lq = x.lq;
    f.lk = x.lk;
    f.causal = causal;
    f.c = c;
    fallback::sage8_decode(f);
    return;
  }
  auto& dev = *impl.device;
  const QuantDecodeSplit s = quant_decode_split(dev, op, x.batch * x.hq * x.lq, x.lk, x.d);
  cl::Kernel k =
      dev.kernel("attention/sage8_decode.cl", "sage8_decode", "-DHEAD_DIM=" + std::to_string(x.d));
  const cl::Buffer& dummy = buffer(out);
  rt::set_kernel_args(
      op, k, buffer(p.q.codes), buffer(p.q.scales), buffer(p.k.codes), buffer(p.k.scales),
      buffer(p.v.codes), buffer(p.v.scales), has_delta ? buffer(delta) : dummy,
      static_cast<cl_int>(has_delta), buffer(out), s.split() ? s.ws_o : dummy,
      s.split() ? s.ws_lse : dummy, static_cast<cl_int>(s.split()), static_cast<cl_int>(s.nchunks),
      static_cast<cl_int>(x.hq), static_cast<cl_int>(x.hq / x.hkv), static_cast<cl_int>(x.lq),
      static_cast<cl_int>(x.lk), static_cast<cl_int>(causal), c);
  const std::int64_t row_groups = (x.hq / x.hkv * x.lq + kRowsPerGroup - 1) / kRowsPerGroup;
  dev.launch(
      op, k,
      cl::NDRange(static_cast<std::size_t>(64 * row_groups), static_cast<std::size_t>(s.nchunks),
                  static_cast<std::size_t>(x.batch * x.hkv)),
      cl::NDRange(64, 1, 1));
  if (s.split()) quant_decode_merge(dev, op, s, buffer(out), x.batch, x.hq, x.lq, x.lk, x.d);
}

}  // namespace attention_detail

AttentionResult sage8_decode_packed(Context& ctx, const Sage8Packed& p,
                                    const AttentionOptions& options) {
  constexpr const char* op = "sage8_decode_packed";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  const Sage8PackedShape x = validate_sage8_packed(op, impl, p, options);
  if (x.lq > kQuantDecodeMaxRows)
    rt::fail(ErrorCode::shape_mismatch, op,
             "q.codes has Lq = {} query rows; this op takes 1 to {} (use sage8_attention_packed)",
             x.lq, kQuantDecodeMaxRows);
  check_alloc(op, "output", DType::f32, {x.batch, x.hq, x.lq, x.d},
              impl.device ? impl.info.max_alloc_bytes : 0);
  const Tensor out = detail::make_tensor(impl, ctx.impl(),
                                         TensorDesc{DType::f32, {x.batch, x.hq, x.lq, x.d}, {}, 0});
  run_sage8_decode(ctx, p, {x.batch, x.hq, x.hkv, x.lq, x.lk, x.d},
                   x.delta_nblk > 0 ? p.delta : Tensor(), options.causal, x.c, out);
  return {out, {}};
}

}  // namespace sparq
