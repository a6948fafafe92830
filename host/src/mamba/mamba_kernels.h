// The Mamba kernel programs and their -D variants, in one place. Each config's defines() is the
// exact macro string the op passes (program-cache key, build-every-variant list). Dtypes and
// optional inputs are run-time arguments, so each program has one variant.
#pragma once
#include <cstdlib>
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::mamba::detail_mamba {

// The scan's schedule knobs (kernels_cl/mamba/scan_sched.h, docs/mamba.md "Scan schedules"); none
// changes a bit. SPARQ_TUNE_SCAN (a comma list, for sparq-bench sweeps on a GPU) overrides them:
// stage=0|1 (stage B/C tiles in local memory), small=0|1 (the N <= 16 program), exp=0|1
// (sq_scan_exp for the decay, softplus and silu), per=0|1 (compile-time states per lane),
// unroll=0|1|2|4|8|16 (0: the plain step loop; U: varlen checks per segment, U steps written out
// per iteration of a full tile's loop),
// vec=0|1 (float2 dt/du, float4 B/H/C, 4 steps per output lane), wg=64|128|256 (both programs),
// tile=8|16|32|64 and dbmax=4|8|16|32 (N <= 16 program only), regs=0..255 and verbose=0|1
// (NVIDIA's -cl-nv-maxrregcount / -cl-nv-verbose; ignored elsewhere).
struct ScanTuning {
  bool stage = true, small = true, fexp = false, per = false, vec = false, nv_verbose = false;
  int unroll = 0, wg = 128, tile = 16, db_max = 32, nv_regs = 0;
  // GPUs start from gpu_default(N <= 16); other devices from the plain schedule. Then
  // SPARQ_TUNE_SCAN. Throws sparq::Error (invalid_argument, naming `op`) on an unknown item or
  // value.
  static ScanTuning from_env(const char* op, bool is_nvidia, bool is_gpu = false,
                             bool small_n = true);
  // The H100 sweep's best per program (bench/RESULTS.md, session 7). N <= 16:
  // exp=1,per=1,unroll=4,vec=1,tile=32,dbmax=8, 1.98x the plain schedule at B8 D2048 N16 L4096
  // f32 (6.79 -> 3.43 ms), 1.76x at B8 D1536 bf16. N > 16: exp=1,per=1, 1.21x at N64 (3.76 ->
  // 3.12 ms; the N <= 16 choice gave 3.40 there).
  static ScanTuning gpu_default(bool small_n = true) {
    ScanTuning t;
    t.fexp = t.per = true;
    if (!small_n) return t;
    t.vec = true;
    t.unroll = 4;
    t.tile = 32;
    t.db_max = 8;
    return t;
  }
};

// kernels_cl/mamba/selective_scan.cl. WG lanes per work-group, T time steps per tile, at most
// DB_MAX channels per work-group (the N <= 16 program takes T and DB_MAX from the knobs, the
// general one keeps 16 and 32). Geometry only: no value depends on these.
struct ScanKernelConfig {
  static constexpr const char* source = "mamba/selective_scan.cl";
  static constexpr const char* kernel = "mamba_selective_scan";
  static constexpr int wg = 128, tile = 16, db_max = 32;
  static bool use_small(std::int64_t n, const ScanTuning& t = {}) { return n <= 16 && t.small; }
  static int tile_of(bool small, const ScanTuning& t) { return small ? t.tile : tile; }
  static int db_max_of(bool small, const ScanTuning& t) { return small ? t.db_max : db_max; }
  // quantized: the selective_scan_q variant (-DSQ_SCAN_Q: inputs may be quantized rows).
  // small: the program for N <= 16, its local tiles sized for that (-DSQ_SCAN_NCAP=16).
  // Default knobs give the default programs' strings (program cache, build-every-variant list).
  static std::string defines(bool quantized = false, bool small = false, const ScanTuning& t = {}) {
    std::string d = "-DSQ_SCAN_WG=" + std::to_string(t.wg) +
                    " -DSQ_SCAN_T=" + std::to_string(tile_of(small, t)) +
                    " -DSQ_SCAN_DB_MAX=" + std::to_string(db_max_of(small, t)) +
                    (quantized ? " -DSQ_SCAN_Q=1" : "") + (t.stage ? "" : " -DSQ_SCAN_STAGE=0") +
                    (small ? " -DSQ_SCAN_NCAP=16" : "");
    if (t.fexp) d += " -DSQ_SCAN_FEXP=1";
    if (t.per) d += " -DSQ_SCAN_PER=" + std::to_string(per_bound(small, t));
    if (t.unroll > 0) d += " -DSQ_SCAN_UNROLL=" + std::to_string(t.unroll);
    if (t.vec) d += " -DSQ_SCAN_VEC=1";
    if (t.nv_regs > 0) d += " -cl-nv-maxrregcount=" + std::to_string(t.nv_regs);
    if (t.nv_verbose) d += " -cl-nv-verbose";
    return d;
  }
  // States per lane at most: 1 while N <= WG (DB = WG / N channels of WG / DB >= N lanes), else
  // ceil(N / WG) (DB = 1).
  static int per_bound(bool small, const ScanTuning& t) {
    const int ncap = small ? 16 : 256;
    return ncap <= t.wg ? 1 : (ncap + t.wg - 1) / t.wg;
  }
  // Channels per work-group for state size N: DB * N <= max(wg, N) <= 256 (the local H tile),
  // and each lane owns at most per_bound states.
  static int channels_per_group(std::int64_t n, const ScanTuning& t = {}) {
    const std::int64_t cap = db_max_of(use_small(n, t), t);
    const std::int64_t db = t.wg / n;
    return static_cast<int>(db < 1 ? 1 : (db > cap ? cap : db));
  }
  // Bytes of the kernel's __local arrays (selective_scan.cl's declarations).
  static std::size_t local_bytes(bool small, const ScanTuning& t) {
    const std::size_t T = tile_of(small, t), dbm = db_max_of(small, t), pad = t.vec ? 4 : 1;
    const std::size_t ncap = small ? 16 : 256, hcap = ncap > std::size_t(t.wg) ? ncap : t.wg;
    const std::size_t nstage = t.stage ? (ncap < 64 ? ncap : 64) : 0;
    return 4 * (3 * dbm * T + T * hcap + pad * hcap + 2 * nstage * (T + pad));
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
