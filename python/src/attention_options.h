// Keyword arguments shared by the attention bindings (attention.cpp, sparse.cpp): precision and
// quantization options, and the masks / logit hooks of sparq::AttentionMasks.
#pragma once
#include <string>

#include "common.h"

namespace sparq::py::attention_options {

// precision: "fp32" (exact), "int8" (SageAttention 1/2 style), "nvfp4"; q_smooth: "off",
// "per_head", "per_block128" (QuantAttnOptions).
inline AttentionOptions options(bool causal, float scale, bool return_lse, DType out_dtype,
                                const std::string& precision = "fp32",
                                const std::string& q_smooth = "per_block128",
                                bool k_smooth = true) {
  AttentionOptions o{
      .causal = causal, .scale = scale, .return_lse = return_lse, .out_dtype = out_dtype};
  if (precision == "int8")
    o.precision = Precision::int8;
  else if (precision == "nvfp4")
    o.precision = Precision::nvfp4;
  else if (precision != "fp32")
    throw Error(ErrorCode::invalid_argument,
                "precision must be 'fp32', 'int8' or 'nvfp4', got '" + precision + "'");
  if (q_smooth == "off")
    o.quant.q_smooth = QSmooth::off;
  else if (q_smooth == "per_head")
    o.quant.q_smooth = QSmooth::per_head;
  else if (q_smooth != "per_block128")
    throw Error(ErrorCode::invalid_argument,
                "q_smooth must be 'off', 'per_head' or 'per_block128', got '" + q_smooth + "'");
  o.quant.k_smooth = k_smooth;
  return o;
}

// The masks of one call (the op validates them; None = off). key_padding is uploaded as u8.
struct MaskArgs {
  int window_left = -1, window_right = -1;
  float softcap = 0.0f;
  pyb::object alibi_slopes, sinks, key_padding;
  AttentionMasks to_masks(Context& ctx) const {
    AttentionMasks m;
    m.window_left = window_left;
    m.window_right = window_right;
    m.softcap = softcap;
    m.alibi_slopes = opt_tensor(ctx, alibi_slopes);
    m.sinks = opt_tensor(ctx, sinks);
    if (pyb::isinstance<Tensor>(key_padding))
      m.key_padding = key_padding.cast<Tensor>();
    else if (!key_padding.is_none())  // bool or integer arrays: nonzero = the key takes part
      m.key_padding = to_tensor(
          ctx, pyb::module_::import("numpy").attr("asarray")(key_padding).attr("astype")("uint8"),
          DType::u8);
    return m;
  }
};

}  // namespace sparq::py::attention_options

namespace sparq::py::sparse_binding {
// A sparq pattern object (AShape, VerticalSlash, ..., a loaded config, or "dense") as a Pattern
// (sparse.cpp); sparq.Error for anything else.
Pattern to_pattern(const pyb::object& p);
}  // namespace sparq::py::sparse_binding

// The mask keyword arguments, in MaskArgs's order.
#define SPARQ_PY_MASK_ARGS                                                                 \
  pyb::arg("window_left") = -1, pyb::arg("window_right") = -1, pyb::arg("softcap") = 0.0f, \
  pyb::arg("alibi_slopes") = pyb::none(), pyb::arg("sinks") = pyb::none(),                 \
  pyb::arg("key_padding") = pyb::none()
#define SPARQ_PY_MASK_PARAMS                                                         \
  int window_left, int window_right, float softcap, const pyb::object &alibi_slopes, \
      const pyb::object &sinks, const pyb::object &key_padding
#define SPARQ_PY_MASKS(ctx)                                                         \
  ::sparq::py::attention_options::MaskArgs{window_left,  window_right, softcap,     \
                                           alibi_slopes, sinks,        key_padding} \
      .to_masks(ctx)
