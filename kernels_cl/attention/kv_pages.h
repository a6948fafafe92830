// kv_pages.h — what an element of a paged KV cache means (sparq::PagedKV, attention.h): the
// storage codes and the exact widening / dequantization of one stored element, shared by
// decode.cl, kv_append.cl, sparse/quest.cl and their fallbacks (OpenCL C 1.2 and C++20).
//
// An element is the fp32 value
//   f32 pages:  the stored float;   f16 / bf16 pages: the stored half widened (exact);
//   i8 pages:   sq_att_deq_i8(code, the row's fp32 scale) = fp32(code * scale), one rounding;
//   u8 (NVFP4): sq_att_deq_fp4(E2M1 code, E4M3 code of the element's 16-group), exact;
// and every op (attention, Quest metadata) is its fp32 definition over these values.
#ifndef SPARQ_ATTENTION_KV_PAGES_H
#define SPARQ_ATTENTION_KV_PAGES_H

#include "common/codecs.h"
#include "common/convert.h"
#include "common/prelude.h"

// Storage dtype codes passed to kernels at run time (the host static_asserts they equal
// sparq::DType's values).
#define SQ_DT_F32 0
#define SQ_DT_F16 1
#define SQ_DT_BF16 2
// int8 KV cache pages: one fp32 scale per (page, slot, head) row.
#define SQ_DT_I8 3
// NVFP4 KV cache pages (sparq::DType::u8 storage): E2M1 codes two per byte along D (element 2k
// in the low nibble), one E4M3 scale code per 16 elements of a row.
#define SQ_DT_FP4 4

#ifdef __OPENCL_C_VERSION__
typedef long sq_kv_i64;
#endif

SQ_BEGIN_NAMESPACE
#ifndef __OPENCL_C_VERSION__
typedef slong sq_kv_i64;
#endif

// Exact widening of one stored element (bits holds the f16/bf16 pattern in its low 16 bits).
SQ_FN float sq_att_widen16(uint bits, int dtype) {
  return dtype == SQ_DT_F16 ? sq_f16_to_f32((ushort)bits) : sq_bf16_to_f32((ushort)bits);
}

// Dequantized element of an int8 KV page row: one fp32 rounding of code * row scale. The
// conversion is exact (|code| <= 127), so the product is the only rounding; attention over int8
// pages is attention over these floats, bit for bit.
SQ_FN float sq_att_deq_i8(int code, float scale) {
  return (float)code * scale;
}

// Dequantized element of an NVFP4 KV page: E2M1 value times the decoded E4M3 group scale. Exact
// in fp32 (at most 2 + 4 significant bits, magnitudes 0 or in [2^-10, 2688]), so no rounding at
// all; a NaN scale code (0x7F / 0xFF: the group held Inf/NaN) gives NaN; code 0x8 gives -0.
SQ_FN float sq_att_deq_fp4(uint code, uint scale_code) {
  return sq_e2m1_decode(code) * sq_e4m3_decode(scale_code);
}

// Element e of the K/V row starting at element `row` of `pages` (in units of the page tensor's
// dtype: f32 4 bytes, f16/bf16 2, i8/u8 1), as the fp32 value defined above. `scales` / `srow`:
// the row's scale (i8: one f32 at srow) or scale codes (u8: srow + e / 16); unused otherwise.
SQ_FN float sq_kv_element(SQ_CONST_GLOBAL uchar* pages, sq_kv_i64 row, int dt, int e,
                          SQ_CONST_GLOBAL uchar* scales, sq_kv_i64 srow) {
  if (dt == SQ_DT_F32) return ((SQ_CONST_GLOBAL float*)pages)[row + e];
  if (dt == SQ_DT_F16 || dt == SQ_DT_BF16)
    return sq_att_widen16(((SQ_CONST_GLOBAL ushort*)pages)[row + e], dt);
  if (dt == SQ_DT_I8) {
    const int b = (int)pages[row + e];
    return sq_att_deq_i8(b >= 128 ? b - 256 : b, ((SQ_CONST_GLOBAL float*)scales)[srow]);
  }
  const uint byte = pages[row + e / 2];
  return sq_att_deq_fp4((e & 1) ? sq_fp4_hi(byte) : sq_fp4_lo(byte), scales[srow + e / 16]);
}

SQ_END_NAMESPACE

#endif  // SPARQ_ATTENTION_KV_PAGES_H
