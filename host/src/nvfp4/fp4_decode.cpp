// sparq::fp4_decode_packed: NVFP4 attention of short query blocks split at the 4096-key chunks:
// kernels_cl/nvfp4/fp4_decode.cl (+ merge.cl when Lk > 4096) or the fallback of
// fp4_attention_packed (fallback_cpu/nvfp4/fp4_attention.cpp: the same chunked order). Also the
// device route of fp4_attention_packed / attention(nvfp4) calls with Lq <= 127 (same bits).
#include <mutex>
#include <string>

#include "host/src/attention/quant_decode.h"
#include "nvfp4_common.h"
#include "tuning_env.h"

namespace sparq {

namespace nvfp4_detail {

Fp4Tuning fp4_tuning() {
  Fp4Tuning t{static_cast<int>(attention_detail::kQuantDecodeMaxRows), kFp4DefaultForms};
  rt::for_each_tuning_item(
      "SPARQ_TUNE_FP4", [&](const std::string& key, long value, const std::string& item) {
        int form = 0;
        if (key == "exp") form = kFp4FormExp;
        if (key == "div") form = kFp4FormDiv;
        if (key == "pcode") form = kFp4FormPcode;
        if (key == "bias") form = kFp4FormBias;
        if (key == "sflag") form = kFp4FormSflag;
        if (key == "fold") form = kFp4FormFold;
        if (key == "ld32") form = kFp4FormLd32;
        if (key == "lut") form = kFp4FormLut;
        if (key == "decode" && value >= 0 && value <= attention_detail::kQuantDecodeMaxRows)
          t.decode_rows = static_cast<int>(value);
        else if (form != 0 && (value == 0 || value == 1))
          t.forms = value == 1 ? (t.forms | form) : (t.forms & ~form);
        else
          rt::fail(ErrorCode::invalid_argument, "attention(nvfp4)",
                   "SPARQ_TUNE_FP4 item '{}' is not decode=0..{}, exp=0|1, div=0|1, pcode=0|1, "
                   "bias=0|1, sflag=0|1, fold=0|1, ld32=0|1 or lut=0|1",
                   item, attention_detail::kQuantDecodeMaxRows);
      });
  return t;
}

int fp4_decode_route_rows() {
  return fp4_tuning().decode_rows;
}

void run_fp4_decode(Context& ctx, const Fp4Plan& p, const Tensor& out) {
  constexpr int kRowsPerGroup = 16;  // QD_ROWS of fp4_decode.cl
  auto& dev = *ctx.impl()->device;
  const auto s = attention_detail::quant_decode_split(
      dev, p.op, std::int64_t{p.batch} * p.hq * p.lq, p.lk, p.d);
  cl::Kernel kr =
      dev.kernel("nvfp4/fp4_decode.cl", "fp4_decode", "-DHEAD_DIM=" + std::to_string(p.d));
  const cl::Buffer& dummy = buffer(out);
  const bool has_delta = p.delta.defined();
  rt::set_kernel_args(
      p.op, kr, buffer(p.q.codes), buffer(p.q.scales), buffer(p.k.codes), buffer(p.k.scales),
      buffer(p.v.codes), buffer(p.v.scales), has_delta ? buffer(p.delta) : dummy,
      static_cast<cl_int>(has_delta), buffer(out), s.split() ? s.ws_o : dummy,
      s.split() ? s.ws_lse : dummy, static_cast<cl_int>(s.split()), static_cast<cl_int>(s.nchunks),
      static_cast<cl_int>(p.hq), static_cast<cl_int>(p.hq / p.hkv), static_cast<cl_int>(p.lq),
      static_cast<cl_int>(p.lk), static_cast<cl_int>(p.causal), static_cast<cl_float>(p.c));
  const std::int64_t row_groups = (p.hq / p.hkv * p.lq + kRowsPerGroup - 1) / kRowsPerGroup;
  dev.launch(
      p.op, kr,
      cl::NDRange(static_cast<std::size_t>(64 * row_groups), static_cast<std::size_t>(s.nchunks),
                  static_cast<std::size_t>(p.batch) * p.hkv),
      cl::NDRange(64, 1, 1));
  if (s.split())
    attention_detail::quant_decode_merge(dev, p.op, s, buffer(out), p.batch, p.hq, p.lq, p.lk, p.d);
}

}  // namespace nvfp4_detail

using namespace nvfp4_detail;

Tensor fp4_decode_packed(Context& ctx, const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
                         const Tensor* delta, const AttentionOptions& options) {
  constexpr const char* op = "fp4_decode_packed";
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  Fp4Plan p = plan_fp4_packed(op, ctx, q, k, v, delta, options);
  if (p.lq > attention_detail::kQuantDecodeMaxRows)
    rt::fail(ErrorCode::shape_mismatch, op,
             "q.codes has Lq = {} query rows; this op takes 1 to {} (use fp4_attention_packed)",
             p.lq, attention_detail::kQuantDecodeMaxRows);
  Tensor out = new_tensor(ctx, DType::f32, {p.batch, p.hq, p.lq, p.d});
  if (impl.device)
    run_fp4_decode(ctx, p, out);
  else  // the fallback of fp4_attention_packed: the same bits
    run_fp4_attention(ctx, p, out);
  return out;
}

}  // namespace sparq
