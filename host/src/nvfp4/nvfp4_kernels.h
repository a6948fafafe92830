// The NVFP4 kernel programs and their -D variants, in one place (STYLE: CLBlast's compile.cpp).
// defines() is the exact macro string the op passes (program-cache key, build-every-variant list).
#pragma once
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::nvfp4_detail {

// kernels_cl/nvfp4/fp4_quant.cl (no macros): one work-item per 16-group.
struct Fp4QuantKernelConfig {
  static constexpr const char* source = "nvfp4/fp4_quant.cl";
  static constexpr const char* rows_kernel = "fp4_quantize_rows";
  static constexpr const char* tokens_kernel = "fp4_quantize_tokens";
  static constexpr int work_group = 64;
  static std::string defines() { return ""; }
};

// How fp4_attention.cl computes its exact integer group dots. All three give the same bits.
enum class Fp4DotPath : int {
  portable = 0,  // plain int loops (PoCL, any GPU)
  mma = 1,       // NVIDIA inline PTX mma.sync m16n8k16 s8 (needs DeviceQuirks::inline_ptx, sm_80+)
  emulated = 2,  // the mma path's fragment code with the MMA emulated through local memory:
                 // lets PoCL check the PTX path's indexing (tests only)
};

// Speed forms of fp4_attention.cl (FP4_FORMS bits; SPARQ_TUNE_FP4 items exp, div, pcode, bias,
// sflag, fold, ld32, lut; docs/fp4_attention.md). Every choice gives the same bits. On by
// default: the forms that PoCL runs as the same code (sflag, fold, ld32: in the emulated-MMA
// path); bias changes
// the inline-PTX MMA's accumulator input, which only the GPU runs, so it stays off until measured.
enum Fp4Form : int {
  kFp4FormExp = 1,
  kFp4FormDiv = 2,
  kFp4FormPcode = 4,
  kFp4FormBias = 8,
  kFp4FormSflag = 16,
  kFp4FormFold = 32,
  kFp4FormLd32 = 64,
  kFp4FormLut = 128,
};
inline constexpr int kFp4DefaultForms = kFp4FormExp | kFp4FormDiv | kFp4FormPcode | kFp4FormSflag |
                                        kFp4FormFold | kFp4FormLd32 | kFp4FormLut;

// kernels_cl/nvfp4/fp4_attention.cl: 64 query rows of one (b, h) per 256-item work-group.
// sparse: kernel fp4_attention_sparse (FP4_SPARSE 1), the steps of a SparseIndex row.
struct Fp4AttentionKernelConfig {
  static constexpr const char* source = "nvfp4/fp4_attention.cl";
  static constexpr int rows_per_group = 64;
  static constexpr int work_group = 256;
  int head_dim = 128;
  Fp4DotPath path = Fp4DotPath::portable;
  bool sparse = false;
  int forms = kFp4DefaultForms;
  const char* kernel() const { return sparse ? "fp4_attention_sparse" : "fp4_attention"; }
  std::string defines() const {
    return "-DHEAD_DIM=" + std::to_string(head_dim) +
           " -DFP4_MMA=" + std::to_string(static_cast<int>(path)) +
           (sparse ? " -DFP4_SPARSE=1" : "") + " -DFP4_FORMS=" + std::to_string(forms);
  }
};

// Every variant (the mma ones are marked needs_inline_ptx: NVIDIA only).
std::vector<rt::KernelVariant> nvfp4_kernel_variants();

}  // namespace sparq::nvfp4_detail
