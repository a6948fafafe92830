// sparq.mamba: selective_scan, selective_state_update, causal_conv1d, causal_conv1d_update
// (signatures after mamba_ssm / causal-conv1d), outlier_quantize and dequantize.
#include "common.h"

SPARQ_PY_BIND(mamba_types, sparq::py::kTypes) {
  using namespace sparq::mamba;
  auto mm = sparq::py::sub(m, "mamba");
  pybind11::enum_<InlierBits>(mm, "InlierBits")
      .value("Int4", InlierBits::Int4)
      .value("Int8", InlierBits::Int8);
  pybind11::enum_<OutlierFormat>(mm, "OutlierFormat")
      .value("F32", OutlierFormat::F32)
      .value("F16", OutlierFormat::F16)
      .value("Int8", OutlierFormat::Int8);
  pybind11::class_<QuantizedRows>(mm, "QuantizedRows")
      .def_readonly("codes", &QuantizedRows::codes)
      .def_readonly("scales", &QuantizedRows::scales)
      .def_readonly("outlier_count", &QuantizedRows::outlier_count)
      .def_readonly("outlier_idx", &QuantizedRows::outlier_idx)
      .def_readonly("outlier_val", &QuantizedRows::outlier_val)
      .def_property_readonly(
          "outlier_scale",
          [](const QuantizedRows& q) { return sparq::py::opt_numpy_or_tensor(q.outlier_scale); })
      .def_readonly("C", &QuantizedRows::C);
}

SPARQ_PY_BIND(mamba, sparq::py::kOps) {
  using namespace sparq;
  using namespace sparq::mamba;
  using namespace sparq::py;
  auto mm = sub(m, "mamba");
  mm.def(
      "selective_scan",
      [](Context& ctx, const pyb::object& u, const pyb::object& delta, const pyb::object& A,
         const pyb::object& B, const pyb::object& C, const pyb::object& D, const pyb::object& z,
         const pyb::object& delta_bias, const pyb::object& h0, const pyb::object& cu_seqlens,
         bool delta_softplus, bool return_last_state) {
        const SelectiveScanArgs args{.u = to_tensor(ctx, u),
                                     .delta = to_tensor(ctx, delta),
                                     .A = to_tensor(ctx, A),
                                     .Bm = to_tensor(ctx, B),
                                     .Cm = to_tensor(ctx, C),
                                     .Dskip = opt_tensor(ctx, D),
                                     .z = opt_tensor(ctx, z),
                                     .delta_bias = opt_tensor(ctx, delta_bias),
                                     .h0 = opt_tensor(ctx, h0),
                                     .cu_seqlens = opt_tensor(ctx, cu_seqlens),
                                     .delta_softplus = delta_softplus,
                                     .return_last_state = return_last_state};
        SelectiveScanResult r;
        {
          pyb::gil_scoped_release nogil;
          r = selective_scan(ctx, args);
        }
        if (!return_last_state) return pyb::cast(r.out);
        return pyb::object(pyb::make_tuple(r.out, r.last_state));
      },
      pyb::arg("ctx"), pyb::arg("u"), pyb::arg("delta"), pyb::arg("A"), pyb::arg("B"),
      pyb::arg("C"), pyb::arg("D") = pyb::none(), pyb::arg("z") = pyb::none(),
      pyb::arg("delta_bias") = pyb::none(), pyb::kw_only(), pyb::arg("h0") = pyb::none(),
      pyb::arg("cu_seqlens") = pyb::none(), pyb::arg("delta_softplus") = false,
      pyb::arg("return_last_state") = false,
      "selective_scan_fn: u, delta, z [Bt, D, L]; A [D, N]; B, C [D, N], [Bt, N, L] or "
      "[Bt, G, N, L]. Returns out, or (out, last_state) when return_last_state.");

  mm.def(
      "selective_state_update",
      [](Context& ctx, const pyb::object& state, const pyb::object& x, const pyb::object& dt,
         const pyb::object& A, const pyb::object& B, const pyb::object& C, const pyb::object& D,
         const pyb::object& z, const pyb::object& dt_bias, bool dt_softplus) {
        const InOut st(ctx, state, "selective_state_update: state");
        const StateUpdateArgs args{.state = st.tensor(),
                                   .x = to_tensor(ctx, x),
                                   .dt = to_tensor(ctx, dt),
                                   .A = to_tensor(ctx, A),
                                   .Bm = to_tensor(ctx, B),
                                   .Cm = to_tensor(ctx, C),
                                   .Dskip = opt_tensor(ctx, D),
                                   .z = opt_tensor(ctx, z),
                                   .dt_bias = opt_tensor(ctx, dt_bias),
                                   .dt_softplus = dt_softplus};
        Tensor out;
        {
          pyb::gil_scoped_release nogil;
          out = selective_state_update(ctx, args);
        }
        st.writeback();
        return out;
      },
      pyb::arg("ctx"), pyb::arg("state"), pyb::arg("x"), pyb::arg("dt"), pyb::arg("A"),
      pyb::arg("B"), pyb::arg("C"), pyb::arg("D") = pyb::none(), pyb::arg("z") = pyb::none(),
      pyb::arg("dt_bias") = pyb::none(), pyb::kw_only(), pyb::arg("dt_softplus") = false,
      "One decode token; state fp32 [Bt, D, N] (sparq.Tensor or numpy array) is updated in place. "
      "Returns out [Bt, D].");

  mm.def(
      "causal_conv1d",
      [](Context& ctx, const pyb::object& x, const pyb::object& weight, const pyb::object& bias,
         const pyb::object& initial_states, const pyb::object& cu_seqlens, bool silu,
         bool return_final_states) {
        const CausalConv1dArgs args{.x = to_tensor(ctx, x),
                                    .weight = to_tensor(ctx, weight),
                                    .bias = opt_tensor(ctx, bias),
                                    .initial_states = opt_tensor(ctx, initial_states),
                                    .cu_seqlens = opt_tensor(ctx, cu_seqlens),
                                    .silu = silu,
                                    .return_final_states = return_final_states};
        CausalConv1dResult r;
        {
          pyb::gil_scoped_release nogil;
          r = causal_conv1d(ctx, args);
        }
        if (!return_final_states) return pyb::cast(r.out);
        return pyb::object(pyb::make_tuple(r.out, r.final_states));
      },
      pyb::arg("ctx"), pyb::arg("x"), pyb::arg("weight"), pyb::arg("bias") = pyb::none(),
      pyb::kw_only(), pyb::arg("initial_states") = pyb::none(),
      pyb::arg("cu_seqlens") = pyb::none(), pyb::arg("silu") = false,
      pyb::arg("return_final_states") = false,
      "causal_conv1d_fn: x [Bt, D, L], weight [D, W]. Returns out, or (out, final_states).");

  mm.def(
      "causal_conv1d_update",
      [](Context& ctx, const pyb::object& x, const pyb::object& conv_state,
         const pyb::object& weight, const pyb::object& bias, bool silu) {
        const InOut st(ctx, conv_state, "causal_conv1d_update: conv_state");
        const ConvUpdateArgs args{.x = to_tensor(ctx, x),
                                  .conv_state = st.tensor(),
                                  .weight = to_tensor(ctx, weight),
                                  .bias = opt_tensor(ctx, bias),
                                  .silu = silu};
        Tensor out;
        {
          pyb::gil_scoped_release nogil;
          out = causal_conv1d_update(ctx, args);
        }
        st.writeback();
        return out;
      },
      pyb::arg("ctx"), pyb::arg("x"), pyb::arg("conv_state"), pyb::arg("weight"),
      pyb::arg("bias") = pyb::none(), pyb::kw_only(), pyb::arg("silu") = false,
      "Decode: x [Bt, D] or [Bt, D, Lq]; conv_state [Bt, D, S] updated in place. Returns out.");

  mm.def(
      "outlier_quantize",
      [](Context& ctx, const pyb::object& x, InlierBits bits, OutlierFormat outlier_format,
         float k_sigma, int window, int max_outliers, const pyb::object& static_scales) {
        const Tensor tx = to_tensor(ctx, x);
        const Tensor ss = opt_tensor(ctx, static_scales);
        const OutlierQuantParams p{.bits = bits,
                                   .outlier_format = outlier_format,
                                   .k_sigma = k_sigma,
                                   .window = window,
                                   .max_outliers = max_outliers,
                                   .static_scale = ss.defined()};
        pyb::gil_scoped_release nogil;
        return outlier_quantize(ctx, tx, p, ss);
      },
      pyb::arg("ctx"), pyb::arg("x"), pyb::kw_only(), pyb::arg("bits") = InlierBits::Int4,
      pyb::arg("outlier_format") = OutlierFormat::F32, pyb::arg("k_sigma") = 3.0f,
      pyb::arg("window") = 1, pyb::arg("max_outliers") = 16,
      pyb::arg("static_scales") = pyb::none(),
      "OuroMamba dynamic outlier quantization of x fp32 [B, L, C]; static_scales fp32 [L] "
      "switches to calibrated scales. Returns a QuantizedRows.");

  mm.def(
      "dequantize",
      [](Context& ctx, const QuantizedRows& q) {
        pyb::gil_scoped_release nogil;
        return dequantize(ctx, q);
      },
      pyb::arg("ctx"), pyb::arg("q"), "fp32 [B, L, C] from a QuantizedRows.");
}
