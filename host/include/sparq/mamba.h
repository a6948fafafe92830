// sparq::mamba — the Mamba family (specs/mamba_scan.md): the Mamba-1 selective scan (prefill,
// decode step, variable-length packed batches) and the causal depthwise conv1d that precedes it
// (prefill, decode update, varlen).
//
// Outputs are bit-identical on every device and on the fallback for the same inputs. The defined
// arithmetic order of each op is in docs/mamba.md (and at the top of each kernels_cl/mamba/*.cl).
//
// Storage: every float tensor may be fp32, fp16 or bf16 (widened exactly); the math and the
// recurrent state are fp32. Tensors need a contiguous innermost (time) dimension; the outer
// strides of u, delta, z, B, C and x are free (e.g. u and z as the two halves of one xz buffer).
#pragma once
#include <cstdint>
#include <variant>

#include "sparq/context.h"
#include "sparq/export.h"
#include "sparq/tensor.h"

namespace sparq::mamba {

// selective_scan_fn of state-spaces/mamba, with sparq extensions h0 and cu_seqlens.
// Shapes (Bt = batch, D = channels, L = time, N = state size, G = groups of B/C):
//   u, delta, z    [Bt, D, L]
//   A              [D, N]            fp32/fp16/bf16, usually negative
//   Bm, Cm         [D, N] (constant), [Bt, N, L] (G = 1) or [Bt, G, N, L]; channel d uses group
//                  d / (D / G). Bm and Cm choose their form independently.
//   Dskip, delta_bias [D]
//   h0             [Bt, D, N] (or [S, D, N] with cu_seqlens): initial state, empty = zeros
//   cu_seqlens     i32 [S + 1], optional: variable-length packing. Requires Bt = 1; sequence s
//                  is time [cu[s], cu[s+1]); the state restarts (h0[s] or zeros) at each start.
//                  cu[0] = 0, non-decreasing, cu[S] = L. Empty sequences are allowed.
struct SPARQ_API SelectiveScanArgs {
  Tensor u, delta, A, Bm, Cm;
  Tensor Dskip, z, delta_bias, h0, cu_seqlens;
  bool delta_softplus = false;     // softplus(x) with PyTorch's threshold 20
  bool return_last_state = false;  // last_state [Bt, D, N] (or [S, D, N]) in fp32
};

struct SPARQ_API SelectiveScanResult {
  Tensor out;         // [Bt, D, L] in u's dtype (RNE narrowing from the fp32 result)
  Tensor last_state;  // fp32, when return_last_state
};

SPARQ_API SelectiveScanResult selective_scan(Context& ctx, const SelectiveScanArgs& args);

// One decode token (selective_state_update of mamba_ssm): state fp32 [Bt, D, N] is read as h0 and
// overwritten with the new state; x, dt, z [Bt, D]; B, C [Bt, N] or [Bt, G, N] (or [D, N]
// constant); returns out [Bt, D] in x's dtype. Bit-identical to selective_scan with L = 1,
// h0 = state, so a loop of decode steps equals one scan over the same tokens.
struct SPARQ_API StateUpdateArgs {
  Tensor state, x, dt, A, Bm, Cm;
  Tensor Dskip, z, dt_bias;
  bool dt_softplus = false;
};
SPARQ_API Tensor selective_state_update(Context& ctx, const StateUpdateArgs& args);

// Mamba-2 SSD (mamba_chunk_scan_combined of mamba_ssm; state-space duality with a scalar A per
// head), with sparq's exact, sequential-in-time definition (docs/mamba.md): per (b, h) the state
// is a P x N matrix, h[p,n] = fma(exp(dt*A[h]), h[p,n], B[n] * (dt * x[p])),
// y[p] = (D * x[p] or +0) + sum_n h[p,n] C[n] (fma chain, n increasing), out = y * silu(z).
// Shapes (H heads of P dims, G groups of B/C, N states):
//   x, z          [Bt, L, H, P]        (z optional: out = y * silu(z))
//   dt            [Bt, L, H]           dt_bias [H]; dt_softplus as mamba_ssm
//   A             [H]
//   Bm, Cm        [Bt, L, G, N]        head h uses group h / (H / G); 1 <= N <= 256
//   Dskip         [H] or [H, P]
//   initial_states fp32 [Bt (or S), H, P, N]; cu_seqlens i32 [S + 1] with Bt = 1 as for
//   selective_scan. The innermost dimension of x, z, dt, B, C must be contiguous; outer strides
//   are free (slices of mamba_ssm's zxbcdt projection).
// out [Bt, L, H, P] in x's dtype; final_states fp32 [Bt (or S), H, P, N]. Bit-identical to
// selective_scan over channels d = h*P + p with A[d, n] = A[h], so ssd(L1 ++ L2) ==
// ssd(L2, initial = final(ssd(L1))) for every split and a loop of ssd_state_update equals one
// call.
struct SPARQ_API SsdArgs {
  Tensor x, dt, A, Bm, Cm;
  Tensor Dskip, z, dt_bias, initial_states, cu_seqlens;
  bool dt_softplus = false;
  bool return_final_states = false;
};
struct SPARQ_API SsdResult {
  Tensor out;           // [Bt, L, H, P] in x's dtype
  Tensor final_states;  // fp32, when return_final_states
};
SPARQ_API SsdResult ssd_scan(Context& ctx, const SsdArgs& args);

// One Mamba-2 decode token (selective_state_update of mamba_ssm with a scalar A per head):
// state fp32 [Bt, H, P, N] is read and overwritten; x, z [Bt, H, P]; dt [Bt, H]; B, C [Bt, G, N];
// returns out [Bt, H, P] in x's dtype. ssd_scan with L = 1 on views, so it cannot drift.
struct SPARQ_API SsdStateUpdateArgs {
  Tensor state, x, dt, A, Bm, Cm;
  Tensor Dskip, z, dt_bias;
  bool dt_softplus = false;
};
SPARQ_API Tensor ssd_state_update(Context& ctx, const SsdStateUpdateArgs& args);

// causal_conv1d_fn of Dao-AILab/causal-conv1d: depthwise causal convolution over time,
//   out[b,d,t] = act(bias[d] + sum_k weight[d,k] * x[b,d,t-(W-1)+k])
// x [Bt, D, L]; weight [D, W] (1 <= W <= 256); bias [D]; initial_states [Bt, D, W-1] (or
// [S, D, W-1] with cu_seqlens) in x's dtype: the W-1 inputs before t = 0 (absent: no term).
// cu_seqlens as for selective_scan (Bt = 1): windows never reach into the previous sequence.
// final_states [Bt (or S), D, W-1] in x's dtype: the last W-1 inputs of each sequence (padded
// from the initial state, or zeros, when a sequence is shorter) — exact copies.
struct SPARQ_API CausalConv1dArgs {
  Tensor x, weight;
  Tensor bias, initial_states, cu_seqlens;
  bool silu = false;
  bool return_final_states = false;
};
struct SPARQ_API CausalConv1dResult {
  Tensor out;  // [Bt, D, L] in x's dtype
  Tensor final_states;
};
SPARQ_API CausalConv1dResult causal_conv1d(Context& ctx, const CausalConv1dArgs& args);

// causal_conv1d_update: decode. x [Bt, D] or [Bt, D, Lq]; conv_state [Bt, D, S] (S >= W-1,
// contiguous, x's dtype) holds the latest inputs, oldest first: its last W-1 columns are the
// window's past. conv_state is then replaced by the last S columns of (conv_state ++ x). Returns
// out shaped like x. Bit-identical to causal_conv1d over the same tokens.
struct SPARQ_API ConvUpdateArgs {
  Tensor x, conv_state, weight;
  Tensor bias;
  bool silu = false;
};
SPARQ_API Tensor causal_conv1d_update(Context& ctx, const ConvUpdateArgs& args);

// OuroMamba-style dynamic outlier quantization of token rows x[b, l, :] (specs/mamba_scan.md §5):
// per row, channels with |x| > mean(|x|) + k_sigma * std(|x|) become outliers (at most
// max_outliers, kept in a side list; the set only grows inside a refresh window of `window` rows
// along L), the rest are quantized symmetrically to int4/int8 with one scale per row (dynamic
// max|inlier| / qmax, or the calibrated static_scales[l], which then also gates detection). A row
// holding NaN/inf gets scale NaN, codes 0 and no outliers, so it dequantizes to all NaN.
enum class InlierBits { Int4, Int8 };
enum class OutlierFormat { F32, F16, Int8 };
struct SPARQ_API OutlierQuantParams {
  InlierBits bits = InlierBits::Int4;
  OutlierFormat outlier_format = OutlierFormat::F32;
  float k_sigma = 3.0f;       // threshold = mean(|v|) + k_sigma * std(|v|), finite, >= 0
  int window = 1;             // rows per refresh window along L (OuroMamba uses 10), >= 1
  int max_outliers = 16;      // K, capacity per row, 0 <= K <= min(C, 256)
  bool static_scale = false;  // use static_scales[L] (calibrated) instead of dynamic scales
};
struct SPARQ_API QuantizedRows {  // for x of shape [B, L, C]
  Tensor codes;          // int4: u8 [B, L, ceil(C/2)] (even j low nibble); int8: i8 [B, L, C]
  Tensor scales;         // f32 [B, L] inlier scale per row
  Tensor outlier_count;  // i32 [B, L]
  Tensor outlier_idx;    // i32 [B, L, K] ascending channel index, padded with -1
  Tensor outlier_val;    // [B, L, K] f32 | f16 | i8, padded with 0
  Tensor outlier_scale;  // f32 [B, L], only for OutlierFormat::Int8, else empty
  OutlierQuantParams params;
  std::int64_t C = 0;
};
// x: contiguous fp32 [B, L, C]. static_scales: fp32 [L], finite and > 0, iff params.static_scale.
// F16 outlier values are a DType::f16 tensor (binary16 bits).
SPARQ_API QuantizedRows outlier_quantize(Context& ctx, const Tensor& x,
                                         const OutlierQuantParams& params,
                                         const Tensor& static_scales = {});
// fp32 [B, L, C]: (float)q_j * s, outlier slots overwritten by their value (§5.5).
SPARQ_API Tensor dequantize(Context& ctx, const QuantizedRows& q);

// MambaQuant-style rotation + quantization (docs/mamba.md, "Rotation + quantize"). Token rows
// x[b, l, :] of C = 2^m values (1 <= C <= 8192; other sizes raise sparq::Error) are rotated by the
// normalized fast Walsh-Hadamard transform y = c * H_m x, with butterflies in a fixed stage order
// (stage s = 0..m-1 maps (y_j, y_{j+2^s}) -> (y_j + y_{j+2^s}, y_j - y_{j+2^s}) for j mod 2^(s+1)
// < 2^s) and c = rn(2^(-m/2)).
// hadamard_transform returns y (fp32 [B, L, C]); hadamard_quantize quantizes y per token row,
// symmetric, scale s = max|y| / qmax (qmax 127 for Int8, 7 for Int4), q = sat_rne(y / s) — spec
// §5.4 steps 6-7 with no outliers — in one pass, returning QuantizedRows with max_outliers = 0
// (so `dequantize` gives the rotated values back). A row whose y holds NaN/inf gets scale NaN
// and codes 0, as in outlier_quantize. x: contiguous fp32 [B, L, C].
SPARQ_API Tensor hadamard_transform(Context& ctx, const Tensor& x);
SPARQ_API QuantizedRows hadamard_quantize(Context& ctx, const Tensor& x,
                                          InlierBits bits = InlierBits::Int8);

// W8A8 / W4A8 projection (MambaQuant's int8 GEMM with per-token x per-output-channel scales):
//   acc[r, o] = sum_k qx[r, k] * qw[o, k]           (exact integer)
//   out[r, o] = ((float)acc * sx[r]) * sw[o]  (+ bias[o])
// x: QuantizedRows of token rows [B, L, K] (int8 or int4 codes, max_outliers == 0: from
// hadamard_quantize, or outlier_quantize with max_outliers = 0); w: QuantizedRows [1, O, K], one
// row per output channel (outlier_quantize of the weight matrix as rows, max_outliers = 0): int8
// codes give W8A8, int4 codes W4A8. bias fp32 [O] optional. K <= 131072 (acc fits int32).
// Returns fp32 [B, L, O]. On a device the codes are widened to integer-valued fp32 and multiplied
// by CLBlast's SGEMM in K-chunks of at most 1024, so every partial sum is an integer below 2^24
// (exact in any summation order); the chunk results are summed in int32 and dequantized as above.
// The fallback computes the same integers directly, so both are bit-identical.
struct SPARQ_API QuantLinearArgs {
  QuantizedRows x, w;
  Tensor bias;
};
SPARQ_API Tensor quant_linear(Context& ctx, const QuantLinearArgs& args);

// The selective scan reading quantized inputs (spec §6): each of u, delta, z, Bm, Cm is either a
// plain tensor (as in SelectiveScanArgs) or QuantizedRows of token rows — u, delta, z rows
// [Bt, L, D]; Bm, Cm rows [Bt, L, G*N] with channel g*N + n (variable B/C). Each element is
// dequantized inside the scan (§5.5, the same function as `dequantize`) where the fp32 value
// would be read, so selective_scan_q(q) == selective_scan(dequantize(q) transposed to
// [Bt, D, L] / [Bt, G, N, L]) bit for bit; the quantized data is read once, never expanded in
// memory. The outlier lists must be strictly ascending (outlier_quantize's are). out is fp32
// when u is quantized, else in u's dtype. cu_seqlens, h0 and the flags as in SelectiveScanArgs.
using ScanInput = std::variant<Tensor, QuantizedRows>;
struct SPARQ_API SelectiveScanQArgs {
  ScanInput u, delta, z, Bm, Cm;  // z: an empty Tensor when absent
  Tensor A, Dskip, delta_bias, h0, cu_seqlens;
  bool delta_softplus = false;
  bool return_last_state = false;
};
SPARQ_API SelectiveScanResult selective_scan_q(Context& ctx, const SelectiveScanQArgs& args);

}  // namespace sparq::mamba
