// Every kernel program variant the Quest ops can build (warm-up, build-every-variant test).
#include "quest_kernels.h"

namespace sparq::quest_detail {

std::vector<rt::KernelVariant> quest_kernel_variants() {
  return {{QuestKernelConfig::source, QuestKernelConfig::defines()},
          {PermuteKernelConfig::source, PermuteKernelConfig::defines()}};
}

}  // namespace sparq::quest_detail
