// The Mamba kernel programs and their -D variants, in one place. Each config's defines() is the
// exact macro string the op passes (program-cache key, build-every-variant list). Dtypes and
// optional inputs are run-time arguments, so each program has one variant.
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::mamba::detail_mamba {

// kernels_cl/mamba/selective_scan.cl. WG lanes per work-group, T time steps per tile, at most
// DB_MAX channels per work-group. Geometry only: no value depends on these.
struct ScanKernelConfig {
  static constexpr const char* source = "mamba/selective_scan.cl";
  static constexpr const char* kernel = "mamba_selective_scan";
  static constexpr int wg = 128, tile = 16, db_max = 32;
  static std::string defines() {
    return "-DSQ_SCAN_WG=" + std::to_string(wg) + " -DSQ_SCAN_T=" + std::to_string(tile) +
           " -DSQ_SCAN_DB_MAX=" + std::to_string(db_max);
  }
  // Channels per work-group for state size N: DB * N <= max(wg, N) <= 256 (the local H tile),
  // and each lane owns at most ceil(N / (wg / DB)) <= 2 states.
  static int channels_per_group(std::int64_t n) {
    const std::int64_t db = wg / n;
    return static_cast<int>(db < 1 ? 1 : (db > db_max ? db_max : db));
  }
};

// kernels_cl/mamba/causal_conv1d.cl: forward outputs and state rows (no macros).
struct ConvKernelConfig {
  static constexpr const char* source = "mamba/causal_conv1d.cl";
  static constexpr const char* fwd_kernel = "mamba_conv1d_fwd";
  static constexpr const char* state_kernel = "mamba_conv1d_state";
  static std::string defines() { return ""; }
};

// kernels_cl/mamba/outlier_quant.cl: quantize (one work-item per (batch row, refresh window))
// and dequantize (one per token row); no macros.
struct OutlierQuantKernelConfig {
  static constexpr const char* source = "mamba/outlier_quant.cl";
  static constexpr const char* quant_kernel = "mamba_outlier_quantize";
  static constexpr const char* dequant_kernel = "mamba_dequantize";
  static std::string defines() { return ""; }
};

std::vector<rt::KernelVariant> mamba_kernel_variants();

}  // namespace sparq::mamba::detail_mamba
