// Fuzz target: the sparse index validator and converters (sparq/sparse.h). A host index with
// hostile sizes and contents must be accepted or refused with sparq::Error by validate_index and
// upload_index; an accepted one must survive .sqidx save/load, and to_block_mask / from_block_mask
// must round-trip it to an index that validates. Block masks of any content must convert or be
// refused cleanly. Never a crash, an out-of-bounds access or another exception.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "fuzz_input.h"
#include "sparq/sparq.h"

namespace {

using namespace sparq;

Context& ctx() {
  static Context c = Context::create({.device = "fallback"});
  return c;
}

HostIndex random_index(fuzz::Input& in) {
  HostIndex h;
  h.B = static_cast<int>(in.range(0, 2));
  h.Hi = static_cast<int>(in.range(0, 3));
  h.Lk = in.range(0, 400);
  h.Lq = in.boolean() ? h.Lk : in.range(0, 400);
  h.off = h.Lk - h.Lq;
  h.nqb = static_cast<int>(in.boolean() ? (h.Lq + 63) / 64 : in.range(0, 8));
  h.max_tiles = static_cast<int>(in.range(0, 8));
  h.max_cols = static_cast<int>(in.range(0, 4));
  h.causal = in.boolean();
  if (in.raw<std::uint8_t>() % 8 == 0) {
    h.sink_tokens = static_cast<int>(in.range(0, 80));
    h.window_tokens = static_cast<int>(in.range(0, 200));
  }
  auto fill = [&](std::vector<std::int32_t>& v, std::int64_t n, std::int64_t lo, std::int64_t hi) {
    if (in.raw<std::uint8_t>() % 16 == 0) n += in.range(-2, 2);  // wrong sizes too
    if (n < 0) n = 0;
    v.resize(static_cast<std::size_t>(n));
    std::int64_t prev = lo;
    for (auto& x : v) {
      // Mostly ascending multiples of 16 (plausible tiles), sometimes anything.
      prev += 16 * in.range(0, 6);
      x = static_cast<std::int32_t>(in.raw<std::uint8_t>() % 4 ? prev : in.range(lo, hi));
    }
  };
  const std::int64_t rows = static_cast<std::int64_t>(h.B) * h.Hi * h.nqb;
  fill(h.tile_count, rows, 0, h.max_tiles);
  for (auto& c : h.tile_count) c = static_cast<std::int32_t>(std::abs(c) % (h.max_tiles + 1));
  fill(h.tile_start, rows * h.max_tiles, -1, h.Lk);
  fill(h.col_count, rows, 0, h.max_cols);
  for (auto& c : h.col_count) c = static_cast<std::int32_t>(std::abs(c) % (h.max_cols + 1));
  fill(h.col_index, rows * h.max_cols, -1, h.Lk);
  return h;
}

}  // namespace

// A valid index (the dense one of a random shape), then at most one hostile change.
HostIndex mutated_dense(fuzz::Input& in) {
  const std::int64_t Lk = in.range(1, 400), Lq = in.boolean() ? Lk : in.range(1, Lk);
  HostIndex h = download_index(dense_index(ctx(), static_cast<int>(in.range(1, 2)),
                                           static_cast<int>(in.range(1, 3)), Lq, Lk, in.boolean()));
  std::vector<std::int32_t>* fields[] = {&h.tile_count, &h.tile_start, &h.col_count, &h.col_index};
  auto& f = *fields[in.raw<std::uint8_t>() % 4];
  if (!f.empty() && in.boolean())
    f[static_cast<std::size_t>(in.range(0, static_cast<std::int64_t>(f.size()) - 1))] =
        static_cast<std::int32_t>(in.range(-2, Lk + 64));
  return h;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const HostIndex h = in.boolean() ? mutated_dense(in) : random_index(in);
  bool valid = true;
  try {
    validate_index(h);
  } catch (const Error&) {
    valid = false;
  }
  try {
    const SparseIndex idx = upload_index(ctx(), h);
    if (!valid) std::abort();  // upload validates: it must refuse what validate_index refuses
    static const std::string path =
        (std::filesystem::temp_directory_path() / ("fuzz_idx_" + std::to_string(getpid())))
            .string();
    save_index(idx, path);
    (void)download_index(load_index(ctx(), path));
    std::filesystem::remove(path);
    for (int block : {64, 128}) {
      const Tensor mask = to_block_mask(ctx(), idx, block);
      validate_index(from_block_mask(ctx(), mask, block, h.Lq, h.Lk, h.causal));
    }
  } catch (const Error&) {
    // Refused by upload (invalid index) or by a converter (a shape it does not support): fine.
  }
  // A block mask of arbitrary bytes.
  try {
    const int block = in.boolean() ? 64 : 128;
    const std::int64_t Lq = in.range(1, 300), Lk = in.range(Lq, 400);
    const std::int64_t nq = (Lq + block - 1) / block, nk = (Lk + block - 1) / block;
    std::vector<std::uint8_t> m(static_cast<std::size_t>(nq * nk));
    for (auto& x : m) x = in.raw<std::uint8_t>() % 3;  // 2: not a boolean
    const Tensor mask = ctx().upload(m, DType::u8, {1, 1, nq, nk});
    validate_index(from_block_mask(ctx(), mask, block, Lq, Lk, in.boolean()));
  } catch (const Error&) {
  }
  return 0;
}
