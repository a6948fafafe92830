#pragma OPENCL FP_CONTRACT OFF
// dense.cl — exact fp32 attention, prefill fast path: O = softmax(scale * Q K^T) V per (sequence,
// query head), with the defined order of attention_common.h (chunks of 4096 keys, online base-2
// softmax over 64-key tiles inside a chunk, chunk states merged left to right). The same bits as
// decode.cl, merge.cl and fallback_cpu/attention/dense.cpp, whatever the launch shape.
//
// Macros HEAD_DIM (64/128), ATT_UNROLL, ATT_PREFETCH, ATT_THREADS (128/256): speed knobs only,
// described with the launch shape and the work split in attention/prefill_body.h, which holds
// this kernel's body: the block-sparse prefill walk (sparse/sparse_prefill.cl) with the implicit
// full index (step n = keys [64n, 64n + 64), no columns, causal prefix masking), so both kernels
// share one layout and one tuning (DenseKernelConfig, SPARQ_TUNE_DENSE).
#define SQ_PREFILL_SPARSE 0
#include "attention/prefill_body.h"
