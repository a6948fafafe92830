// sparq-pattern's search (spec sparse_attention.md §5.4): per head, score MInference's candidate
// patterns on captured Q/K(/V) by what sparq's kernel really computes, and pick one. The library
// part of tools/sparq_pattern.cpp, so tests can call it directly.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sparq/sparse.h"

namespace sparq::pattern {

// One candidate: MInference's config name and numbers (stream_llm: n_init, n_local;
// vertical_and_slash: vertical, slash; block_sparse: MInference's loader always means top_k 100).
struct Candidate {
  std::string type;
  int a = 0, b = 0;
  HeadPattern pattern() const;
  std::string label() const;
};

// Spec §5.4's list in its order: A-shape (100, 800); vertical-slash (30, 800), (100, 750),
// (500, 700), (3500, 100), (100, 800), (1000, 4096); block-sparse top_k = 100.
std::vector<Candidate> default_candidates();

enum class Metric { recall, output };

struct SearchOptions {
  Metric metric = Metric::recall;
  // 0: pick the best score (ties -> earlier candidate). > 0 (recall metric): the lowest-density
  // candidate whose recall reaches it (ties -> earlier), else the best recall.
  double target_recall = 0;
  // Rows scored: i >= first_row; -1 = the spec's 2500 when L > 5000, else L / 2.
  std::int64_t first_row = -1;
};

// One head's captured tensors, row-major [L, D] (post-RoPE Q and K; V only for Metric::output).
struct HeadData {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  std::int64_t L = 0;
  int D = 0;
};

struct Score {
  double recall = 0;      // mean over scored rows of the softmax mass the kernel computes
  double density = 0;     // computed (i, j) pairs / causal pairs over the scored rows
  std::int64_t bad = -1;  // Metric::output: outputs with |O_sparse - O_dense| > 5e-3
};

struct HeadChoice {
  int chosen = 0;             // index into the candidate list
  std::vector<Score> scores;  // per candidate
};

// Builds each candidate's index exactly as the online builder would (sparq::build_index on
// `ctx`), expands it to the computed elements (tiles, columns, causal, token-exact masks) and
// scores it against float64 attention of the head. Throws std::runtime_error on bad input.
HeadChoice search_head(Context& ctx, const HeadData& head, const std::vector<Candidate>& candidates,
                       const SearchOptions& options);

// MInference's config JSON for one layer: a list of `layer + 1` objects (earlier layers empty:
// their heads take the loader's default) whose last maps "<head>" -> [type, a, b, score].
nlohmann::json minference_config(const std::vector<HeadChoice>& heads,
                                 const std::vector<Candidate>& candidates, int layer,
                                 Metric metric);

// An ASCII density map of one head row of an index: query blocks down, key blocks across,
// downsampled to at most `width` columns and rows; ' ' empty ... '#' full.
std::string density_map(const HostIndex& index, int b, int h, int width = 64);

}  // namespace sparq::pattern
