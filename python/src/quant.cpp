// The staged quantized attention API: sparq.Sage8Packed, sage8_quantize, sage8_attention_packed
// (sparq/int8_attention.h) and sparq.Fp4Packed / Fp4PackedT, fp4_quantize_rows,
// fp4_quantize_tokens, fp4_attention_packed (sparq/nvfp4.h). Packed fields are sparq.Tensor.
#include "attention_options.h"

SPARQ_PY_BIND(quant_types, sparq::py::kTypes) {
  using namespace sparq;
  using namespace sparq::py;
  pyb::class_<Sage8Packed>(m, "Sage8Packed",
                           "int8 Q/K (codes + per-block scales), V (per channel per 16 tokens, "
                           "transposed) and the smoothing delta (None when off): sage8_quantize's "
                           "result, the input of sage8_attention_packed.")
      .def(pyb::init<>())
      .def_property(
          "q_codes", [](const Sage8Packed& p) { return p.q.codes; },
          [](Sage8Packed& p, const Tensor& t) { p.q.codes = t; })
      .def_property(
          "q_scales", [](const Sage8Packed& p) { return p.q.scales; },
          [](Sage8Packed& p, const Tensor& t) { p.q.scales = t; })
      .def_property(
          "k_codes", [](const Sage8Packed& p) { return p.k.codes; },
          [](Sage8Packed& p, const Tensor& t) { p.k.codes = t; })
      .def_property(
          "k_scales", [](const Sage8Packed& p) { return p.k.scales; },
          [](Sage8Packed& p, const Tensor& t) { p.k.scales = t; })
      .def_property(
          "v_codes", [](const Sage8Packed& p) { return p.v.codes; },
          [](Sage8Packed& p, const Tensor& t) { p.v.codes = t; })
      .def_property(
          "v_scales", [](const Sage8Packed& p) { return p.v.scales; },
          [](Sage8Packed& p, const Tensor& t) { p.v.scales = t; })
      .def_property(
          "delta", [](const Sage8Packed& p) { return opt_numpy_or_tensor(p.delta); },
          [](Sage8Packed& p, const pyb::object& t) {
            p.delta = t.is_none() ? Tensor() : t.cast<Tensor>();
          });
  pyb::class_<Fp4Packed>(m, "Fp4Packed", "NVFP4 rows: E2M1 codes (u8) and E4M3 group scales.")
      .def(pyb::init<>())
      .def_readwrite("codes", &Fp4Packed::codes)
      .def_readwrite("scales", &Fp4Packed::scales);
  pyb::class_<Fp4PackedT>(m, "Fp4PackedT",
                          "NVFP4 tokens per channel, transposed (V layout); tokens = valid Lk.")
      .def(pyb::init<>())
      .def_readwrite("codes", &Fp4PackedT::codes)
      .def_readwrite("scales", &Fp4PackedT::scales)
      .def_readwrite("tokens", &Fp4PackedT::tokens);
}

SPARQ_PY_BIND(quant, sparq::py::kOps) {
  using namespace sparq;
  using namespace sparq::py;
  m.def(
      "sage8_quantize",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         float scale, const std::string& q_smooth, bool k_smooth) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const AttentionOptions o =
            attention_options::options(false, scale, false, DType::f32, "int8", q_smooth, k_smooth);
        pyb::gil_scoped_release nogil;
        return sparq::sage8_quantize(ctx, tq, tk, tv, o);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
      pyb::arg("scale") = 0.0f, pyb::arg("q_smooth") = "per_block128", pyb::arg("k_smooth") = true,
      "The smoothing and int8 quantizers of attention(precision='int8') (D = 64 or 128).");
  m.def(
      "sage8_attention_packed",
      [](Context& ctx, const Sage8Packed& packed, bool causal, float scale) {
        const AttentionOptions o{.causal = causal, .scale = scale};
        pyb::gil_scoped_release nogil;
        return sparq::sage8_attention_packed(ctx, packed, o).out;
      },
      pyb::arg("ctx"), pyb::arg("packed"), pyb::kw_only(), pyb::arg("causal") = false,
      pyb::arg("scale") = 0.0f,
      "int8 attention on sage8_quantize's result: out f32 [B, Hq, Lq, D].");
  m.def(
      "fp4_quantize_rows",
      [](Context& ctx, const pyb::object& x) {
        const Tensor t = to_tensor(ctx, x);
        pyb::gil_scoped_release nogil;
        return sparq::fp4_quantize_rows(ctx, t);
      },
      pyb::arg("ctx"), pyb::arg("x"), "NVFP4 rows of f32 [B, H, L, D] (Q and K layout).");
  m.def(
      "fp4_quantize_tokens",
      [](Context& ctx, const pyb::object& x) {
        const Tensor t = to_tensor(ctx, x);
        pyb::gil_scoped_release nogil;
        return sparq::fp4_quantize_tokens(ctx, t);
      },
      pyb::arg("ctx"), pyb::arg("x"), "NVFP4 tokens of f32 [B, H, L, D] (V layout).");
  m.def(
      "fp4_attention_packed",
      [](Context& ctx, const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
         const pyb::object& delta, bool causal, float scale) {
        const Tensor d = opt_tensor(ctx, delta);
        const AttentionOptions o{.causal = causal, .scale = scale};
        pyb::gil_scoped_release nogil;
        return sparq::fp4_attention_packed(ctx, q, k, v, d.defined() ? &d : nullptr, o);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
      pyb::arg("delta") = pyb::none(), pyb::arg("causal") = false, pyb::arg("scale") = 0.0f,
      "FP4 attention on packed inputs (delta: f32 [B, Hq, ceil(Lq/128), Lk] or None).");
}
