// MInference per-head configs (spec §5.4): load_minference_config, and build_index with a
// PerHeadConfig: each query head's rows built by its own pattern's builder on views of Q and K
// (heads are independent, so the rows equal that head's rows of a whole-tensor build), then
// copied into one index with the largest capacities (unused slots -1).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "builder_common.h"

namespace sparq {

PerHeadConfig load_minference_config(const std::string& path) {
  constexpr const char* op = "load_minference_config";
  std::ifstream in(path);
  if (!in) rt::fail(ErrorCode::io_error, op, "cannot open '{}'", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    rt::fail(ErrorCode::invalid_argument, op, "'{}' is not valid JSON: {}", path, e.what());
  }
  if (!j.is_array())
    rt::fail(ErrorCode::invalid_argument, op, "'{}': expected a list over layers", path);
  PerHeadConfig cfg;
  for (std::size_t l = 0; l < j.size(); ++l) {
    if (!j[l].is_object())
      rt::fail(ErrorCode::invalid_argument, op, "'{}': layer {} is not an object", path, l);
    std::vector<HeadPattern> heads;
    for (auto it = j[l].begin(); it != j[l].end(); ++it) {
      int h = -1;
      try {
        std::size_t used = 0;
        h = std::stoi(it.key(), &used);
        if (used != it.key().size()) h = -1;
      } catch (const std::exception&) {
        h = -1;
      }
      if (h < 0 || h > 65535)
        rt::fail(ErrorCode::invalid_argument, op, "'{}': layer {} has head key '{}'", path, l,
                 it.key());
      const auto& v = it.value();
      if (!v.is_array() || v.size() < 3 || !v[0].is_string() || !v[1].is_number_integer() ||
          !v[2].is_number_integer())
        rt::fail(ErrorCode::invalid_argument, op,
                 "'{}': layer {} head {}: expected [type, int, int, score]", path, l, h);
      const std::string type = v[0].get<std::string>();
      const std::int64_t a = v[1].get<std::int64_t>(), b = v[2].get<std::int64_t>();
      if (a < 0 || b < 0 || a > INT32_MAX || b > INT32_MAX)
        rt::fail(ErrorCode::invalid_argument, op, "'{}': layer {} head {}: sizes {}, {}", path, l,
                 h, a, b);
      HeadPattern hp;
      if (type == "vertical_and_slash")
        hp = VerticalSlash{.vertical = static_cast<int>(a), .slash = static_cast<int>(b)};
      else if (type == "stream_llm")
        hp = AShape{.n_init = static_cast<int>(a), .n_local = static_cast<int>(b)};
      else if (type == "block_sparse")
        hp = BlockSparse{.top_k = 100};
      else
        rt::fail(ErrorCode::invalid_argument, op, "'{}': layer {} head {}: unknown type '{}'", path,
                 l, h, type);
      if (heads.size() <= static_cast<std::size_t>(h))
        heads.resize(static_cast<std::size_t>(h) + 1, VerticalSlash{});
      heads[static_cast<std::size_t>(h)] = hp;
    }
    cfg.heads.push_back(std::move(heads));
  }
  return cfg;
}

namespace sparse_detail {

SparseIndex build(Context& ctx, const Tensor& q, const Tensor& k, const PerHeadConfig& p,
                  const BuildArgs& a) {
  constexpr const char* op = "build_index(PerHeadConfig)";
  require(op, a.sharing == IndexSharing::per_q_head,
          "per-head patterns need IndexSharing::per_q_head (each head has its own rows)");
  require(op, a.layer >= 0 && a.layer < static_cast<int>(p.heads.size()),
          "the config has {} layers; options.layer = {} is not one of them", p.heads.size(),
          a.layer);
  const auto& layer = p.heads[static_cast<std::size_t>(a.layer)];
  const int G = a.Hq / a.Hkv;
  BuildArgs ah = a;
  ah.Hq = ah.Hkv = ah.Hi = 1;
  std::vector<SparseIndex> parts;
  int mt = 1, mc = 0;
  for (int h = 0; h < a.Hq; ++h) {
    const Tensor qh = q.view({a.B, 1, a.Lq, a.D}, q.strides(), q.offset() + h * q.strides()[1]);
    const Tensor kh =
        k.view({a.B, 1, a.Lk, a.D}, k.strides(), k.offset() + (h / G) * k.strides()[1]);
    const HeadPattern hp =
        h < static_cast<int>(layer.size()) ? layer[static_cast<std::size_t>(h)] : VerticalSlash{};
    parts.push_back(std::visit([&](const auto& x) { return build(ctx, qh, kh, x, ah); }, hp));
    mt = std::max(mt, parts.back().max_tiles);
    mc = std::max(mc, parts.back().max_cols);
  }
  SparseIndex x = new_index(ctx, a, mt, mc);
  const std::size_t nqb = static_cast<std::size_t>(a.nqb), B = static_cast<std::size_t>(a.B);
  const std::size_t Hi = static_cast<std::size_t>(a.Hi);
  auto& impl = *ctx.impl();
  if (!impl.device) {
    auto* tc = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.tile_count));
    auto* ts = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.tile_start));
    auto* cc = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.col_count));
    auto* ci = reinterpret_cast<std::int32_t*>(detail::host_data_mut(x.col_index));
    std::fill(ts, ts + B * Hi * nqb * static_cast<std::size_t>(mt), -1);
    std::fill(ci, ci + B * Hi * nqb * static_cast<std::size_t>(mc), -1);
    for (std::size_t h = 0; h < Hi; ++h) {
      const SparseIndex& s = parts[h];
      const auto* stc = reinterpret_cast<const std::int32_t*>(detail::host_data(s.tile_count));
      const auto* sts = reinterpret_cast<const std::int32_t*>(detail::host_data(s.tile_start));
      const auto* scc = reinterpret_cast<const std::int32_t*>(detail::host_data(s.col_count));
      const auto* sci = reinterpret_cast<const std::int32_t*>(detail::host_data(s.col_index));
      const auto smt = static_cast<std::size_t>(s.max_tiles),
                 smc = static_cast<std::size_t>(s.max_cols);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t r = 0; r < nqb; ++r) {
          const std::size_t dst = (b * Hi + h) * nqb + r, src = b * nqb + r;
          tc[dst] = stc[src];
          cc[dst] = scc[src];
          std::copy(sts + src * smt, sts + src * smt + smt,
                    ts + dst * static_cast<std::size_t>(mt));
          std::copy(sci + src * smc, sci + src * smc + smc,
                    ci + dst * static_cast<std::size_t>(mc));
        }
    }
  } else {
    auto& q_ = impl.device->queue();
    const cl_int minus1 = -1;
    const auto bytes = [](const Tensor& t) { return static_cast<std::size_t>(t.numel()) * 4; };
    if (mt > 0)
      q_.enqueueFillBuffer(x.tile_start.storage()->buffer, minus1, 0, bytes(x.tile_start));
    if (mc > 0) q_.enqueueFillBuffer(x.col_index.storage()->buffer, minus1, 0, bytes(x.col_index));
    // Copies the [B, 1, nqb, w] rows of a part into [B, Hi, nqb, W] at head h.
    const auto copy = [&](const Tensor& src, const Tensor& dst, std::size_t w, std::size_t W,
                          std::size_t h) {
      if (w == 0) return;
      q_.enqueueCopyBufferRect(src.storage()->buffer, dst.storage()->buffer, {0, 0, 0},
                               {0, h * nqb, 0}, {w * 4, nqb, B}, w * 4, nqb * w * 4, W * 4,
                               Hi * nqb * W * 4);
    };
    for (std::size_t h = 0; h < Hi; ++h) {
      const SparseIndex& s = parts[h];
      copy(s.tile_count, x.tile_count, 1, 1, h);
      copy(s.col_count, x.col_count, 1, 1, h);
      copy(s.tile_start, x.tile_start, static_cast<std::size_t>(s.max_tiles),
           static_cast<std::size_t>(mt), h);
      copy(s.col_index, x.col_index, static_cast<std::size_t>(s.max_cols),
           static_cast<std::size_t>(mc), h);
    }
  }
  seal_index(x);
  return x;
}

}  // namespace sparse_detail
}  // namespace sparq
