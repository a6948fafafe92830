// .npy parsing: magic "\x93NUMPY", version 1.x/2.x/3.x, a Python-dict header with 'descr',
// 'fortran_order' and 'shape'; data follows. Only '<f4' and '<f2' are accepted.
#include "npy.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "common/convert.h"

namespace sparq::pattern {

namespace {

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw std::runtime_error(what + ": not a supported .npy file: " + why);
}

std::string field(const std::string& header, const std::string& key, const std::string& what) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) bad(what, "header has no '" + key + "'");
  const auto colon = header.find(':', k);
  if (colon == std::string::npos) bad(what, "header field '" + key + "' has no value");
  return header.substr(colon + 1);
}

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) bad(what, "bad magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, pos = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    pos = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(what, "truncated header length");
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    pos = 12;
  } else {
    bad(what, "unknown version " + std::to_string(major));
  }
  if (header_len > bytes.size() - pos) bad(what, "header longer than the file");
  const std::string header = bytes.substr(pos, header_len);
  pos += header_len;

  const std::string descr = field(header, "descr", what);
  int elem = 0;
  if (descr.find("'<f4'") != std::string::npos)
    elem = 4;
  else if (descr.find("'<f2'") != std::string::npos)
    elem = 2;
  else
    bad(what, "dtype must be float32 ('<f4') or float16 ('<f2')");
  const std::string fortran = field(header, "fortran_order", what);
  if (fortran.find("False") == std::string::npos || fortran.find("False") > fortran.find(','))
    bad(what, "fortran_order arrays are not supported");

  const std::string sh = field(header, "shape", what);
  const auto open = sh.find('('), close = sh.find(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    bad(what, "malformed shape");
  NpyArray a;
  std::int64_t count = 1;
  std::size_t i = open + 1;
  while (i < close) {
    while (i < close && (sh[i] == ' ' || sh[i] == ',')) ++i;
    if (i >= close) break;
    std::int64_t v = 0;
    if (sh[i] < '0' || sh[i] > '9') bad(what, "malformed shape");
    while (i < close && sh[i] >= '0' && sh[i] <= '9') {
      v = v * 10 + (sh[i] - '0');
      if (v > (std::int64_t{1} << 40)) bad(what, "dimension too large");
      ++i;
    }
    a.shape.push_back(v);
    if (v != 0 && count > (std::int64_t{1} << 40) / v) bad(what, "too many elements");
    count *= v;
  }
  if (a.shape.empty()) bad(what, "scalar arrays are not supported");
  const std::size_t need = static_cast<std::size_t>(count) * static_cast<std::size_t>(elem);
  if (bytes.size() - pos < need) bad(what, "data shorter than the shape says");
  a.data.resize(static_cast<std::size_t>(count));
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + pos);
  for (std::size_t e = 0; e < a.data.size(); ++e) {
    if (elem == 4) {
      std::uint32_t u = 0;
      for (int b = 0; b < 4; ++b) u |= static_cast<std::uint32_t>(p[4 * e + b]) << (8 * b);
      a.data[e] = cl_common::sq_as_float(u);
    } else {
      const auto h = static_cast<std::uint16_t>(p[2 * e] | (p[2 * e + 1] << 8));
      a.data[e] = cl_common::sq_f16_to_f32(h);
    }
  }
  return a;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_npy(bytes, path);
}

}  // namespace sparq::pattern
