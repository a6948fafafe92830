// The CPU executor of MMInference's row permutation (twin of kernels_cl/sparse/permute.cl).
#pragma once
#include "host/src/sparse/permute_plan.h"

namespace sparq::fallback {
void permute_rows(const permute_detail::PermutePlan& plan);
}
