// The Quest kernel program (kernels_cl/sparse/quest.cl): one variant, no macros (D, page size and
// modes are run-time arguments). Geometry constants must match the #defines of quest.cl.
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::quest_detail {

struct QuestKernelConfig {
  static constexpr const char* source = "sparse/quest.cl";
  static constexpr const char* metadata_kernel = "quest_metadata";
  static constexpr const char* bounds_kernel = "quest_bounds";
  static constexpr const char* select_kernel = "quest_select";
  static constexpr const char* decode_kernel = "quest_decode";
  static constexpr const char* merge_kernel = "quest_merge";
  static constexpr int bounds_work_group = 128;  // BND_NT
  static constexpr int bounds_pages = 32;        // BND_PAGES
  static constexpr int select_work_group = 256;  // SEL_NT
  static constexpr int decode_work_group = 128;  // NT
  static constexpr int rows = 8;                 // ROWS
  static constexpr int max_head_dim = 128;       // DMAX
  static constexpr int max_page_size = 128;      // PGMAX
  static std::string defines() { return ""; }
};

// kernels_cl/sparse/permute.cl: MMInference row gather / scatter (copies; no macros).
struct PermuteKernelConfig {
  static constexpr const char* source = "sparse/permute.cl";
  static constexpr const char* kernel = "permute_rows";
  static std::string defines() { return ""; }
};

std::vector<rt::KernelVariant> quest_kernel_variants();

}  // namespace sparq::quest_detail
