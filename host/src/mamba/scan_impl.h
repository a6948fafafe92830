// The one scan path behind selective_scan and selective_state_update.
#pragma once
#include "sparq/mamba.h"

namespace sparq::mamba::detail_mamba {

// Validates `a` and runs the scan. When `state_inout` is defined (selective_state_update) it is
// the last_state output; it may be the same tensor as a.h0 (each state is read before it is
// written, by the same work-item / the same fallback row).
// selective_scan_q: the inputs given as QuantizedRows (the matching SelectiveScanArgs tensors are
// then empty and ignored).
struct QSources {
  const QuantizedRows *u = nullptr, *delta = nullptr, *z = nullptr, *B = nullptr, *C = nullptr;
};

SelectiveScanResult scan_impl(Context& ctx, const SelectiveScanArgs& a, const char* op,
                              const Tensor& state_inout, const QSources& q = {});

}  // namespace sparq::mamba::detail_mamba
