// Kernel sources: embedded at build time (cmake/EmbedKernels.cmake), or read from
// $SPARQ_KERNEL_DIR when set (developer override). #include "x.h" lines are resolved here,
// recursively, each file once, so the resolved text fully determines the program.
#pragma once
#include <string>
#include <vector>

namespace sparq::rt {

struct EmbeddedKernelFile {
  const char* path;  // relative to kernels_cl/, e.g. "attention/dense.cl"
  const char* text;
};
const std::vector<EmbeddedKernelFile>& embedded_kernel_files();

// Returns the source of `path` with includes inlined; throws sparq::Error(build_failed) naming the
// missing file and where it came from.
std::string resolve_kernel_source(const std::string& path);

// Every embedded .cl path (used by the build-every-variant test and sparq-info --warm).
std::vector<std::string> embedded_kernel_programs();

}  // namespace sparq::rt
