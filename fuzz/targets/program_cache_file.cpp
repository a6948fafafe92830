// Fuzz target: the program-cache file reader (runtime/program_cache.h, cache_file_payload).
// Arbitrary bytes must be rejected or accepted without reading outside the buffer; a file made by
// make_cache_file must round-trip; any single changed byte or truncation of it must be rejected.
#include <cstdlib>

#include "fuzz_input.h"
#include "program_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sparq;
  fuzz::Input in(data, size);
  rt::CacheKey key{};
  for (auto& k : key) k = in.raw<std::uint8_t>();
  const std::uint8_t mode = in.raw<std::uint8_t>();
  const auto rest = in.bytes(in.remaining());

  // 1. The raw bytes as a file (with this key and with a zero key).
  (void)rt::cache_file_payload(rest, key);
  (void)rt::cache_file_payload(rest, rt::CacheKey{});

  // 2. A well-formed file around the bytes, then one hostile change.
  if (rest.empty()) return 0;
  const auto file = rt::make_cache_file(key, rest);
  const auto good = rt::cache_file_payload(file, key);
  if (!good || good->size() != rest.size() || !std::equal(good->begin(), good->end(), rest.begin()))
    std::abort();  // a valid file must round-trip
  auto bad = file;
  const std::size_t pos = (static_cast<std::size_t>(mode) * 2654435761u) % bad.size();
  switch (mode % 3) {
    case 0:
      bad[pos] ^= static_cast<std::uint8_t>(1u << (mode % 8));
      break;
    case 1:
      bad.resize(pos);
      break;
    default:
      bad.push_back(mode);
      break;
  }
  if (rt::cache_file_payload(bad, key)) std::abort();  // must be rejected
  return 0;
}
