// sparq.attention, attention_varlen, attention_paged, merge_states, supports_attention.
// Results: out, or (out, lse) when return_lse (lse is base 2: natural LSE = lse * ln 2).
#include "common.h"

namespace sparq::py::attention_binding {

// precision: "fp32" (exact), "int8" (SageAttention 1/2 style), "nvfp4"; q_smooth: "off",
// "per_head", "per_block128" (QuantAttnOptions).
AttentionOptions options(bool causal, float scale, bool return_lse, DType out_dtype,
                         const std::string& precision = "fp32",
                         const std::string& q_smooth = "per_block128", bool k_smooth = true) {
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

pyb::object result(const AttentionResult& r, bool return_lse) {
  if (!return_lse) return pyb::cast(r.out);
  return pyb::make_tuple(r.out, r.lse);
}

#define SPARQ_PY_ATTENTION_OPTIONS                                                      \
  pyb::arg("causal") = false, pyb::arg("scale") = 0.0f, pyb::arg("return_lse") = false, \
  pyb::arg("out_dtype") = DType::f32

}  // namespace sparq::py::attention_binding

SPARQ_PY_BIND(attention, sparq::py::kOps) {
  using namespace sparq;
  using namespace sparq::py;
  using namespace sparq::py::attention_binding;
  m.def(
      "attention",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         bool causal, float scale, bool return_lse, DType out_dtype, const std::string& precision,
         const std::string& q_smooth, bool k_smooth) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const AttentionOptions o =
            options(causal, scale, return_lse, out_dtype, precision, q_smooth, k_smooth);
        AttentionResult r;
        {
          pyb::gil_scoped_release nogil;
          r = sparq::attention(ctx, tq, tk, tv, o);
        }
        return result(r, return_lse);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
      SPARQ_PY_ATTENTION_OPTIONS, pyb::arg("precision") = "fp32",
      pyb::arg("q_smooth") = "per_block128", pyb::arg("k_smooth") = true,
      "Exact attention. q [B, Hq, Lq, D], k/v [B, Hkv, Lk, D] (Hq % Hkv == 0, D <= 256); "
      "scale 0 = 1/sqrt(D); causal aligned bottom-right. Returns out [B, Hq, Lq, D] or (out, "
      "lse).");

  m.def(
      "attention_varlen",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         const pyb::object& cu_q, const pyb::object& cu_k, bool causal, float scale,
         bool return_lse, DType out_dtype) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const Tensor cq = to_tensor(ctx, cu_q), ck = to_tensor(ctx, cu_k);
        AttentionResult r;
        {
          pyb::gil_scoped_release nogil;
          r = sparq::attention_varlen(ctx, tq, tk, tv, cq, ck,
                                      options(causal, scale, return_lse, out_dtype));
        }
        return result(r, return_lse);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::arg("cu_seqlens_q"),
      pyb::arg("cu_seqlens_k"), pyb::kw_only(), SPARQ_PY_ATTENTION_OPTIONS,
      "Packed sequences: q [total_q, Hq, D], k/v [total_k, Hkv, D], cu_seqlens int32 [S + 1].");

  m.def(
      "attention_paged",
      [](Context& ctx, const pyb::object& q, const pyb::object& k_pages, const pyb::object& v_pages,
         const pyb::object& page_table, const pyb::object& seq_lens, int page_size,
         const std::string& layout, bool causal, float scale, bool return_lse, DType out_dtype) {
        if (layout != "nhd" && layout != "hnd")
          throw Error(ErrorCode::invalid_argument,
                      "attention_paged: layout must be 'nhd' or 'hnd', got '" + layout + "'");
        const Tensor tq = to_tensor(ctx, q);
        const PagedKV kv{.k_pages = to_tensor(ctx, k_pages),
                         .v_pages = to_tensor(ctx, v_pages),
                         .page_table = to_tensor(ctx, page_table),
                         .seq_lens = to_tensor(ctx, seq_lens),
                         .page_size = page_size,
                         .layout = layout == "nhd" ? PageLayout::nhd : PageLayout::hnd};
        AttentionResult r;
        {
          pyb::gil_scoped_release nogil;
          r = sparq::attention_paged(ctx, tq, kv, options(causal, scale, return_lse, out_dtype));
        }
        return result(r, return_lse);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k_pages"), pyb::arg("v_pages"),
      pyb::arg("page_table"), pyb::arg("seq_lens"), pyb::kw_only(), pyb::arg("page_size") = 16,
      pyb::arg("layout") = "nhd", SPARQ_PY_ATTENTION_OPTIONS,
      "Decode over a paged KV cache: q [B, Hq, Lq, D] or [B, Hq, D]; pages [P, page_size, Hkv, D] "
      "(nhd) or [P, Hkv, page_size, D] (hnd); page_table int32 [B, max_pages]; seq_lens int32 "
      "[B].");

  m.def(
      "merge_states",
      [](Context& ctx, const pyb::object& out_a, const pyb::object& lse_a, const pyb::object& out_b,
         const pyb::object& lse_b) {
        const Tensor oa = to_tensor(ctx, out_a), la = to_tensor(ctx, lse_a);
        const Tensor ob = to_tensor(ctx, out_b), lb = to_tensor(ctx, lse_b);
        AttentionResult r;
        {
          pyb::gil_scoped_release nogil;
          r = sparq::merge_states(ctx, oa, la, ob, lb);
        }
        return pyb::make_tuple(r.out, r.lse);
      },
      pyb::arg("ctx"), pyb::arg("out_a"), pyb::arg("lse_a"), pyb::arg("out_b"), pyb::arg("lse_b"),
      "Merges two partial results over disjoint keys (base-2 LSEs). Returns (out, lse).");

  m.def(
      "supports_attention",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         bool causal, float scale, bool return_lse, DType out_dtype) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const Support s = sparq::supports_attention(ctx, tq.desc(), tk.desc(), tv.desc(),
                                                    options(causal, scale, return_lse, out_dtype));
        return pyb::make_tuple(s.ok, s.reason);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
      SPARQ_PY_ATTENTION_OPTIONS, "(ok, reason): attention()'s validation without running it.");
}
