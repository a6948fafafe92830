// sparq.AShape / VerticalSlash / BlockSparse / XAttention (pattern classes), sparq.build_index,
// sparq.dense_index, sparq.SparseIndex (arrays as numpy, density, save), sparq.load_index,
// sparq.load_minference_config, sparq.sparse_attention (a pattern or an index; fp32, int8 or
// nvfp4 where the op supports it).
#include "attention_options.h"

namespace sparq::py::sparse_binding {

Pattern to_pattern(const pyb::object& p) {
  if (pyb::isinstance<AShape>(p)) return p.cast<AShape>();
  if (pyb::isinstance<VerticalSlash>(p)) return p.cast<VerticalSlash>();
  if (pyb::isinstance<BlockSparse>(p)) return p.cast<BlockSparse>();
  if (pyb::isinstance<XAttention>(p)) return p.cast<XAttention>();
  if (pyb::isinstance<PerHeadConfig>(p)) return p.cast<PerHeadConfig>();
  if (pyb::isinstance<Grid>(p)) return p.cast<Grid>();
  if (pyb::isinstance<pyb::str>(p) && p.cast<std::string>() == "dense") return Dense{};
  throw Error(ErrorCode::invalid_argument,
              "pattern must be sparq.AShape, VerticalSlash, BlockSparse, XAttention, Grid, a "
              "loaded MInference config or 'dense'");
}

IndexSharing sharing_of(const std::string& s) {
  if (s == "per_q_head") return IndexSharing::per_q_head;
  if (s == "kv_group") return IndexSharing::kv_group;
  throw Error(ErrorCode::invalid_argument,
              "sharing must be 'per_q_head' or 'kv_group', got '" + s + "'");
}

pyb::array ints(const std::vector<std::int32_t>& v, std::vector<pyb::ssize_t> shape) {
  pyb::array_t<std::int32_t> a(shape);
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

}  // namespace sparq::py::sparse_binding

SPARQ_PY_BIND(sparse_types, sparq::py::kTypes) {
  using namespace sparq;
  using namespace sparq::py;
  pyb::class_<AShape>(m, "AShape", "Attention sinks + local window (MInference A-shape).")
      .def(pyb::init([](int n_init, int n_local, bool exact) {
             return AShape{n_init, n_local, exact};
           }),
           pyb::arg("n_init") = 128, pyb::arg("n_local") = 3968, pyb::arg("exact") = false)
      .def_readwrite("n_init", &AShape::n_init)
      .def_readwrite("n_local", &AShape::n_local)
      .def_readwrite("exact", &AShape::exact);
  pyb::class_<VerticalSlash>(m, "VerticalSlash", "MInference vertical-slash (probe of 64 rows).")
      .def(pyb::init([](int vertical, int slash, float ratio) {
             VerticalSlash p;
             p.vertical = vertical;
             p.slash = slash;
             p.ratio = ratio;
             return p;
           }),
           pyb::arg("vertical") = 1000, pyb::arg("slash") = 6096, pyb::arg("ratio") = 1.0f)
      .def_readwrite("vertical", &VerticalSlash::vertical)
      .def_readwrite("slash", &VerticalSlash::slash)
      .def_readwrite("ratio", &VerticalSlash::ratio);
  pyb::class_<BlockSparse>(m, "BlockSparse", "MInference block-sparse: top_k 64-blocks per row.")
      .def(pyb::init([](int top_k) { return BlockSparse{top_k}; }), pyb::arg("top_k") = 100)
      .def_readwrite("top_k", &BlockSparse::top_k);
  pyb::class_<XAttention>(m, "XAttention", "XAttention antidiagonal scoring + threshold.")
      .def(pyb::init([](int stride, float threshold) {
             XAttention p;
             p.stride = stride;
             p.threshold = threshold;
             return p;
           }),
           pyb::arg("stride") = 8, pyb::arg("threshold") = 0.9f)
      .def_readwrite("stride", &XAttention::stride)
      .def_readwrite("threshold", &XAttention::threshold);
  pyb::class_<VideoSegment>(m, "VideoSegment", "Video tokens [start, end), frame_tokens per frame.")
      .def(pyb::init([](std::int64_t start, std::int64_t end, std::int64_t frame_tokens) {
             return VideoSegment{start, end, frame_tokens};
           }),
           pyb::arg("start"), pyb::arg("end"), pyb::arg("frame_tokens") = 0)
      .def_readwrite("start", &VideoSegment::start)
      .def_readwrite("end", &VideoSegment::end)
      .def_readwrite("frame_tokens", &VideoSegment::frame_tokens);
  pyb::class_<Grid>(m, "Grid",
                    "MMInference grid head, built in a permuted order (sparse_attention and "
                    "permuted_attention return O in the original order). boundary: 'none', "
                    "'q_boundary' or 'two_d' with modality ids per key position.")
      .def(pyb::init([](int stride, int top_k, int lines, std::vector<VideoSegment> segments,
                        const std::string& boundary, std::vector<std::int32_t> modality) {
             Grid g;
             g.stride = stride;
             g.top_k = top_k;
             g.lines = lines;
             g.segments = std::move(segments);
             if (boundary == "q_boundary")
               g.boundary = Boundary::q_boundary;
             else if (boundary == "two_d")
               g.boundary = Boundary::two_d;
             else if (boundary != "none")
               throw Error(
                   ErrorCode::invalid_argument,
                   "boundary must be 'none', 'q_boundary' or 'two_d', got '" + boundary + "'");
             g.modality = std::move(modality);
             return g;
           }),
           pyb::arg("stride") = 0, pyb::arg("top_k") = 100, pyb::arg("lines") = 16,
           pyb::arg("segments") = std::vector<VideoSegment>{}, pyb::arg("boundary") = "none",
           pyb::arg("modality") = std::vector<std::int32_t>{})
      .def_readwrite("stride", &Grid::stride)
      .def_readwrite("top_k", &Grid::top_k)
      .def_readwrite("lines", &Grid::lines)
      .def_readwrite("segments", &Grid::segments)
      .def_readwrite("modality", &Grid::modality);
  pyb::class_<PerHeadConfig>(m, "PerHeadConfig",
                             "MInference per-head config (load_minference_config).")
      .def_property_readonly("layers", [](const PerHeadConfig& c) { return c.heads.size(); });
  pyb::class_<SparseIndex>(m, "SparseIndex", "The block-sparse index (spec §2).")
      .def_property_readonly("shape",
                             [](const SparseIndex& i) {
                               return pyb::make_tuple(i.B, i.Hi, i.nqb, i.max_tiles, i.max_cols);
                             })
      .def(
          "arrays",
          [](const SparseIndex& i) {
            using namespace sparse_binding;
            const HostIndex h = download_index(i);
            pyb::dict d;
            d["tile_count"] = ints(h.tile_count, {h.B, h.Hi, h.nqb});
            d["tile_start"] = ints(h.tile_start, {h.B, h.Hi, h.nqb, h.max_tiles});
            d["col_count"] = ints(h.col_count, {h.B, h.Hi, h.nqb});
            d["col_index"] = ints(h.col_index, {h.B, h.Hi, h.nqb, h.max_cols});
            return d;
          },
          "tile_count, tile_start, col_count, col_index as int32 numpy arrays (downloaded)")
      .def(
          "density",
          [](const SparseIndex& i) {
            // Computed 64-key tiles over the tiles a causal (or full) row block could see.
            const HostIndex h = download_index(i);
            double tiles = 0, all = 0;
            const std::int64_t nkb = (h.Lk + 63) / 64;
            for (int r = 0; r < h.B * h.Hi; ++r)
              for (int qb = 0; qb < h.nqb; ++qb) {
                tiles += h.tile_count[static_cast<std::size_t>(r * h.nqb + qb)];
                const std::int64_t last = std::min(h.Lq - 1, std::int64_t{qb} * 64 + 63) + h.off;
                all += h.causal ? static_cast<double>(last / 64 + 1) : static_cast<double>(nkb);
              }
            return all > 0 ? tiles / all : 0.0;
          },
          "computed tiles / tiles the rows may see (columns not counted)")
      .def("save", [](const SparseIndex& i, const std::string& path) { save_index(i, path); });
}

SPARQ_PY_BIND(sparse, sparq::py::kOps) {
  using namespace sparq;
  using namespace sparq::py;
  using namespace sparq::py::sparse_binding;
  m.def(
      "build_index",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& pattern,
         bool causal, const std::string& sharing, int layer) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k);
        const Pattern p = to_pattern(pattern);
        const IndexOptions o{.causal = causal, .sharing = sharing_of(sharing), .layer = layer};
        pyb::gil_scoped_release nogil;
        return build_index(ctx, tq, tk, p, o);
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("pattern"), pyb::kw_only(),
      pyb::arg("causal") = true, pyb::arg("sharing") = "per_q_head", pyb::arg("layer") = -1,
      "Builds the index of a pattern for q [B, Hq, Lq, D], k [B, Hkv, Lk, D] (D 64 or 128).");
  m.def(
      "dense_index",
      [](Context& ctx, int B, int Hi, std::int64_t Lq, std::int64_t Lk, bool causal) {
        return dense_index(ctx, B, Hi, Lq, Lk, causal);
      },
      pyb::arg("ctx"), pyb::arg("B"), pyb::arg("Hi"), pyb::arg("Lq"), pyb::arg("Lk"),
      pyb::kw_only(), pyb::arg("causal") = true, "Every visible tile (equals dense attention).");
  m.def(
      "load_index", [](Context& ctx, const std::string& path) { return load_index(ctx, path); },
      pyb::arg("ctx"), pyb::arg("path"), "Reads a .sqidx file (validated).");
  m.def(
      "load_minference_config",
      [](const std::string& path) { return load_minference_config(path); }, pyb::arg("path"),
      "MInference's per-head config JSON (e.g. from sparq-pattern search), unchanged.");
  m.def(
      "sparse_attention",
      [](Context& ctx, const pyb::object& q, const pyb::object& k, const pyb::object& v,
         const pyb::object& pattern_or_index, bool causal, bool return_lse, int layer,
         const std::string& precision, const std::string& q_smooth, bool k_smooth, bool permuted,
         SPARQ_PY_MASK_PARAMS) {
        const Tensor tq = to_tensor(ctx, q), tk = to_tensor(ctx, k), tv = to_tensor(ctx, v);
        AttentionOptions o = attention_options::options(causal, 0.0f, return_lse, DType::f32,
                                                        precision, q_smooth, k_smooth);
        o.masks = SPARQ_PY_MASKS(ctx);
        AttentionResult r;
        if (pyb::isinstance<SparseIndex>(pattern_or_index)) {
          const SparseIndex idx = pattern_or_index.cast<SparseIndex>();
          pyb::gil_scoped_release nogil;
          r = permuted ? permuted_attention(ctx, tq, tk, tv, idx, o)
                       : attention(ctx, tq, tk, tv, idx, o);
        } else {
          const Pattern p = to_pattern(pattern_or_index);
          IndexOptions io;
          io.causal = causal;
          io.layer = layer;
          pyb::gil_scoped_release nogil;
          r = attention(ctx, tq, tk, tv, p, o, io);
        }
        if (!return_lse) return pyb::cast(r.out);
        return static_cast<pyb::object>(pyb::make_tuple(r.out, r.lse));
      },
      pyb::arg("ctx"), pyb::arg("q"), pyb::arg("k"), pyb::arg("v"), pyb::arg("pattern"),
      pyb::kw_only(), pyb::arg("causal") = true, pyb::arg("return_lse") = false,
      pyb::arg("layer") = -1, pyb::arg("precision") = "fp32", pyb::arg("q_smooth") = "per_block128",
      pyb::arg("k_smooth") = true, pyb::arg("permuted") = false, SPARQ_PY_MASK_ARGS,
      "Block-sparse prefill over a pattern (built on the fly; Grid runs in its permuted order and "
      "returns O in the original order) or a SparseIndex: as given, or with permuted=True on "
      "q/k/v in their original order for an index built in a permuted order (C++ "
      "permuted_attention). precision 'fp32' (exact), 'int8' or 'nvfp4'; masks fp32 only.");
}
