// The CPU executors of the Mamba ops: bit-exact twins of kernels_cl/mamba/*.cl, running the same
// shared arithmetic headers (mamba/scan_math.h, common/exact_math.h) in the same defined order.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/convert.h"
#include "fallback_cpu/common/parallel_chunks.h"

namespace sparq::fallback::mamba {

// A float tensor as the executors read it: base bytes, dtype code (0 f32, 1 f16, 2 bf16), and
// element strides of the outer dimensions (the innermost is contiguous).
struct View {
  const std::byte* p = nullptr;
  int dtype = 0;
  std::int64_t s0 = 0, s1 = 0, s2 = 0;
  float at(std::int64_t i) const {
    if (dtype == 0) {
      float v;
      std::memcpy(&v, p + i * 4, 4);
      return v;
    }
    std::uint16_t h;
    std::memcpy(&h, p + i * 2, 2);
    return dtype == 1 ? cl_common::sq_f16_to_f32(h) : cl_common::sq_bf16_to_f32(h);
  }
  explicit operator bool() const { return p != nullptr; }
};

inline void store_any(std::byte* base, std::int64_t i, int dtype, float v) {
  if (dtype == 0) {
    std::memcpy(base + i * 4, &v, 4);
    return;
  }
  const std::uint16_t h =
      dtype == 1 ? cl_common::sq_f32_to_f16_rne(v) : cl_common::sq_f32_to_bf16_rne(v);
  std::memcpy(base + i * 2, &h, 2);
}

// A quantized input of selective_scan_q: token rows [Bt, L, C] as in sparq::mamba::QuantizedRows;
// at(row, j) is element j of a row, dequantized per spec §5.5 (mamba/outlier_quant_math.h).
struct QSrc {
  const std::uint8_t* codes = nullptr;
  const float* scales = nullptr;
  const std::int32_t* counts = nullptr;
  const std::int32_t* idx = nullptr;
  const float* val_f = nullptr;
  const std::uint16_t* val_h = nullptr;
  const std::uint8_t* val_b = nullptr;
  const float* oscale = nullptr;
  int bits8 = 0, fmt = 0, K = 0, C = 0;
  float at(std::int64_t row, std::int64_t j) const;
};

// selective_scan.cpp (kernels_cl/mamba/selective_scan.cl). Views u, delta, z, out: strides
// (s0 = batch, s1 = channel); B/C variable: (batch, group, n), constant: (row = N).
struct ScanProblem {
  std::byte* out = nullptr;
  int out_dtype = 0;
  std::int64_t out_sb = 0, out_sd = 0;
  View u, delta, z, A, Bm, Cm, Dskip, bias;
  bool B_var = false, C_var = false, softplus = false;
  const float* h0 = nullptr;  // [states, D, N]
  float* last = nullptr;      // [states, D, N]
  const std::int32_t* cu = nullptr;
  int nseq = 0;  // 0: one sequence per batch row
  std::int64_t batch = 0, D = 0, L = 0, N = 0, dpg = 1;
  // selective_scan_q: a quantized input replaces its view (B/C quantized are variable).
  const QSrc *qu = nullptr, *qdelta = nullptr, *qz = nullptr, *qB = nullptr, *qC = nullptr;
};
void selective_scan(const ScanProblem& p);

// ssd_scan.cpp (kernels_cl/mamba/ssd_scan.cl). Views x, z: strides (s0 = batch, s1 = time,
// s2 = head), p contiguous; dt: (batch, time), h contiguous; B/C: (batch, time, group), n
// contiguous. out contiguous [Bt, L, H, P]. D_mode 0 none, 1 [H], 2 [H, P].
struct SsdProblem {
  std::byte* out = nullptr;
  int out_dtype = 0;
  View x, dt, z, A, Bm, Cm, Dskip, bias;
  int D_mode = 0;
  bool softplus = false;
  const float* h0 = nullptr;  // [states, H, P, N]
  float* last = nullptr;
  const std::int32_t* cu = nullptr;
  int nseq = 0;
  std::int64_t batch = 0, L = 0, H = 0, P = 0, N = 0, hpg = 1;
};
void ssd_scan(const SsdProblem& p);

// hadamard.cpp (kernels_cl/mamba/hadamard.cl): rows [rows, C], C = 2^m, contiguous. mode 0
// writes out; mode 1 writes codes (int8 C bytes / int4 ceil(C/2) bytes per row), scales, counts.
struct HadamardProblem {
  const float* x = nullptr;
  float* out = nullptr;
  std::uint8_t* codes = nullptr;
  float* scales = nullptr;
  std::int32_t* counts = nullptr;
  std::int64_t rows = 0;
  int C = 1, m = 0, mode = 0;
  bool bits8 = true;
  float c = 1.0f;
};
void hadamard(const HadamardProblem& p);

// quant_linear.cpp (kernels_cl/mamba/quant_linear.cl): x codes [R, K], w codes [O, K] (int8 or
// packed int4 rows), scales sx [R], sw [O], bias [O] or null; out [R, O] contiguous.
struct QuantLinearProblem {
  const std::uint8_t *xc = nullptr, *wc = nullptr;
  const float *sx = nullptr, *sw = nullptr, *bias = nullptr;
  float* out = nullptr;
  bool x8 = true, w8 = true;
  std::int64_t R = 0, O = 0, K = 0;
};
void quant_linear(const QuantLinearProblem& p);

// causal_conv1d.cpp (kernels_cl/mamba/causal_conv1d.cl). x and init: strides (s0 = batch or
// state, s1 = channel). Output out is contiguous [Bt, D, L].
struct ConvProblem {
  std::byte* out = nullptr;
  int out_dtype = 0;
  View x, w, bias, init;
  const std::int32_t* cu = nullptr;
  int nseq = 0;
  bool silu = false;
  std::int64_t batch = 0, D = 0, L = 0, W = 0;
};
void causal_conv1d(const ConvProblem& p);

// State rows: dst[r, j] = element S_src + len - S_out + j of (src row ++ the row's x), +0
// before element 0; raw copies, dst may be src. Strides (s0 = state, s1 = channel).
struct ConvStateProblem {
  std::byte* dst = nullptr;
  std::int64_t dst_s0 = 0, dst_s1 = 0, S_out = 0;
  View src, x;  // src.p may be null (S_src = 0); one dtype for all three
  std::int64_t S_src = 0;
  const std::int32_t* cu = nullptr;
  int nseq = 0;
  std::int64_t states = 0, D = 0, L = 0;
};
void conv1d_states(const ConvStateProblem& p);

// outlier_quant.cpp (kernels_cl/mamba/outlier_quant.cl). x contiguous fp32 [batch, L, C];
// outputs contiguous as in sparq::mamba::QuantizedRows; val_f / val_h / val_b: the one of the
// outlier format (fmt 0 f32, 1 f16, 2 int8), oscale only for int8.
struct OutlierQuantProblem {
  const float* x = nullptr;
  const float* static_scales = nullptr;  // [L] when static
  std::uint8_t* codes = nullptr;
  float* scales = nullptr;
  std::int32_t* counts = nullptr;
  std::int32_t* idx = nullptr;
  float* val_f = nullptr;
  std::uint16_t* val_h = nullptr;
  std::uint8_t* val_b = nullptr;
  float* oscale = nullptr;
  std::int64_t batch = 0, L = 0;
  int C = 0, window = 1, K = 0, fmt = 0;
  bool bits8 = false, static_scale = false;
  float k_sigma = 3.0f;
};
void outlier_quantize(const OutlierQuantProblem& p);

// Dequantizes rows [rows, C] into out (contiguous), same fields as above.
struct DequantProblem {
  float* out = nullptr;
  const std::uint8_t* codes = nullptr;
  const float* scales = nullptr;
  const std::int32_t* counts = nullptr;
  const std::int32_t* idx = nullptr;
  const float* val_f = nullptr;
  const std::uint16_t* val_h = nullptr;
  const std::uint8_t* val_b = nullptr;
  const float* oscale = nullptr;
  std::int64_t rows = 0;
  int C = 0, K = 0, fmt = 0;
  bool bits8 = false;
};
void dequantize(const DequantProblem& p);

using fallback::parallel_chunks;

}  // namespace sparq::fallback::mamba
