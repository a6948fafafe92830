// The CPU executors of Quest decode: bit-exact twins of kernels_cl/sparse/quest.cl, running the
// shared sparse/quest_math.h in the same defined order (stated at the top of quest.cl).
#pragma once
#include "host/src/sparse/quest_plan.h"

namespace sparq::fallback::quest {

void metadata(const quest_detail::MetadataPlan& plan);
void select(const quest_detail::SelectPlan& plan);
void decode(const quest_detail::DecodePlan& plan);

}  // namespace sparq::fallback::quest
