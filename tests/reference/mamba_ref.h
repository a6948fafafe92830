// Float64 reference of the Mamba-1 selective scan, written from the formulas of
// specs/mamba_scan.md §1 (mamba_ssm's selective_scan_ref): plain loops, double exp/log1p.
#pragma once
#include <cstdint>
#include <vector>

namespace sparq::test::ref {

// Host inputs (already widened to fp32 values). Empty vectors are absent inputs. B/C variable:
// [Bt, G, N, L]; constant: [D, N]. cu: sequence starts (empty = one sequence per batch row).
struct ScanInput {
  std::int64_t batch = 1, D = 1, L = 1, N = 1, G = 1;
  bool B_var = true, C_var = true, softplus = false;
  std::vector<float> u, delta, A, B, C, Dskip, z, bias, h0;
  std::vector<std::int32_t> cu;
};

struct ScanOutput {
  std::vector<double> out;        // [Bt, D, L]
  std::vector<double> last;       // [states, D, N]
  std::vector<double> abs_terms;  // [Bt, D, L]: sum_n |C_n h_n| (the tolerance's scale)
  std::vector<double> abs_last;   // [states, D, N]: the recurrence run on absolute values
};

ScanOutput selective_scan_ref(const ScanInput& in);

// Causal depthwise conv1d (causal-conv1d's causal_conv1d_ref) in double. x [Bt, D, L], w [D, W],
// bias [D] or empty, init [states, D, W-1] or empty (then no term before a sequence start).
// abs_terms: |bias| + sum_k |w x| per output (the tolerance's scale), before the activation.
struct ConvOutput {
  std::vector<double> out, abs_terms;
};
ConvOutput causal_conv1d_ref(const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>& bias, const std::vector<float>& init,
                             const std::vector<std::int32_t>& cu, std::int64_t batch,
                             std::int64_t D, std::int64_t L, std::int64_t W, bool silu);

}  // namespace sparq::test::ref
