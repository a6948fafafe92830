// sparq.Plan (sparq/plan.h) and its makers: make_attention_plan (fp32, int8, nvfp4),
// make_attention_paged_plan, make_attention_varlen_plan, make_sparse_attention_plan (an index or
// a pattern), make_sage8_packed_plan, make_fp4_packed_plan. A maker takes
// example tensors or arrays (only their dtype and shape are planned); runs take tensors or arrays
// of those dtypes and shapes (numpy inputs are uploaded per run: keep sparq.Tensor objects for low
// overhead). Host tables (numpy int32 seq_lens / page_table, cu_seqlens) take the plan's no-wait
// path (PagedTables / SeqOffsets).
#include "attention_options.h"

namespace sparq::py::plan_binding {

using attention_options::options;

// A Plan with the Context its runs upload numpy inputs to.
struct PyPlan {
  Context ctx;
  Plan plan;
  bool return_lse() const { return !plan.lse_desc().shape.empty(); }
  pyb::object result(const AttentionResult& r) const {
    if (!return_lse()) return pyb::cast(r.out);
    return pyb::make_tuple(r.out, r.lse);
  }
  PlanBuffers buffers(const pyb::object& out, const pyb::object& lse,
                      const pyb::object& workspace) {
    return {opt_tensor(ctx, out), opt_tensor(ctx, lse), opt_tensor(ctx, workspace)};
  }
};

// int32 host data of a numpy array (None: no host tables).
std::optional<pyb::array_t<std::int32_t, pyb::array::c_style | pyb::array::forcecast>> host_ints(
    const pyb::object& obj) {
  if (obj.is_none() || pyb::isinstance<Tensor>(obj)) return std::nullopt;
  return pyb::array_t<std::int32_t, pyb::array::c_style | pyb::array::forcecast>(obj);
}

#define SPARQ_PY_PLAN_OPTIONS                                                           \
  pyb::arg("causal") = false, pyb::arg("scale") = 0.0f, pyb::arg("return_lse") = false, \
  pyb::arg("out_dtype") = DType::f32, pyb::arg("precision") = "fp32",                   \
  pyb::arg("q_smooth") = "per_block128", pyb::arg("k_smooth") = true
#define SPARQ_PY_PLAN_PARAMS                                                                \
  bool causal, float scale, bool return_lse, DType out_dtype, const std::string &precision, \
      const std::string &q_smooth, bool k_smooth
#define SPARQ_PY_PLAN_OUT pyb::arg("out") = pyb::none(), pyb::arg("lse") = pyb::none()

AttentionOptions plan_options(Context& ctx, SPARQ_PY_PLAN_PARAMS, SPARQ_PY_MASK_PARAMS) {
  AttentionOptions o = options(causal, scale, return_lse, out_dtype, precision, q_smooth, k_smooth);
  o.masks = SPARQ_PY_MASKS(ctx);
  return o;
}

}  // namespace sparq::py::plan_binding

SPARQ_PY_BIND(plan_types, sparq::py::kTypes) {
  using namespace sparq;
  using namespace sparq::py;
  using plan_binding::PyPlan;
  pyb::class_<PyPlan>(m, "Plan",
                      "An attention call validated once for fixed shapes and options (C++ "
                      "sparq::Plan); its runs give the one-shot op's bits.")
      .def_property_readonly("workspace_bytes",
                             [](const PyPlan& p) { return p.plan.workspace_bytes(); })
      .def_property_readonly(
          "out_shape",
          [](const PyPlan& p) { return pyb::tuple(pyb::cast(p.plan.out_desc().shape)); })
      .def_property_readonly("out_dtype", [](const PyPlan& p) { return p.plan.out_desc().dtype; })
      .def(
          "run",
          [](PyPlan& p, const pyb::object& q, const pyb::object& k, const pyb::object& v,
             const pyb::object& out, const pyb::object& lse, const pyb::object& workspace) {
            const Tensor tq = to_tensor(p.ctx, q), tk = to_tensor(p.ctx, k),
                         tv = to_tensor(p.ctx, v);
            const PlanBuffers b = p.buffers(out, lse, workspace);
            AttentionResult r;
            {
              pyb::gil_scoped_release nogil;
              r = p.plan.run(tq, tk, tv, b);
            }
            return p.result(r);
          },
          pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(), SPARQ_PY_PLAN_OUT,
          pyb::arg("workspace") = pyb::none(), "Runs a make_attention_plan plan.")
      .def(
          "run_paged",
          [](PyPlan& p, const pyb::object& q, const PagedKV& kv, const pyb::object& seq_lens,
             const pyb::object& page_table, const pyb::object& out, const pyb::object& lse,
             const pyb::object& workspace) {
            const Tensor tq = to_tensor(p.ctx, q);
            const PlanBuffers b = p.buffers(out, lse, workspace);
            const auto lens = plan_binding::host_ints(seq_lens);
            const auto table = plan_binding::host_ints(page_table);
            if (lens.has_value() != table.has_value())
              throw Error(ErrorCode::invalid_argument,
                          "run_paged: give both seq_lens and page_table (host arrays) or neither");
            AttentionResult r;
            {
              pyb::gil_scoped_release nogil;
              r = lens ? p.plan.run(tq, kv, b, PagedTables{lens->data(), table->data()})
                       : p.plan.run(tq, kv, b);
            }
            return p.result(r);
          },
          pyb::arg("q"), pyb::arg("kv"), pyb::kw_only(), pyb::arg("seq_lens") = pyb::none(),
          pyb::arg("page_table") = pyb::none(), SPARQ_PY_PLAN_OUT,
          pyb::arg("workspace") = pyb::none(),
          "Runs a make_attention_paged_plan plan; seq_lens [B] / page_table [B, max_pages] as "
          "host int32 arrays take the no-download path (kv's tables are then not read).")
      .def(
          "run_varlen",
          [](PyPlan& p, const pyb::object& q, const pyb::object& k, const pyb::object& v,
             const pyb::object& cu_q, const pyb::object& cu_k, const pyb::object& out,
             const pyb::object& lse, const pyb::object& workspace) {
            const Tensor tq = to_tensor(p.ctx, q), tk = to_tensor(p.ctx, k),
                         tv = to_tensor(p.ctx, v);
            const PlanBuffers b = p.buffers(out, lse, workspace);
            const auto hq = plan_binding::host_ints(cu_q), hk = plan_binding::host_ints(cu_k);
            AttentionResult r;
            if (hq && hk) {
              pyb::gil_scoped_release nogil;
              r = p.plan.run_varlen(tq, tk, tv, SeqOffsets{hq->data(), hk->data()}, b);
            } else {
              const Tensor cq = to_tensor(p.ctx, cu_q, DType::i32),
                           ck = to_tensor(p.ctx, cu_k, DType::i32);
              pyb::gil_scoped_release nogil;
              r = p.plan.run_varlen(tq, tk, tv, cq, ck, b);
            }
            return p.result(r);
          },
          pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::arg("cu_seqlens_q"),
          pyb::arg("cu_seqlens_k"), pyb::kw_only(), SPARQ_PY_PLAN_OUT,
          pyb::arg("workspace") = pyb::none(),
          "Runs a make_attention_varlen_plan plan (host int32 offsets: no download).")
      .def(
          "run_sparse",
          [](PyPlan& p, const pyb::object& q, const pyb::object& k, const pyb::object& v,
             const SparseIndex& index, const pyb::object& out, const pyb::object& lse) {
            const Tensor tq = to_tensor(p.ctx, q), tk = to_tensor(p.ctx, k),
                         tv = to_tensor(p.ctx, v);
            const PlanBuffers b = p.buffers(out, lse, pyb::none());
            AttentionResult r;
            {
              pyb::gil_scoped_release nogil;
              r = p.plan.run_sparse(tq, tk, tv, index, b);
            }
            return p.result(r);
          },
          pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::arg("index"), pyb::kw_only(),
          SPARQ_PY_PLAN_OUT, "Runs a make_sparse_attention_plan plan over this run's index.")
      .def(
          "run_sage8",
          [](PyPlan& p, const Sage8Packed& packed, const pyb::object& out) {
            const PlanBuffers b = p.buffers(out, pyb::none(), pyb::none());
            pyb::gil_scoped_release nogil;
            return p.plan.run(packed, b).out;
          },
          pyb::arg("packed"), pyb::kw_only(), pyb::arg("out") = pyb::none(),
          "Runs a make_sage8_packed_plan plan.")
      .def(
          "run_fp4",
          [](PyPlan& p, const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
             const pyb::object& delta, const pyb::object& out) {
            const Tensor d = opt_tensor(p.ctx, delta);
            const PlanBuffers b = p.buffers(out, pyb::none(), pyb::none());
            pyb::gil_scoped_release nogil;
            return p.plan.run(q, k, v, d.defined() ? &d : nullptr, b).out;
          },
          pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
          pyb::arg("delta") = pyb::none(), pyb::arg("out") = pyb::none(),
          "Runs a make_fp4_packed_plan plan.");
}

SPARQ_PY_BIND(plan, sparq::py::kOps) {
  using namespace sparq;
  using namespace sparq::py;
  using namespace sparq::py::plan_binding;
  m.def(
      "make_attention_plan",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         SPARQ_PY_PLAN_PARAMS, SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const AttentionOptions o =
            plan_options(ctx, causal, scale, return_lse, out_dtype, precision, q_smooth, k_smooth,
                         window_left, window_right, softcap, alibi_slopes, sinks, key_padding);
        return PyPlan{ctx, sparq::make_attention_plan(ctx, tq.desc(), tk.desc(), tv.desc(), o)};
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
      SPARQ_PY_PLAN_OPTIONS, SPARQ_PY_MASK_ARGS,
      "A Plan of sparq.attention for q, k, v of these dtypes and shapes (precision fp32, int8 "
      "or nvfp4); plan.run(q, k, v) gives attention()'s bits.");
  m.def(
      "make_attention_paged_plan",
      [](Context& ctx, const pyb::object& q, const PagedKV& kv, SPARQ_PY_PLAN_PARAMS,
         SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q);
        const AttentionOptions o =
            plan_options(ctx, causal, scale, return_lse, out_dtype, precision, q_smooth, k_smooth,
                         window_left, window_right, softcap, alibi_slopes, sinks, key_padding);
        return PyPlan{ctx, sparq::make_attention_paged_plan(ctx, tq.desc(), kv, o)};
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("kv"), pyb::kw_only(), SPARQ_PY_PLAN_OPTIONS,
      SPARQ_PY_MASK_ARGS, "A Plan of sparq.attention_paged (plan.run_paged).");
  m.def(
      "make_attention_varlen_plan",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         const pyb::object& cu_q, const pyb::object& cu_k, SPARQ_PY_PLAN_PARAMS,
         SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const Tensor cq = to_tensor(ctx, cu_q, DType::i32), ck = to_tensor(ctx, cu_k, DType::i32);
        const AttentionOptions o =
            plan_options(ctx, causal, scale, return_lse, out_dtype, precision, q_smooth, k_smooth,
                         window_left, window_right, softcap, alibi_slopes, sinks, key_padding);
        return PyPlan{ctx, sparq::make_attention_varlen_plan(ctx, tq.desc(), tk.desc(), tv.desc(),
                                                             cq.desc(), ck.desc(), o)};
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::arg("cu_seqlens_q"),
      pyb::arg("cu_seqlens_k"), pyb::kw_only(), SPARQ_PY_PLAN_OPTIONS, SPARQ_PY_MASK_ARGS,
      "A Plan of sparq.attention_varlen (plan.run_varlen).");
  m.def(
      "make_sparse_attention_plan",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         const pyb::object& pattern_or_index, int layer, SPARQ_PY_PLAN_PARAMS,
         SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        const AttentionOptions o =
            plan_options(ctx, causal, scale, return_lse, out_dtype, precision, q_smooth, k_smooth,
                         window_left, window_right, softcap, alibi_slopes, sinks, key_padding);
        if (pyb::isinstance<SparseIndex>(pattern_or_index))
          return PyPlan{ctx,
                        sparq::make_sparse_attention_plan(ctx, tq.desc(), tk.desc(), tv.desc(),
                                                          pattern_or_index.cast<SparseIndex>(), o)};
        IndexOptions io;
        io.layer = layer;
        return PyPlan{ctx, sparq::make_sparse_attention_plan(
                               ctx, tq.desc(), tk.desc(), tv.desc(),
                               sparse_binding::to_pattern(pattern_or_index), o, io)};
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::arg("pattern"),
      pyb::kw_only(), pyb::arg("layer") = -1, SPARQ_PY_PLAN_OPTIONS, SPARQ_PY_MASK_ARGS,
      "A Plan of sparq.sparse_attention: over a SparseIndex of this one's shape "
      "(plan.run_sparse(q, k, v, index)), or over a pattern whose index each plan.run(q, k, v) "
      "builds.");
  m.def(
      "make_sage8_packed_plan",
      [](Context& ctx, const Sage8Packed& packed, bool causal, float scale) {
        const AttentionOptions o{.causal = causal, .scale = scale};
        return PyPlan{ctx, sparq::make_sage8_packed_plan(ctx, packed, o)};
      },
      pyb::arg("ctx"), pyb::arg("packed"), pyb::kw_only(), pyb::arg("causal") = false,
      pyb::arg("scale") = 0.0f,
      "A Plan of sparq.sage8_attention_packed for packed tensors of these shapes "
      "(plan.run_sage8).");
  m.def(
      "make_fp4_packed_plan",
      [](Context& ctx, const Fp4Packed& q, const Fp4Packed& k, const Fp4PackedT& v,
         const pyb::object& delta, bool causal, float scale) {
        const Tensor d = opt_tensor(ctx, delta);
        const AttentionOptions o{.causal = causal, .scale = scale};
        return PyPlan{ctx,
                      sparq::make_fp4_packed_plan(ctx, q, k, v, d.defined() ? &d : nullptr, o)};
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::kw_only(),
      pyb::arg("delta") = pyb::none(), pyb::arg("causal") = false, pyb::arg("scale") = 0.0f,
      "A Plan of sparq.fp4_attention_packed for packed tensors of these shapes (plan.run_fp4).");
}
