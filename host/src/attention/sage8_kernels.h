// The Precision::int8 attention kernel program (kernels_cl/attention/sage8.cl) and its variants.
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::attention_detail {

// Two programs with the same arguments, launch shape and bits:
//  - kernels_cl/attention/sage8.cl: the portable integer path (any device);
//  - kernels_cl/attention/sage8_mma.cl: inline PTX mma.sync int8 with the softmax in registers
//    (NVIDIA sm_80+ only: device quirk inline_ptx and compute capability >= 8.0); with emulate,
//    mma.sync / shfl.sync are emulated in local memory so it builds and runs anywhere (tests of
//    the fragment indexing on PoCL).
struct Sage8KernelConfig {
  static constexpr const char* kernel = "sage8_attention";
  int head_dim = 128;
  bool mma = false;
  bool emulate = false;
  bool sparse = false;  // SAGE8_SPARSE: walk a SparseIndex (kernels_cl/attention/sage8_sparse.h)
  // MMA path speed knobs (no effect on any bit; SPARQ_TUNE_SAGE8 overrides them for sweeps). The
  // sparse mode keeps 64 rows (the index's query blocks) and stages its own tiles (no prefetch).
  bool prefetch = true;  // SAGE8_PREFETCH: next tile's K/V loads overlap this tile's math
  int rows = 128;  // SAGE8_ROWS: query rows per work-group (64 or 128; 128 measured faster, H100)
  // Same-bits arithmetic forms of the MMA kernel (sage8_mma.cl; sv_flag and delta_stage: dense):
  bool fast_div = true;     // SAGE8_FAST_DIV: P codes from one reciprocal per group (Markstein)
  bool fast_exp = true;     // SAGE8_FAST_EXP: sq_exp2_q_le0 (no branch, no float<->int conversion)
  bool sv_flag = true;      // SAGE8_SV_FLAG: P.V drops the sP == 0 test in tiles of finite V scales
  bool mma_bias = true;     // SAGE8_MMA_BIAS: MMAs start at bits(1.5 * 2^23) (int -> float in 1 op)
  bool delta_stage = true;  // SAGE8_DELTA_STAGE: the tile\'s delta slice staged in local memory
  bool fast_max = true;     // SAGE8_FAST_MAX: the row max by PTX max.NaN.f32 (NVIDIA path)
  int nv_max_regs = 0;      // NVIDIA: -cl-nv-maxrregcount (0 = the compiler's choice)
  bool nv_verbose = false;  // NVIDIA: -cl-nv-verbose (ptxas counts in the build log)
  // Host routing, not a kernel knob: dense calls with Lq <= 127 run sage8_decode.cl (the same
  // bits: both follow the 4096-key chunked order); decode=0 keeps them on this program (A/B).
  bool decode = true;
  int rows_per_group() const { return mma && !sparse ? rows : 64; }
  int work_group() const { return 2 * rows_per_group(); }
  const char* source() const { return mma ? "attention/sage8_mma.cl" : "attention/sage8.cl"; }
  // The emulated sparse variant (a test of the PTX kernel's indexing, never a fast path) builds
  // with -cl-opt-disable: PoCL's optimizer takes ~50 s on it (1 s without), and the arithmetic
  // is the same (explicit operation order, FP_CONTRACT OFF), so are the bits.
  std::string defines() const {
    std::string d = "-DHEAD_DIM=" + std::to_string(head_dim);
    if (sparse) d += " -DSAGE8_SPARSE=1";
    if (!mma) return d;
    d += std::string(" -DSAGE8_EMULATE=") + (emulate ? "1" : "0");
    if (!fast_div) d += " -DSAGE8_FAST_DIV=0";
    if (!fast_exp) d += " -DSAGE8_FAST_EXP=0";
    if (!sv_flag && !sparse) d += " -DSAGE8_SV_FLAG=0";
    if (!mma_bias) d += " -DSAGE8_MMA_BIAS=0";
    if (!fast_max) d += " -DSAGE8_FAST_MAX=0";
    if (!delta_stage && !sparse) d += " -DSAGE8_DELTA_STAGE=0";
    if (sparse) return d + (emulate ? " -cl-opt-disable" : "");
    d += std::string(" -DSAGE8_PREFETCH=") + (prefetch ? "1" : "0");
    if (rows != 64) d += " -DSAGE8_ROWS=" + std::to_string(rows);
    if (nv_max_regs > 0) d += " -cl-nv-maxrregcount=" + std::to_string(nv_max_regs);
    if (nv_verbose) d += " -cl-nv-verbose";
    return d;
  }
  // The index arguments of sparse mode follow this many dense ones.
  static constexpr unsigned dense_args = 20;
};

// SPARQ_TUNE_SAGE8="prefetch=0|1,rows=64|128,div=0|1,exp=0|1,svflag=0|1,bias=0|1,dstage=0|1,mx=0|1,
// regs=0..255,verbose=0|1,decode=0|1" (NVIDIA tuning sweeps; regs and verbose apply on NVIDIA only;
// decode on every executor, the fallback too).
void apply_sage8_tuning(Sage8KernelConfig& cfg, bool is_nvidia);

// SPARQ_TUNE_SAGE8's decode item (default 1): route dense int8 calls with Lq <= 127 to the decode
// kernel / fallback (sage8_decode.cl, fallback_cpu/attention/sage8_decode.cpp).
bool sage8_route_decode();

std::vector<rt::KernelVariant> sage8_kernel_variants();

}  // namespace sparq::attention_detail
