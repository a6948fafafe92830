// sparq-pattern: the .npy reader, the float64 scoring of candidates against planted structure,
// the MInference config it writes (loaded back by load_minference_config and run by attention),
// and the command line's exit codes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "npy.h"
#include "pattern_search.h"
#include "sparq/sparq.h"
#include "test_support.h"

namespace sparq::test {
namespace {

using namespace sparq::pattern;

// A .npy image of a float32 (elem 4) or float16 (elem 2, values given as f16 bits) array.
std::string npy_bytes(const std::vector<std::int64_t>& shape, const std::vector<std::uint32_t>& raw,
                      int elem, const std::string& descr = "", bool fortran = false) {
  std::string sh = "(";
  for (auto d : shape) sh += std::to_string(d) + ", ";
  sh += ")";
  std::string header = "{'descr': '" + (descr.empty() ? (elem == 4 ? "<f4" : "<f2") : descr) +
                       "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + sh +
                       ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  for (auto v : raw)
    for (int b = 0; b < elem; ++b) out += static_cast<char>((v >> (8 * b)) & 0xff);
  return out;
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> r;
  for (float f : v) r.push_back(std::bit_cast<std::uint32_t>(f));
  return r;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(SparqPattern, NpyReader) {
  const std::vector<float> v{1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f};
  const NpyArray a = parse_npy(npy_bytes({2, 3}, bits(v), 4));
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.data, v);
  // float16: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800
  const NpyArray h = parse_npy(npy_bytes({3}, {0x3C00u, 0xC000u, 0x3800u}, 2));
  EXPECT_EQ(h.data, (std::vector<float>{1.0f, -2.0f, 0.5f}));
  auto rejects = [](const std::string& bytes, const std::string& why) {
    try {
      parse_npy(bytes, "x.npy");
      ADD_FAILURE() << "accepted: " << why;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  rejects("not numpy at all", "bad magic");
  rejects(npy_bytes({2}, {0, 0}, 4, "<f8"), "dtype must be float32");
  rejects(npy_bytes({2}, {0, 0}, 4, "", true), "fortran_order");
  std::string cut = npy_bytes({4}, bits({1, 2, 3, 4}), 4);
  cut.resize(cut.size() - 3);
  rejects(cut, "data shorter");
  rejects(npy_bytes({}, {0}, 4), "scalar");
}

// Q/K of one head, L x 64: every query aligns with e0; keys in `hot` carry a large e0 component,
// the rest are small noise. Attention mass concentrates on the hot keys (vertical lines).
void planted_columns(std::int64_t L, const std::vector<std::int64_t>& hot, std::vector<float>& q,
                     std::vector<float>& k) {
  const int D = 64;
  q = random_normal(static_cast<std::size_t>(L * D), 11, 0.05f);
  k = random_normal(static_cast<std::size_t>(L * D), 12, 0.05f);
  for (std::int64_t i = 0; i < L; ++i) q[static_cast<std::size_t>(i * D)] = 1.5f;
  for (auto j : hot) k[static_cast<std::size_t>(j * D)] = 40.0f;
}

TEST(SparqPattern, FullWindowHasRecallOne) {
  Context ctx = fallback_context();
  const std::int64_t L = 300;
  const auto q = random_normal(static_cast<std::size_t>(L * 64), 1);
  const auto k = random_normal(static_cast<std::size_t>(L * 64), 2);
  const std::vector<Candidate> c{{"stream_llm", 100, 100000}};
  const HeadChoice r = search_head(ctx, {q.data(), k.data(), nullptr, L, 64}, c, {});
  EXPECT_NEAR(r.scores[0].recall, 1.0, 1e-12);
  EXPECT_NEAR(r.scores[0].density, 1.0, 1e-12);
}

TEST(SparqPattern, PicksVerticalSlashForPlantedColumns) {
  Context ctx = fallback_context();
  const std::int64_t L = 4096;
  std::vector<std::int64_t> hot;
  for (int c = 0; c < 20; ++c) hot.push_back(40 + c * 197);  // spread over the context
  std::vector<float> q, k;
  planted_columns(L, hot, q, k);
  const auto cands = default_candidates();
  const HeadData hd{q.data(), k.data(), nullptr, L, 64};
  const HeadChoice best = search_head(ctx, hd, cands, {});
  for (const auto& s : best.scores) EXPECT_LE(s.recall, best.scores[best.chosen].recall);
  EXPECT_LT(best.scores[0].recall, 0.8) << "A-shape misses the far columns";
  SearchOptions o;
  o.target_recall = 0.95;
  const HeadChoice cheap = search_head(ctx, hd, cands, o);
  const auto& pick = cands[static_cast<std::size_t>(cheap.chosen)];
  EXPECT_EQ(pick.type, "vertical_and_slash") << pick.label();
  EXPECT_GE(cheap.scores[cheap.chosen].recall, 0.95);
  for (std::size_t i = 0; i < cands.size(); ++i) {
    if (cheap.scores[i].recall >= 0.95) {
      EXPECT_GE(cheap.scores[i].density, cheap.scores[cheap.chosen].density) << cands[i].label();
    }
  }
}

TEST(SparqPattern, ConfigLoadsAndRuns) {
  Context ctx = fallback_context();
  const auto cands = default_candidates();
  std::vector<HeadChoice> heads(3);
  heads[0].chosen = 0;  // stream_llm
  heads[1].chosen = 2;  // vertical_and_slash 100 750
  heads[2].chosen = 7;  // block_sparse
  for (auto& h : heads) h.scores.assign(cands.size(), Score{0.9, 0.2, -1});
  const auto dir = std::filesystem::temp_directory_path() / ("sqpat_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "cfg.json").string();
  std::ofstream(path) << minference_config(heads, cands, 1, Metric::recall).dump();
  const PerHeadConfig cfg = load_minference_config(path);
  ASSERT_EQ(cfg.heads.size(), 2u);
  EXPECT_TRUE(cfg.heads[0].empty());
  ASSERT_EQ(cfg.heads[1].size(), 3u);
  EXPECT_EQ(std::get<AShape>(cfg.heads[1][0]).n_init, 100);
  EXPECT_EQ(std::get<VerticalSlash>(cfg.heads[1][1]).slash, 750);
  EXPECT_EQ(std::get<BlockSparse>(cfg.heads[1][2]).top_k, 100);
  const std::int64_t L = 200;
  const auto x = random_normal(static_cast<std::size_t>(3 * L * 64), 5);
  const Tensor t = ctx.upload(x, DType::f32, {1, 3, L, 64});
  AttentionOptions ao;
  ao.causal = true;
  IndexOptions io;
  io.layer = 1;
  const AttentionResult r = attention(ctx, t, t, t, Pattern(cfg), ao, io);
  EXPECT_EQ(r.out.shape(), (std::vector<std::int64_t>{1, 3, L, 64}));
  std::filesystem::remove_all(dir);
}

int run_tool(const std::string& args) {
  const int rc = std::system((std::string(SPARQ_PATTERN_TOOL) + " " + args).c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(SparqPattern, CommandLine) {
  if (!std::filesystem::exists(SPARQ_PATTERN_TOOL))
    GTEST_SKIP() << "the sparq-pattern binary of this build is not here (" << SPARQ_PATTERN_TOOL
                 << "): the test binary was copied without it";
  const auto dir = std::filesystem::temp_directory_path() / ("sqcli_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();
  EXPECT_EQ(run_tool("search --q " + d + "/none.npy --k " + d + "/none.npy -o " + d +
                     "/c.json 2> " + d + "/err.txt"),
            2);
  std::ifstream err(d + "/err.txt");
  const std::string msg((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
  const std::int64_t H = 2, L = 256;
  write_file(d + "/q.npy", npy_bytes({H, L, 64}, bits(random_normal(H * L * 64, 7)), 4));
  write_file(d + "/k.npy", npy_bytes({1, L, 64}, bits(random_normal(L * 64, 8)), 4));
  write_file(d + "/bad.npy", npy_bytes({H, L, 32}, bits(random_normal(H * L * 32, 9)), 4));
  EXPECT_EQ(run_tool("search --q " + d + "/q.npy --k " + d + "/k.npy --layer 2 -o " + d +
                     "/c.json > " + d + "/out.txt"),
            0);
  const PerHeadConfig cfg = load_minference_config(d + "/c.json");
  ASSERT_EQ(cfg.heads.size(), 3u);
  EXPECT_EQ(cfg.heads[2].size(), 2u);
  // A second layer into the same file keeps the first; a non-config file is not overwritten.
  EXPECT_EQ(run_tool("search --q " + d + "/q.npy --k " + d + "/k.npy --layer 0 -o " + d +
                     "/c.json > /dev/null"),
            0);
  const PerHeadConfig both = load_minference_config(d + "/c.json");
  ASSERT_EQ(both.heads.size(), 3u);
  EXPECT_EQ(both.heads[0].size(), 2u);
  EXPECT_EQ(both.heads[2].size(), 2u);
  write_file(d + "/notcfg.json", "{\"a\": 1}");
  EXPECT_EQ(run_tool("search --q " + d + "/q.npy --k " + d + "/k.npy -o " + d +
                     "/notcfg.json 2> /dev/null"),
            2);
  // --legacy-map: no block_sparse entry survives (spec §5.4 step 5).
  EXPECT_EQ(run_tool("search --q " + d + "/q.npy --k " + d + "/k.npy --legacy-map -o " + d +
                     "/c3.json > /dev/null"),
            0);
  {
    std::ifstream c3(d + "/c3.json");
    const std::string text((std::istreambuf_iterator<char>(c3)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find("block_sparse"), std::string::npos) << text;
    EXPECT_EQ(load_minference_config(d + "/c3.json").heads.size(), 1u);
  }
  EXPECT_EQ(run_tool("search --q " + d + "/bad.npy --k " + d + "/k.npy -o " + d +
                     "/c2.json 2> /dev/null"),
            2);
  Context ctx = fallback_context();
  save_index(dense_index(ctx, 1, 2, 300, 300, true), d + "/i.sqidx");
  EXPECT_EQ(run_tool("show " + d + "/i.sqidx --width 8 > " + d + "/show.txt"), 0);
  std::ifstream sh(d + "/show.txt");
  const std::string map((std::istreambuf_iterator<char>(sh)), std::istreambuf_iterator<char>());
  EXPECT_NE(map.find("head 1"), std::string::npos) << map;
  EXPECT_NE(map.find('#'), std::string::npos) << map;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sparq::test
