#pragma OPENCL FP_CONTRACT OFF
// dense.cl — exact fp32 attention, prefill fast path: O = softmax(scale * Q K^T) V per (sequence,
// query head), with the defined order of attention_common.h (chunks of 4096 keys, online base-2
// softmax over 64-key tiles inside a chunk, chunk states merged left to right). The same bits as
// decode.cl, merge.cl and fallback_cpu/attention/dense.cpp, whatever the launch shape.
//
// Macros HEAD_DIM (64/128), ATT_UNROLL, ATT_PREFETCH, ATT_THREADS (128/256), ATT_MAP (0/1):
// speed knobs only, described with the launch shape and the work split in the body they select.
// ATT_MAP 0 (or hooks on): attention/prefill_body.h, the block-sparse prefill walk
// (sparse/sparse_prefill.cl) with the implicit full index (step n = keys [64n, 64n + 64), no
// columns, causal prefix masking), so both kernels share one layout and one tuning
// (DenseKernelConfig, SPARQ_TUNE_DENSE). ATT_MAP 1 (no hooks): attention/prefill_body_rb.h, the
// same walk with register-blocked 4x8 score and 8x8 output tiles per work-item (128 work-items).
#define SQ_PREFILL_SPARSE 0
// Included here, outside the #if: the runtime inlines each file once, at its first #include,
// whatever the branch (runtime/kernel_sources.cpp).
#include "attention/attention_common.h"
#include "attention/prefill_stage.h"
#if defined(ATT_MAP) && ATT_MAP == 1 && !(defined(SQ_ATT_HOOKS) && SQ_ATT_HOOKS)
#include "attention/prefill_body_rb.h"
#else
#include "attention/prefill_body.h"
#endif
