// The registry: every family's case list, concatenated once. A new family adds one line here.
#include <algorithm>

#include "cases/case.h"

namespace sparq::bench {

const char* size_class_name(SizeClass s) {
  return s == SizeClass::small ? "small" : "large";
}

const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> all;
    for (auto& family :
         {attention_cases(), diffusion_cases(), mamba_cases(), sage8_cases(), quest_cases(),
          sparse_cases(), sparse_builder_cases(), nvfp4_cases(), qdecode_cases()})
      all.insert(all.end(), family.begin(), family.end());
    // Small cases first, so a listing reads as "what CI runs", then "what a GPU runs".
    std::stable_partition(all.begin(), all.end(),
                          [](const Case& c) { return c.size == SizeClass::small; });
    return all;
  }();
  return cases;
}

}  // namespace sparq::bench
