// Kernel source loading and #include resolution (see kernel_sources.h).
// Includes are looked up relative to the including file's directory first, then relative to the
// kernels_cl/ root, as the C++ fallback's compiler does with -I kernels_cl, so one spelling works
// on both sides. Each file is inlined once (the first time); later includes of it, and include
// cycles, become comments. #line directives keep build-log positions pointing at the real files.
#include "kernel_sources.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "errors.h"

namespace sparq::rt {
namespace {

namespace fs = std::filesystem;

const char* kernel_dir_override() {
  const char* dir = std::getenv("SPARQ_KERNEL_DIR");
  return (dir && *dir) ? dir : nullptr;
}

std::optional<std::string> read_kernel_file(const std::string& path) {
  if (const char* dir = kernel_dir_override()) {
    std::ifstream in(fs::path(dir) / path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  for (const auto& f : embedded_kernel_files())
    if (path == f.path) return std::string(f.text);
  return std::nullopt;
}

std::string where_looked() {
  if (const char* dir = kernel_dir_override()) return fmt::format("SPARQ_KERNEL_DIR={}", dir);
  return "the kernel sources embedded in libsparq";
}

class Resolver {
 public:
  std::string run(const std::string& path) {
    auto text = read_kernel_file(path);
    if (!text)
      fail(ErrorCode::build_failed, "kernel sources", "'{}' not found in {}", path, where_looked());
    std::string out;
    inline_file(path, *text, out);
    return out;
  }

 private:
  std::set<std::string> seen_;

  void inline_file(const std::string& path, const std::string& text, std::string& out) {
    seen_.insert(path);
    static const std::regex include_re(R"(^\s*#\s*include\s*"([^"]+)\".*$)");
    static const std::regex once_re(R"(^\s*#\s*pragma\s+once\b.*$)");
    std::istringstream lines(text);
    std::string line;
    int line_no = 0;
    out += fmt::format("#line 1 \"{}\"\n", path);
    while (std::getline(lines, line)) {
      ++line_no;
      std::smatch m;
      if (std::regex_match(line, once_re)) {
        out += "\n";  // inlining once makes the pragma redundant; clang warns on it in main files
        continue;
      }
      if (!std::regex_match(line, m, include_re)) {
        out += line;
        out += '\n';
        continue;
      }
      const std::string target = find_include(path, m[1].str(), line_no);
      if (seen_.count(target)) {
        out += fmt::format("// (already included: {})\n", target);
        continue;
      }
      inline_file(target, *read_kernel_file(target), out);
      out += fmt::format("#line {} \"{}\"\n", line_no + 1, path);
    }
  }

  // Relative to the including file first, then to the kernels_cl/ root.
  std::string find_include(const std::string& from, const std::string& name, int line_no) {
    const std::string sibling =
        (fs::path(from).parent_path() / name).lexically_normal().generic_string();
    if (read_kernel_file(sibling)) return sibling;
    const std::string rooted = fs::path(name).lexically_normal().generic_string();
    if (read_kernel_file(rooted)) return rooted;
    fail(ErrorCode::build_failed, "kernel sources",
         "#include \"{}\" in {} line {} not found (tried '{}' and '{}') in {}", name, from, line_no,
         sibling, rooted, where_looked());
  }
};

}  // namespace

std::string resolve_kernel_source(const std::string& path) {
  return Resolver().run(path);
}

std::vector<std::string> embedded_kernel_programs() {
  std::vector<std::string> out;
  for (const auto& f : embedded_kernel_files()) {
    std::string p = f.path;
    if (p.size() > 3 && p.compare(p.size() - 3, 3, ".cl") == 0) out.push_back(p);
  }
  return out;
}

}  // namespace sparq::rt
