// sparq.attention, attention_varlen, attention_paged (arrays or a sparq.PagedKV), PagedKV,
// make_paged_kv, kv_append, merge_states, supports_attention. Mask keywords (window_left/right,
// softcap, alibi_slopes, sinks, key_padding) as sparq::AttentionMasks; fp32 only.
// Results: out, or (out, lse) when return_lse (lse is base 2: natural LSE = lse * ln 2).
#include "attention_options.h"

namespace sparq::py::attention_binding {

using attention_options::options;

pyb::object result(const AttentionResult& r, bool return_lse) {
  if (!return_lse) return pyb::cast(r.out);
  return pyb::make_tuple(r.out, r.lse);
}

PageLayout layout_of(const std::string& layout) {
  if (layout != "nhd" && layout != "hnd")
    throw Error(ErrorCode::invalid_argument, "layout must be 'nhd' or 'hnd', got '" + layout + "'");
  return layout == "nhd" ? PageLayout::nhd : PageLayout::hnd;
}

AttentionResult paged(Context& ctx, const Tensor& q, const PagedKV& kv, const AttentionOptions& o) {
  pyb::gil_scoped_release nogil;
  return sparq::attention_paged(ctx, q, kv, o);
}

#define SPARQ_PY_ATTENTION_OPTIONS                                                      \
  pyb::arg("causal") = false, pyb::arg("scale") = 0.0f, pyb::arg("return_lse") = false, \
  pyb::arg("out_dtype") = DType::f32

}  // namespace sparq::py::attention_binding

SPARQ_PY_BIND(attention_types, sparq::py::kTypes) {
  using namespace sparq;
  using namespace sparq::py;
  pyb::class_<PagedKV>(
      m, "PagedKV",
      "A paged KV cache (sparq::PagedKV): pages, page_table, seq_lens and, for "
      "int8 pages, per-row scales; fields are sparq.Tensor (assign ctx.upload(...) "
      "results or keep make_paged_kv's).")
      .def(pyb::init<>())
      .def_readwrite("k_pages", &PagedKV::k_pages)
      .def_readwrite("v_pages", &PagedKV::v_pages)
      .def_readwrite("page_table", &PagedKV::page_table)
      .def_readwrite("seq_lens", &PagedKV::seq_lens)
      .def_readwrite("page_size", &PagedKV::page_size)
      .def_readwrite("k_scales", &PagedKV::k_scales)
      .def_readwrite("v_scales", &PagedKV::v_scales)
      .def_property(
          "layout", [](const PagedKV& kv) { return kv.layout == PageLayout::nhd ? "nhd" : "hnd"; },
          [](PagedKV& kv, const std::string& l) { kv.layout = attention_binding::layout_of(l); });
}

SPARQ_PY_BIND(attention, sparq::py::kOps) {
  using namespace sparq;
  using namespace sparq::py;
  using namespace sparq::py::attention_binding;
  m.def(
      "attention",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         bool causal, float scale, bool return_lse, DType out_dtype, const std::string& precision,
         const std::string& q_smooth, bool k_smooth, SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        AttentionOptions o =
            options(causal, scale, return_lse, out_dtype, precision, q_smooth, k_smooth);
        o.masks = SPARQ_PY_MASKS(ctx);
        AttentionResult r;
        {
          pyb::gil_scoped_release nogil;
          r = sparq::attention(ctx, tq, tk, tv, o);
        }
        return result(r, return_lse);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
      SPARQ_PY_ATTENTION_OPTIONS, pyb::arg("precision") = "fp32",
      pyb::arg("q_smooth") = "per_block128", pyb::arg("k_smooth") = true, SPARQ_PY_MASK_ARGS,
      "Exact attention. q [B, Hq, Lq, D], k/v [B, Hkv, Lk, D] (Hq % Hkv == 0, D <= 256); "
      "scale 0 = 1/sqrt(D); causal aligned bottom-right. Returns out [B, Hq, Lq, D] or (out, "
      "lse). Masks (fp32): window_left/right (-1 = unbounded), softcap (0 = off), alibi_slopes "
      "f32 [Hq], sinks f32 [Hq] (natural-log logits), key_padding [B, Lk] (nonzero = key "
      "kept).");

  m.def(
      "attention_varlen",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         const pyb::object& cu_q, const pyb::object& cu_k, bool causal, float scale,
         bool return_lse, DType out_dtype, SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const Tensor cq = to_tensor(ctx, cu_q), ck = to_tensor(ctx, cu_k);
        AttentionOptions o = options(causal, scale, return_lse, out_dtype);
        o.masks = SPARQ_PY_MASKS(ctx);
        AttentionResult r;
        {
          pyb::gil_scoped_release nogil;
          r = sparq::attention_varlen(ctx, tq, tk, tv, cq, ck, o);
        }
        return result(r, return_lse);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::arg("cu_seqlens_q"),
      pyb::arg("cu_seqlens_k"), pyb::kw_only(), SPARQ_PY_ATTENTION_OPTIONS, SPARQ_PY_MASK_ARGS,
      "Packed sequences: q [total_q, Hq, D], k/v [total_k, Hkv, D], cu_seqlens int32 [S + 1].");

  m.def(
      "attention_paged",
      [](Context& ctx, const pyb::object& q, const pyb::object& k_pages, const pyb::object& v_pages,
         const pyb::object& page_table, const pyb::object& seq_lens, int page_size,
         const std::string& layout, const pyb::object& k_scales, const pyb::object& v_scales,
         bool causal, float scale, bool return_lse, DType out_dtype, SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q);
        const PagedKV kv{.k_pages = to_tensor(ctx, k_pages),
                         .v_pages = to_tensor(ctx, v_pages),
                         .page_table = to_tensor(ctx, page_table),
                         .seq_lens = to_tensor(ctx, seq_lens),
                         .page_size = page_size,
                         .layout = layout_of(layout),
                         .k_scales = opt_tensor(ctx, k_scales),
                         .v_scales = opt_tensor(ctx, v_scales)};
        AttentionOptions o = options(causal, scale, return_lse, out_dtype);
        o.masks = SPARQ_PY_MASKS(ctx);
        return result(paged(ctx, tq, kv, o), return_lse);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k_pages"), pyb::arg("v_pages"),
      pyb::arg("page_table"), pyb::arg("seq_lens"), pyb::kw_only(), pyb::arg("page_size") = 16,
      pyb::arg("layout") = "nhd", pyb::arg("k_scales") = pyb::none(),
      pyb::arg("v_scales") = pyb::none(), SPARQ_PY_ATTENTION_OPTIONS, SPARQ_PY_MASK_ARGS,
      "Decode over a paged KV cache: q [B, Hq, Lq, D] or [B, Hq, D]; pages [P, page_size, Hkv, D] "
      "(nhd) or [P, Hkv, page_size, D] (hnd), f32/f16/bf16 or int8 codes with k_scales/v_scales "
      "f32 (the pages' shape without D); page_table int32 [B, max_pages]; seq_lens int32 [B].");
  m.def(
      "attention_paged",
      [](Context& ctx, const pyb::object& q, const PagedKV& kv, bool causal, float scale,
         bool return_lse, DType out_dtype, SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q);
        AttentionOptions o = options(causal, scale, return_lse, out_dtype);
        o.masks = SPARQ_PY_MASKS(ctx);
        return result(paged(ctx, tq, kv, o), return_lse);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("kv"), pyb::kw_only(), SPARQ_PY_ATTENTION_OPTIONS,
      SPARQ_PY_MASK_ARGS, "Decode over a sparq.PagedKV (make_paged_kv + kv_append).");

  m.def(
      "make_paged_kv",
      [](Context& ctx, std::int64_t num_pages, int page_size, int hkv, int head_dim, DType storage,
         const std::string& layout, const pyb::object& page_table, const pyb::object& seq_lens) {
        PagedKV kv = sparq::make_paged_kv(ctx, num_pages, page_size, hkv, head_dim, storage,
                                          layout_of(layout));
        if (!page_table.is_none()) kv.page_table = to_tensor(ctx, page_table, DType::i32);
        if (!seq_lens.is_none()) kv.seq_lens = to_tensor(ctx, seq_lens, DType::i32);
        return kv;
      },
      pyb::arg("ctx"), pyb::arg("num_pages"), pyb::arg("page_size"), pyb::arg("hkv"),
      pyb::arg("head_dim"), pyb::kw_only(), pyb::arg("storage") = DType::f32,
      pyb::arg("layout") = "nhd", pyb::arg("page_table") = pyb::none(),
      pyb::arg("seq_lens") = pyb::none(),
      "Zero-filled pages (f32, f16, bf16, or i8 with per-row scales) on ctx's device, with your "
      "block manager's page_table int32 [B, max_pages] and seq_lens int32 [B] (0 = empty).");

  m.def(
      "kv_append",
      [](Context& ctx, PagedKV& kv, const pyb::object& k_new, const pyb::object& v_new) {
        const Tensor tk = to_tensor(ctx, k_new), tv = to_tensor(ctx, v_new);
        pyb::gil_scoped_release nogil;
        sparq::kv_append(ctx, kv, tk, tv);
      },
      pyb::arg("ctx"), pyb::arg("kv"), pyb::arg("k_new"), pyb::arg("v_new"),
      "Writes n new tokens per sequence (k_new/v_new [B, Hkv, n, D]) at positions seq_lens[b].. "
      "through the page table (rounded or int8-quantized per row as the pages' storage), then "
      "seq_lens += n on the device (kv.seq_lens.numpy() reads it).");

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
