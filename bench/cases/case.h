// The registry of op cases that sparq-bench times and checks (STYLE.md: "tests as a table").
//
// A case is one op at one shape: a printable name, the bytes it must move and the operations it
// must do (formulas from the specs, so GB/s and TFLOP/s mean the same on every device), and a
// `prepare` function that makes its inputs from a fixed seed on a Context. The prepared Instance
// runs the op, and validates its last result against the fallback executor bit for bit.
// sparq-bench iterates the registry; a GoogleTest suite can iterate the same list (e.g. every
// small case: prepare on PoCL, run once, EXPECT validate(fallback).exact).
//
// Each family adds one file of cases under bench/cases/ and one line in registry.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sparq/sparq.h"

namespace sparq::bench {

// small: seconds on PoCL with 2 cores (CI, laptops); large: the sizes a GPU is judged at.
enum class SizeClass { small, large };
const char* size_class_name(SizeClass s);

// The outcome of comparing a device result with the fallback's on the same inputs.
struct Validation {
  bool exact = false;
  std::string scope;   // "full", or which deterministic subset was compared (heads, rows, ...)
  std::string detail;  // "" when exact; otherwise the first mismatch
  std::size_t values_compared = 0;
};

class Instance {
 public:
  virtual ~Instance() = default;
  // Enqueues the op once on the Context the instance was prepared on (asynchronous).
  virtual void run() = 0;
  // Compares the result of the last run() with the fallback on the same inputs. Cases whose full
  // fallback run would take long compare a deterministic subset and name it in scope.
  virtual Validation validate(Context& fallback) = 0;
  // Host time per op call of the timed runs (median), for cases that measure it (host overhead:
  // the enqueue loop without waiting for the device); nullopt otherwise.
  virtual std::optional<double> host_us_per_call() const { return std::nullopt; }
};

// Shape of an attention problem as attention_anchor.py describes it, for --anchor matching.
struct AnchorKey {
  std::int64_t batch = 0, heads = 0, length = 0, head_dim = 0;
  bool causal = false;
};

// A row of a step-time anchor script (diffusion_anchor.py), matched by its "shape" and "step"
// fields; the ratio is anchor ms / sparq ms per step.
struct StepAnchorKey {
  std::string shape, step;  // "16x16x128x128", "ddim"
};

struct Case {
  std::string family;  // "attention", ...
  std::string op;      // "prefill", "decode_paged", "merge_states", ...
  std::string name;    // unique, printable, what --filter matches
  SizeClass size = SizeClass::small;
  std::uint64_t seed = 0;
  std::vector<std::pair<std::string, std::int64_t>> params;  // shape and options, for JSON
  double bytes_moved = 0;  // compulsory global-memory traffic of one call
  double flops = 0;        // operations of one call, as the spec counts them
  std::optional<AnchorKey> anchor;
  std::optional<StepAnchorKey> step_anchor;
  int steps_per_call = 1;  // a call runs this many steps (loop cases): per-step ms = ms / steps
  bool wall_time = false;  // time each call by host wall clock (launches included), not events
  std::function<std::unique_ptr<Instance>(Context&)> prepare;
};

// Every registered case, in a stable order (families in registry.cpp order).
const std::vector<Case>& all_cases();

// Family lists (one per bench/cases/<family>_cases.cpp).
std::vector<Case> attention_cases();
// Paged decode + merge_states (attention_decode_cases.cpp); attention_cases() includes them.
std::vector<Case> attention_decode_cases();
// Host overhead per call, one-shot vs sparq::Plan (attention_host_cases.cpp); included too.
std::vector<Case> attention_host_cases();
// Paged prefill, pairs of contiguous prefill cases (attention_paged_prefill_cases.cpp); included
// too.
std::vector<Case> attention_paged_prefill_cases();
std::vector<Case> diffusion_cases();
std::vector<Case> mamba_cases();
std::vector<Case> sage8_cases();  // Precision::int8 attention (sage8_cases.cpp)
// Quest decode + MMInference permutations (quest_cases.cpp).
std::vector<Case> quest_cases();
std::vector<Case> sparse_cases();
std::vector<Case> sparse_builder_cases();
std::vector<Case> nvfp4_cases();  // Precision::nvfp4 attention + quantizers (nvfp4_cases.cpp)
// Quantized decode of short query blocks over quantized KV (qdecode_cases.cpp).
std::vector<Case> qdecode_cases();

// ---- helpers shared by the case files ----

// Bitwise equality with sparq's NaN rule (any NaN equals any NaN; signed zeros must match).
bool same_bits(float a, float b);

// Accumulates comparisons of device vs fallback values into a Validation.
class BitComparer {
 public:
  // Compares got[i] with want[i]; `where` names the compared block in a mismatch message.
  void compare(const std::vector<float>& got, const std::vector<float>& want,
               const std::string& where);
  void compare(const float* got, const float* want, std::size_t n, const std::string& where);
  Validation result(std::string scope) const;

 private:
  std::size_t compared_ = 0, mismatches_ = 0;
  std::string first_;
};

// Deterministic inputs, about normal(0, scale): a sum of four uniforms from std::mt19937_64(seed),
// computed with exact operations only, so the same seed gives the same bits on every machine
// (std::normal_distribution's algorithm is implementation-defined). Past 4 Mi values each further
// chunk of 4 Mi has its own generator (seeded from seed and the chunk), so threads draw them.
std::vector<float> random_normal(std::size_t n, std::uint64_t seed, float scale = 1.0f);

// "H32" when every query head has its own K/V head, "Hq32/Hkv8" with grouped-query attention.
std::string head_label(std::int64_t q_heads, std::int64_t kv_heads);

// Uploads fp32 host values as `dtype` (f32, or bf16 rounded to nearest even on the host). The
// conversion is element-wise, so a slice of the host values uploads as the same bits as the
// matching slice of the whole tensor (what the subset validations rely on).
Tensor upload_as(Context& ctx, const std::vector<float>& values, DType dtype,
                 std::vector<std::int64_t> shape);

}  // namespace sparq::bench
