// sparq-pattern: MInference's offline per-head pattern search on captured Q/K/V (.npy), writing a
// config that sparq's attention loads unchanged (load_minference_config), and an ASCII view of
// saved indices. docs/sparse_builders.md#sparq-pattern.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "npy.h"
#include "pattern_search.h"
#include "sparq/sparq.h"

namespace {

using namespace sparq;
using namespace sparq::pattern;

struct Heads {
  std::int64_t H = 0, L = 0, D = 0;
  std::vector<float> data;  // [H, L, D]
  const float* head(std::int64_t h) const { return data.data() + h * L * D; }
};

// [H, L, D], [1, H, L, D] (layout hld) or [L, H, D] (layout lhd) -> [H, L, D].
Heads load_heads(const std::string& path, const std::string& layout) {
  NpyArray a = read_npy(path);
  auto s = a.shape;
  if (s.size() == 4 && s[0] == 1) s.erase(s.begin());
  if (s.size() != 3)
    throw std::runtime_error(
        fmt::format("{}: expected [H, L, D] ([1, H, L, D] or --layout lhd "
                    "[L, H, D]), got {} dimensions",
                    path, a.shape.size()));
  Heads h;
  if (layout == "lhd") {
    h.L = s[0], h.H = s[1], h.D = s[2];
    h.data.resize(a.data.size());
    for (std::int64_t l = 0; l < h.L; ++l)
      for (std::int64_t x = 0; x < h.H; ++x)
        for (std::int64_t d = 0; d < h.D; ++d)
          h.data[static_cast<std::size_t>((x * h.L + l) * h.D + d)] =
              a.data[static_cast<std::size_t>((l * h.H + x) * h.D + d)];
  } else {
    h.H = s[0], h.L = s[1], h.D = s[2];
    h.data = std::move(a.data);
  }
  return h;
}

int search(const std::string& qp, const std::string& kp, const std::string& vp,
           const std::string& layout, int layer, const std::string& metric, double target,
           std::int64_t first_row, const std::string& device, const std::string& out,
           bool legacy_map) {
  const Heads q = load_heads(qp, layout), k = load_heads(kp, layout);
  Heads v;
  if (!vp.empty()) v = load_heads(vp, layout);
  if (k.L != q.L || k.D != q.D || k.H < 1 || q.H % k.H != 0)
    throw std::runtime_error(
        fmt::format("Q is [{}, {}, {}] and K [{}, {}, {}]: L and D must agree "
                    "and Hq must be a multiple of Hkv",
                    q.H, q.L, q.D, k.H, k.L, k.D));
  if (!vp.empty() && (v.H != k.H || v.L != k.L || v.D != k.D))
    throw std::runtime_error("V must have K's shape");
  SearchOptions o;
  o.metric = metric == "output" ? Metric::output : Metric::recall;
  o.target_recall = target;
  o.first_row = first_row;
  Context ctx = Context::create({.device = device});
  const auto cands = default_candidates();
  std::vector<HeadChoice> heads;
  const std::int64_t group = q.H / k.H;
  for (std::int64_t h = 0; h < q.H; ++h) {
    const HeadData hd{q.head(h), k.head(h / group), vp.empty() ? nullptr : v.head(h / group), q.L,
                      static_cast<int>(q.D)};
    heads.push_back(search_head(ctx, hd, cands, o));
    const auto& c = heads.back();
    std::printf("head %lld: %s", static_cast<long long>(h),
                cands[static_cast<std::size_t>(c.chosen)].label().c_str());
    for (std::size_t i = 0; i < cands.size(); ++i)
      std::printf("%s %s recall %.4f density %.3f", i ? ";" : "  |", cands[i].label().c_str(),
                  c.scores[i].recall, c.scores[i].density);
    std::printf("\n");
  }
  nlohmann::json cfg = minference_config(heads, cands, layer, o.metric);
  if (legacy_map)  // MInference's first variant: a block-sparse winner runs as vertical-slash
    for (auto& [name, e] : cfg.back().items())
      if (e.is_array() && !e.empty() && e[0] == "block_sparse") {
        e[0] = "vertical_and_slash";
        e[1] = 1000;
        e[2] = 6096;
      }
  {  // an existing config keeps its other layers (one run per layer fills one file)
    std::ifstream prev(out);
    if (prev) {
      nlohmann::json old = nlohmann::json::parse(prev, nullptr, false);
      if (!old.is_array())
        throw std::runtime_error(out + ": exists and is not a config list; not overwritten");
      while (old.size() < cfg.size()) old.push_back(nlohmann::json::object());
      old[static_cast<std::size_t>(layer)] = cfg[static_cast<std::size_t>(layer)];
      cfg = std::move(old);
    }
  }
  const std::string json = cfg.dump(1);
  const std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp);
    if (!(f << json << "\n")) throw std::runtime_error(out + ": cannot write");
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) throw std::runtime_error(out + ": cannot write");
  std::printf("wrote %s (layer %d, %lld heads)\n", out.c_str(), layer, static_cast<long long>(q.H));
  return 0;
}

int show(const std::string& path, int b, int h, int width) {
  Context ctx = Context::create({.device = "fallback"});
  const HostIndex x = download_index(load_index(ctx, path));
  std::printf("%s: B %d, %d index heads, Lq %lld, Lk %lld, %d query blocks, %s\n", path.c_str(),
              x.B, x.Hi, static_cast<long long>(x.Lq), static_cast<long long>(x.Lk), x.nqb,
              x.causal ? "causal" : "not causal");
  for (int hh = (h < 0 ? 0 : h); hh < (h < 0 ? x.Hi : h + 1); ++hh) {
    std::printf("-- batch %d head %d\n", b, hh);
    std::fputs(density_map(x, b, hh, width).c_str(), stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sparq-pattern: per-head sparse pattern search (MInference's offline search) on "
      "captured Q/K/V, and a view of saved .sqidx indices"};
  app.require_subcommand(1);
  std::string q, k, v, layout = "hld", metric = "recall", device = "fallback", out, idx;
  int layer = 0, b = 0, h = -1, width = 64;
  double target = 0;
  bool legacy_map = false;
  std::int64_t first_row = -1;
  auto* s = app.add_subcommand("search", "score MInference's candidates per head, write a config");
  s->add_option("--q", q, "post-RoPE queries (.npy float32/float16)")->required();
  s->add_option("--k", k, "keys (.npy)")->required();
  s->add_option("--v", v, "values (.npy; needed by --metric output)");
  s->add_option("--layout", layout, "hld: [H, L, D] or [1, H, L, D]; lhd: [L, H, D]")
      ->check(CLI::IsMember({"hld", "lhd"}));
  s->add_option("--layer", layer, "layer id the config entry is written for")
      ->check(CLI::NonNegativeNumber);
  s->add_option("--metric", metric, "recall (kept attention mass) or output (|dO| > 5e-3 count)")
      ->check(CLI::IsMember({"recall", "output"}));
  s->add_option("--target-recall", target,
                "pick the cheapest candidate reaching this recall (0: the best recall)")
      ->check(CLI::Range(0.0, 1.0));
  s->add_option("--first-row", first_row,
                "score rows i >= this (default 2500, or L/2 if L <= 5000)");
  s->add_flag("--legacy-map", legacy_map,
              "write block-sparse winners as vertical_and_slash (1000, 6096), as MInference's "
              "first search variant");
  s->add_option("--device", device, "where indices are built (fallback, pocl, gpu, ...)");
  s->add_option("-o,--out", out,
                "the config JSON to write (an existing one keeps its other layers)")
      ->required();
  auto* w = app.add_subcommand("show", "ASCII density map of a saved index (.sqidx)");
  w->add_option("index", idx, ".sqidx file")->required();
  w->add_option("--batch", b, "batch row");
  w->add_option("--head", h, "index head (default: all)");
  w->add_option("--width", width, "map width in characters")->check(CLI::Range(4, 512));
  CLI11_PARSE(app, argc, argv);
  try {
    if (s->parsed())
      return search(q, k, v, layout, layer, metric, target, first_row, device, out, legacy_map);
    return show(idx, b, h, width);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq-pattern: %s\n", e.what());
    return 2;
  }
}
