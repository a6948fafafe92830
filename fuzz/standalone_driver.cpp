// main() for fuzz targets when libFuzzer is not available (GCC builds, the default): replays every
// file of the corpus directories given, then runs mutated and random inputs until -runs or
// -max_total_time (libFuzzer's flag names, so ctest's command is the same for both). A target
// signals a bug by crashing or by an escaping exception (std::terminate); so does a sanitizer.
//
// This has no coverage feedback: it finds what random and mutated inputs reach. Build with clang
// (-DSPARQ_LIBFUZZER=ON, as tools/sanitize.sh does) for coverage-guided libFuzzer binaries.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void run(const Bytes& b) {
  LLVMFuzzerTestOneInput(b.data(), b.size());
}

Bytes mutate(Bytes b, std::mt19937_64& rng) {
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    const std::size_t pos = b.empty() ? 0 : rng() % b.size();
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!b.empty()) b[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // set a byte to an edge value
        if (!b.empty()) {
          static const std::uint8_t edge[] = {0, 1, 0x7f, 0x80, 0xff, 0xfe};
          b[pos] = edge[rng() % sizeof edge];
        }
        break;
      case 2:  // insert random bytes
        for (int i = static_cast<int>(rng() % 8); i >= 0; --i)
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(b.empty() ? 0 : rng() % (b.size() + 1)),
                   static_cast<std::uint8_t>(rng()));
        break;
      case 3:  // erase a run
        if (!b.empty())
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos),
                  b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), pos + 1 + rng() % 8)));
        break;
      case 4:  // random byte
        if (!b.empty()) b[pos] = static_cast<std::uint8_t>(rng());
        break;
      default:  // truncate
        if (!b.empty()) b.resize(rng() % b.size());
        break;
    }
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  double max_time = 5;
  long runs = -1;
  std::uint64_t seed = 1;
  std::vector<Bytes> corpus;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("-max_total_time=", 0) == 0) {
      max_time = std::atof(a.c_str() + 16);
    } else if (a.rfind("-runs=", 0) == 0) {
      runs = std::atol(a.c_str() + 6);
    } else if (a.rfind("-seed=", 0) == 0) {
      seed = std::strtoull(a.c_str() + 6, nullptr, 10);
    } else if (a.rfind("-", 0) == 0) {
      std::fprintf(stderr, "standalone fuzz driver: ignoring libFuzzer flag %s\n", a.c_str());
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a))
        if (e.is_regular_file()) corpus.push_back(read_file(e.path()));
    } else {
      corpus.push_back(read_file(a));
    }
  }
  for (const auto& c : corpus) run(c);
  std::mt19937_64 rng(seed);
  const auto t0 = std::chrono::steady_clock::now();
  long n = 0;
  for (; runs < 0 || n < runs; ++n) {
    if ((n & 63) == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >= max_time)
      break;
    if (!corpus.empty() && rng() % 4 != 0) {
      run(mutate(corpus[rng() % corpus.size()], rng));
    } else {
      Bytes b(rng() % 512);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      run(b);
    }
  }
  std::printf("standalone fuzz driver: %zu corpus inputs + %ld generated inputs, no failure\n",
              corpus.size(), n);
  return 0;
}
