// The attention kernel programs and their -D variants, in one place (STYLE: CLBlast's
// compile.cpp). Each config's defines() is the exact macro string the op passes, so it is also
// the program-cache key and the list the build-every-variant test compiles.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernel_variants.h"

namespace sparq::attention_detail {

// kernels_cl/attention/dense.cl: prefill fast path, 64 query rows x 64-key tiles per work-group.
// Its body (attention/prefill_body.h) is also sparse/sparse_prefill.cl's, which takes these knobs
// as they are (sparse_detail::PrefillKernelConfig).
// Assumes D == head_dim exactly (64 or 128); contiguous, varlen or paged K/V (run-time mode).
struct DenseKernelConfig {
  static constexpr const char* source = "attention/dense.cl";
  static constexpr const char* kernel = "attention_dense";
  static constexpr int rows_per_group = 64;
  int work_group = 128;  // 128 (8 rows x 4 keys per work-item) or 256 (4 rows x 4 keys)
  int head_dim = 128;
  bool unroll = true;     // GPUs: unroll the register tiles; CPUs (PoCL): builds ~5x faster without
  bool prefetch = false;  // GPUs: load the next K/V slice while computing the current one
  int nv_max_regs = 0;    // NVIDIA only: -cl-nv-maxrregcount (0 = the compiler's choice)
  // Work mapping: 0, prefill_body.h (4 rows x 4 keys per work-item); 1, prefill_body_rb.h
  // (register-blocked 4x8 scores and 8x8 outputs per work-item, 128 work-items; not with hooks,
  // which keep map 0's body under the same defines; sparse_prefill.cl ignores it).
  int map = 0;
  int rb_slice = 32;        // map 1: d per Q'/K slice (16 or 32; ATT_DS)
  bool rb_exp = false;      // exp2 rounding by one conversion (ATT_EXP_CVT, prefill_stage.h)
  bool nv_verbose = false;  // NVIDIA: -cl-nv-verbose (ptxas counts in the build log)
  std::string defines() const {
    std::string d = "-DHEAD_DIM=" + std::to_string(head_dim) +
                    " -DATT_UNROLL=" + (unroll ? "1" : "0") +
                    " -DATT_PREFETCH=" + (prefetch ? "1" : "0") +
                    " -DATT_THREADS=" + std::to_string(work_group);
    if (map != 0) d += " -DATT_MAP=" + std::to_string(map);
    if (map == 1 && rb_slice != 32) d += " -DATT_DS=" + std::to_string(rb_slice);
    if (rb_exp) d += " -DATT_EXP_CVT=1";
    if (nv_max_regs > 0) d += " -cl-nv-maxrregcount=" + std::to_string(nv_max_regs);
    if (nv_verbose) d += " -cl-nv-verbose";
    return d;
  }
  static bool fits(int d) { return d == 64 || d == 128; }
  // The configuration run on a device: speed knobs only (no knob changes a bit of the result).
  // SPARQ_TUNE_DENSE="map=0|1,prefetch=0|1,regs=N,unroll=0|1,threads=128|256,verbose=0|1,
  // ds=16|32,exp=0|1" overrides them for tuning sweeps (map=1 runs 128 work-items; ds applies
  // to map 1; regs, verbose: NVIDIA only).
  static DenseKernelConfig for_device(int head_dim, bool is_gpu, bool is_nvidia);
};

// kernels_cl/attention/decode.cl: the general path (any D <= 256, contiguous / varlen / paged,
// up to 8 query rows of one kv head per work-group), run over a whole row or one 4096-key chunk
// per work-group (split decode: partial states into a workspace, merged by merge.cl).
struct DecodeKernelConfig {
  static constexpr const char* source = "attention/decode.cl";
  static constexpr const char* kernel = "attention_rows";
  static constexpr int max_rows = 8;
  static constexpr int work_group = 128;
  static constexpr int max_head_dim = 256;
  std::string defines() const { return ""; }
};

// kernels_cl/attention/decode_stream.cl: the bandwidth path of decode-shaped calls (same
// arguments, launch and bits as decode.cl): D = 64 or 128 (D = 256: decode_flat.cl only), K and V
// of one storage dtype (f32, f16, bf16 or int8 pages) with 16-byte aligned rows, no hooks; up to 8
// query rows per group.
struct DecodeStreamConfig {
  static constexpr const char* source = "attention/decode_stream.cl";
  static constexpr const char* kernel = "attention_rows";
  static constexpr int work_group = 128;
  static constexpr int max_rows = 8;
  int head_dim = 128;
  int element_bytes = 4;  // KV_ES: 4 f32, 2 f16/bf16, 1 int8
  std::string defines() const {
    return "-DHEAD_DIM=" + std::to_string(head_dim) + " -DKV_ES=" + std::to_string(element_bytes);
  }
};

// kernels_cl/attention/decode_bw.cl: the lean bandwidth path (same calls, arguments, launch and
// bits as decode_stream.cl): `rows` query rows and `threads` work-items per work-group, P.V
// work-items owning `cols` columns of all their rows, V kept raw in local memory.
struct DecodeBwConfig {
  static constexpr const char* source = "attention/decode_bw.cl";
  static constexpr const char* kernel = "attention_rows";
  int head_dim = 128;
  int element_bytes = 1;  // KV_ES: 4 f32, 2 f16/bf16, 1 int8
  int rows = 4;           // 4 or 8
  int threads = 64;       // 64, 128 or 256
  int cols = 2;           // 1, 2 or 4 (normalized() keeps the P.V layout valid)
  int magic_i8 = 0;       // DV_MAGIC: int8 codes to floats by a bit pattern (decode_vec.h); 2: prmt
  bool unroll = true;     // DB_UNROLL: GPUs; CPUs (PoCL) build several times faster without
  bool async = false;     // DB_ASYNC: K/V tiles double-buffered in local memory, no prefetch regs
  bool async_ptx = false;  // DB_ASYNC_PTX: their copies as cp.async (NVIDIA sm_80+ only)
  int nv_max_regs = 0;     // NVIDIA only: -cl-nv-maxrregcount (0 = the compiler's choice)
  bool nv_verbose = false;
  // cols raised until head_dim / cols <= threads, lowered until threads / (head_dim / cols)
  // row groups fit in rows.
  DecodeBwConfig normalized() const;
  std::string defines() const {
    std::string d =
        "-DHEAD_DIM=" + std::to_string(head_dim) + " -DKV_ES=" + std::to_string(element_bytes) +
        " -DDB_ROWS=" + std::to_string(rows) + " -DDB_THREADS=" + std::to_string(threads) +
        " -DDB_COLS=" + std::to_string(cols);
    if (magic_i8 > 0) d += " -DDV_MAGIC=" + std::to_string(magic_i8);
    if (!unroll) d += " -DDB_UNROLL=0";
    if (async) d += async_ptx ? " -DDB_ASYNC=1 -DDB_ASYNC_PTX=1" : " -DDB_ASYNC=1";
    if (nv_max_regs > 0) d += " -cl-nv-maxrregcount=" + std::to_string(nv_max_regs);
    if (nv_verbose) d += " -cl-nv-verbose";
    return d;
  }
};

// kernels_cl/attention/decode_flat.cl: decode_bw.cl's calls, arguments, launch, P.V layout and
// bits, with the tiles of a chunk walked in spans of `span` keys: scores of the whole span (no
// barrier between tiles), then tile maxima, probabilities and P.V, four barriers a span. `bw`
// holds the shared knobs (rows, threads, cols, cvt, unroll, async: V copies by cp.async).
struct DecodeFlatConfig {
  static constexpr const char* source = "attention/decode_flat.cl";
  static constexpr const char* kernel = "attention_rows";
  DecodeBwConfig bw;
  int span = 256;     // DF_SPAN: keys per span (64 .. 4096, a power of two)
  int kpi = 1;        // DF_KPI: keys per work-item whose K loads are issued together (1, 2, 4)
  bool kloc = false;  // DF_KLOC: K rows through local memory too (all of a span's loads at once)
  // Local memory of one work-group (the __local arrays of decode_flat.cl).
  std::int64_t local_bytes() const;
  // span halved (not below 64) until local_bytes() fits `local_mem`.
  DecodeFlatConfig fitted(std::int64_t local_mem) const;
  std::string defines() const {
    return bw.defines() + " -DDF_SPAN=" + std::to_string(span) +
           " -DDF_KPI=" + std::to_string(kpi) + (kloc ? " -DDF_KLOC=1" : "");
  }
};

// The row kernel of decode-shaped calls that fit a bandwidth kernel, with its speed knobs; none
// changes a bit. SPARQ_TUNE_DECODE="kernel=0|1|2,rows=0|4|8,threads=64|128|256,cols=1|2|4,
// cvt=0|1|2,unroll=0|1,async=0|1,span=64..4096,kpi=1|2|4,kloc=0|1,regs=0..255,verbose=0|1"
// overrides them for sweeps (kernel 0: decode_stream.cl, 1: decode_bw.cl, 2: decode_flat.cl;
// rows 0: the group's rows rounded up to 4, at most 8; cvt: DV_MAGIC in all three, 2 (prmt) only
// with inline PTX, else 1; unroll: decode_bw.cl / decode_flat.cl, default on GPUs only; async 1:
// decode_bw.cl's double-buffered tiles / decode_flat.cl's K and V copies, by cp.async where
// inline PTX and sm_80+ allow; span, kpi, kloc: decode_flat.cl, span a power of two, lowered until
// the local memory fits; regs and verbose apply on NVIDIA only).
struct DecodeTuning {
  int kernel = 0;
  int rows = 0;
  int threads = 64;
  int cols = 2;
  int magic_i8 = 0;  // cvt: 0, 1, or 2 (prmt; 1 without inline PTX)
  int unroll = -1;   // -1: on GPUs only
  bool async = false;
  int span = 256;
  int kpi = 1;
  bool kloc = false;
  int nv_max_regs = 0;
  bool nv_verbose = false;
  // Which knobs SPARQ_TUNE_DECODE set (for_call leaves those alone).
  bool set_kernel = false, set_async = false, set_cvt = false, set_threads = false,
       set_cols = false, set_regs = false;
  static DecodeTuning from_env(bool is_nvidia, bool inline_ptx);
  // The defaults for a call with KV elements of `element_bytes` on a device that takes inline PTX
  // cp.async and prmt (NVIDIA, sm_80+), for int8 pages: decode_flat.cl with cp.async V copies,
  // prmt conversions, 128 work-items of one column each and a 128-register cap (one wave of the
  // 512 work-groups of B8 32K). On the H100 (B8 Hq32/Hkv8 D128 page16, bench/RESULTS.md session
  // 8) it took 0.532 / 2.036 ms at 32K / 128K against decode_bw.cl's 0.683 / 2.088 (session 7's
  // default, itself 1.8-2.2x decode_stream.cl). Other element sizes and devices keep
  // decode_stream.cl until a measurement says otherwise. Knobs set in the environment win.
  DecodeTuning for_call(int element_bytes, bool nvidia_ptx_async) const {
    DecodeTuning t = *this;
    if (!(element_bytes == 1 && nvidia_ptx_async) || set_kernel) return t;
    t.kernel = 2;
    if (!set_async) t.async = true;
    if (!set_cvt) t.magic_i8 = 2;
    if (!set_threads) t.threads = 128;
    if (!set_cols) t.cols = 1;
    if (!set_regs) t.nv_max_regs = 128;
    return t;
  }
  // decode_stream.cl's options beyond DecodeStreamConfig's: DV_MAGIC, the NVIDIA register cap
  // and verbose ptxas.
  std::string stream_options() const {
    std::string d = magic_i8 > 0 ? " -DDV_MAGIC=" + std::to_string(magic_i8) : "";
    if (nv_max_regs > 0) d += " -cl-nv-maxrregcount=" + std::to_string(nv_max_regs);
    if (nv_verbose) d += " -cl-nv-verbose";
    return d;
  }
  // decode_bw.cl's configuration for a call with `rows_needed` query rows per kv head.
  // cp_async: the device takes inline PTX cp.async (NVIDIA, sm_80+).
  DecodeBwConfig bw(int head_dim, int element_bytes, std::int64_t rows_needed, bool is_gpu,
                    bool cp_async = false) const;
  // decode_flat.cl's configuration for such a call on a device with `local_mem` bytes of local
  // memory.
  DecodeFlatConfig flat(int head_dim, int element_bytes, std::int64_t rows_needed, bool is_gpu,
                        bool cp_async, std::int64_t local_mem) const {
    DecodeFlatConfig f{bw(head_dim, element_bytes, rows_needed, is_gpu, cp_async), span, kpi, kloc};
    return f.fitted(local_mem);
  }
};

// Which row kernel serves a decode-shaped call that fits the bandwidth path (one KV dtype,
// 16-byte rows, no hooks, D = 64, 128 or 256), and its configuration: the one routing decision.
// D = 64 / 128: DecodeTuning::for_call's kernel. D = 256: decode_flat.cl only (decode_stream.cl's
// dequantized V tile alone is 64 KiB), with the int8-NVIDIA default's layout (128 work-items,
// cols normalized to 2, prmt where the device takes it) but no register cap and plain V copies
// (cp.async needs rows of at most 8 vectors), its span fitted to min(local memory, 48 KiB); where
// one tile does not fit (f32 pages), decode.cl.
struct DecodeRoute {
  int kernel = -1;  // -1: decode.cl; 0 decode_stream.cl; 1 decode_bw.cl; 2 decode_flat.cl
  DecodeTuning tuning;
  DecodeBwConfig bw;      // kernel 1
  DecodeFlatConfig flat;  // kernel 2
};
// nvidia_ptx_async: NVIDIA with inline PTX cp.async (sm_80+).
DecodeRoute route_decode(const DecodeTuning& env, int head_dim, int element_bytes,
                         std::int64_t rows_needed, bool is_gpu, bool nvidia_ptx_async,
                         std::int64_t local_mem);

// kernels_cl/attention/merge.cl: chunk-state merges (split decode) and the merge_states op.
struct MergeKernelConfig {
  static constexpr const char* source = "attention/merge.cl";
  static constexpr const char* chunks_kernel = "attention_merge_chunks";
  static constexpr const char* states_kernel = "attention_merge_states";
  std::string defines() const { return ""; }
};

// kernels_cl/attention/kv_append.cl: one work-item per (sequence, head, new token) row.
struct KvAppendKernelConfig {
  static constexpr const char* source = "attention/kv_append.cl";
  static constexpr const char* kernel = "kv_append";
  std::string defines() const { return ""; }
};

}  // namespace sparq::attention_detail
