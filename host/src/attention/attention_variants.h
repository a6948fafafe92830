// Kernel variants of the attention ops (for warm-up and the build-every-variant test).
#pragma once
#include <vector>

#include "kernel_variants.h"

namespace sparq::attention_detail {
std::vector<rt::KernelVariant> attention_kernel_variants();
}
