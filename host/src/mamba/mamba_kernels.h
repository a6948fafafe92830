// The Mamba kernel programs and their -D variants, in one place. Each config's defines() is the
// exact macro string the op passes (program-cache key, build-every-variant list). Dtypes and
// optional inputs are run-time arguments, so each program has one variant.
#pragma once
#include <cstdlib>
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
  // SPARQ_TUNE_SCAN (a comma list, for sparq-bench comparisons on a GPU) holds `item`:
  // "stage=0" builds the variant that reads B/C from global memory instead of staging the tile's
  // rows in local memory; "small=0" uses the general program for N <= 16 too.
  static bool tune_off(const char* item) {
    const char* env = std::getenv("SPARQ_TUNE_SCAN");
    return env != nullptr && std::string(env).find(item) != std::string::npos;
  }
  static bool use_small(std::int64_t n) { return n <= 16 && !tune_off("small=0"); }
  // quantized: the selective_scan_q variant (-DSQ_SCAN_Q: inputs may be quantized rows).
  // small: the program for N <= 16, its local tiles sized for that (-DSQ_SCAN_NCAP=16).
  static std::string defines(bool quantized = false, bool small = false) {
    return "-DSQ_SCAN_WG=" + std::to_string(wg) + " -DSQ_SCAN_T=" + std::to_string(tile) +
           " -DSQ_SCAN_DB_MAX=" + std::to_string(db_max) + (quantized ? " -DSQ_SCAN_Q=1" : "") +
           (tune_off("stage=0") ? " -DSQ_SCAN_STAGE=0" : "") + (small ? " -DSQ_SCAN_NCAP=16" : "");
  }
  // Channels per work-group for state size N: DB * N <= max(wg, N) <= 256 (the local H tile),
  // and each lane owns at most ceil(N / (wg / DB)) <= 2 states.
  static int channels_per_group(std::int64_t n) {
    const std::int64_t db = wg / n;
    return static_cast<int>(db < 1 ? 1 : (db > db_max ? db_max : db));
  }
};

// kernels_cl/mamba/ssd_scan.cl. WG lanes, T time steps per chunk, at most PB_MAX head dims per
// work-group; each lane owns at most 4 states (kernel's SQ_SSD_PER). Geometry only.
struct SsdKernelConfig {
  static constexpr const char* source = "mamba/ssd_scan.cl";
  static constexpr const char* kernel = "mamba_ssd_scan";
  static constexpr int wg = 128, tile = 8, pb_max = 32, per = 4;
  static std::string defines() {
    return "-DSQ_SSD_WG=" + std::to_string(wg) + " -DSQ_SSD_T=" + std::to_string(tile) +
           " -DSQ_SSD_PB_MAX=" + std::to_string(pb_max);
  }
  // Head dims per work-group: the lanes per p (wg / PB) cover N with <= per states each.
  static int dims_per_group(std::int64_t n, std::int64_t p) {
    const std::int64_t nl = (n + per - 1) / per;
    std::int64_t pb = wg / nl;
    if (pb > pb_max) pb = pb_max;
    if (pb > p) pb = p;
    return static_cast<int>(pb < 1 ? 1 : pb);
  }
};

// kernels_cl/mamba/hadamard.cl: one work-group of 256 lanes (the canonical reduction's lanes) per
// row; rows of at most cmax values live in local memory.
struct HadamardKernelConfig {
  static constexpr const char* source = "mamba/hadamard.cl";
  static constexpr const char* kernel = "mamba_hadamard";
  static constexpr int wg = 256, cmax = 8192;
  static std::string defines() {
    return "-DSQ_HQ_WG=" + std::to_string(wg) + " -DSQ_HQ_CMAX=" + std::to_string(cmax);
  }
};

// kernels_cl/mamba/quant_linear.cl: code widening and the chunk combine around CLBlast's SGEMM.
// chunk_max: the K-chunk bound that keeps every fp32 partial sum an integer below 2^24
// (1024 * 127 * 127 = 16516096 < 16777216).
struct QuantLinearKernelConfig {
  static constexpr const char* source = "mamba/quant_linear.cl";
  static constexpr const char* unpack_kernel = "mamba_ql_unpack";
  static constexpr const char* combine_kernel = "mamba_ql_combine";
  static constexpr std::int64_t chunk_max = 1024, k_max = 131072;
  static std::string defines() { return ""; }
};

// kernels_cl/mamba/check_finite.cl: sparq::check_finite (no macros).
struct CheckFiniteKernelConfig {
  static constexpr const char* source = "mamba/check_finite.cl";
  static constexpr const char* kernel = "mamba_check_finite";
  static std::string defines() { return ""; }
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
