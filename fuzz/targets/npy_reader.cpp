// Fuzz target: sparq-pattern's .npy parser (tools/pattern/npy.h). Arbitrary bytes, and a valid
// header with hostile shape/dtype text, must be rejected with std::runtime_error or parsed into an
// array whose size matches its shape: never a crash, a huge allocation or a read past the end.
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "fuzz_input.h"
#include "npy.h"

namespace {

void check(const std::string& bytes) {
  try {
    const auto a = sparq::pattern::parse_npy(bytes);
    std::size_t n = 1;
    for (auto d : a.shape) n *= static_cast<std::size_t>(d);
    if (a.shape.empty() || n != a.data.size()) std::abort();
  } catch (const std::runtime_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sparq::fuzz::Input in(data, size);
  const int mode = in.raw<std::uint8_t>() % 4;
  const auto rest = in.bytes(in.remaining());
  const std::string body(rest.begin(), rest.end());
  check(body);  // raw bytes
  // A well-formed prefix with the fuzz bytes as the header text or as the data.
  std::string header = mode == 0 ? body.substr(0, 200)
                                 : "{'descr': '" + std::string(mode == 1 ? "<f4" : "<f2") +
                                       "', 'fortran_order': False, 'shape': (" +
                                       body.substr(0, 24) + "), }";
  std::string file = "\x93NUMPY";
  file += static_cast<char>(1);
  file += static_cast<char>(0);
  file += static_cast<char>(header.size() & 0xff);
  file += static_cast<char>((header.size() >> 8) & 0xff);
  file += header;
  file += mode == 3 ? body : body.substr(body.size() / 2);
  check(file);
  return 0;
}
