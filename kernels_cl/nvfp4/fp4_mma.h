// fp4_mma.h — the integer MMA of kernels_cl/nvfp4/fp4_attention.cl (FP4_MMA 1: NVIDIA inline
// PTX; 2: the same fragment contract emulated through local memory for PoCL). Included by that
// kernel only, after WG is defined; MMA16 reads `lid` and, in mode 2, the kernel's xa/xb arrays.
#ifndef SPARQ_NVFP4_FP4_MMA_H
#define SPARQ_NVFP4_FP4_MMA_H

#if FP4_MMA
// FP4_F_BIAS (SPARQ_TUNE_FP4 bias): C = bits(1.5 * 2^23) instead of 0, so a result I (|I| <=
// 2304 < 2^22) arrives as the int bits of the float 1.5 * 2^23 + I, and (float)I is one exact
// subtraction (FP4_I2F); otherwise C = 0 and FP4_I2F converts.
#if FP4_FORMS & FP4_F_BIAS
#define FP4_MMA_C 0x4B400000
#define FP4_I2F(i) (as_float(i) - 12582912.0f)
#else
#define FP4_MMA_C 0
#define FP4_I2F(i) ((float)(i))
#endif
// The fp32 group term of an MMA result (sq_fp4_group_term's operations on (float)I).
// FP4_F_FOLD (fold): the MMA path stages Q and V scales times 0.25 (FP4_S4) and the term is
// (fi * a) * b (sq_fp4_group_term_fold).
#if FP4_FORMS & FP4_F_FOLD
#define FP4_S4(s) ((s)*0.25f)
#define FP4_MMA_TERM(i, sa, sb) sq_fp4_group_term_fold(FP4_I2F(i), (sa), (sb))
#define FP4_MMA_TERM_N(i, sa, sb) sq_fp4_group_term_fold_n(FP4_I2F(i), (sa), (sb))
#else
#define FP4_S4(s) (s)
#define FP4_MMA_TERM(i, sa, sb) sq_fp4_group_term_f(FP4_I2F(i), (sa), (sb))
#define FP4_MMA_TERM_N(i, sa, sb) sq_fp4_group_term_n(FP4_I2F(i), (sa), (sb))
#endif
// D = A(16x16, s8, row) * B(16x8, s8, col) + C, C = FP4_MMA_C in every element. Fragments (g = lane
// >> 2, t = lane & 3): a0 row g, k 4t..4t+3; a1 row g+8, same k; b0 column g, k 4t..4t+3; d0, d1
// row g, columns 2t, 2t+1; d2, d3 row g+8. int8 lanes packed little-endian (lowest k in the low
// byte). Called by every work-item of the work-group in uniform control flow.
#if FP4_MMA == 1
// NVIDIA's OpenCL compiler takes GNU `asm volatile` (design/NVIDIA_OPENCL.md, verified on the
// H100); the off-GPU compile check (clang OpenCL -> NVPTX -> ptxas, docs/fp4_attention.md) spells
// it __asm__ and defines SQ_PTX_CHECK.
#ifdef SQ_PTX_CHECK
#define FP4_ASM __asm__
#else
#define FP4_ASM asm
#endif
static inline int4 fp4_mma16(uint a0, uint a1, uint b0) {
  int d0, d1, d2, d3;
  const int zero = FP4_MMA_C;
  FP4_ASM volatile(
      "mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
      "{%7,%7,%7,%7};"
      : "=r"(d0), "=r"(d1), "=r"(d2), "=r"(d3)
      : "r"(a0), "r"(a1), "r"(b0), "r"(zero));
  return (int4)(d0, d1, d2, d3);
}
#define MMA16(I, a0, a1, b0, sa, sb) (I) = fp4_mma16((a0), (a1), (b0));
#else
// The same fragment contract emulated for PoCL tests: before a phase, every work-item
// publishes the fragments it would feed the MMAs (xa: its A register pairs by slot, xb: its B
// registers by slot), one barrier, then each MMA is computed from the published registers of
// the warp's lanes. No barrier sits inside a loop and the exchange arrays are read in the
// kernel body, not through a __local pointer parameter: PoCL 3.1 gave nondeterministic or zero
// results for both of those variants.
#define XA_SLOTS 16  // >= max(G, 4) A pairs
#define XB_SLOTS 32  // >= max(4 * G, 4 * D / 16) B registers
static inline int fp4_s8(uint w, int e) {
  return (int)(((w >> (8 * e)) & 255u) ^ 128u) - 128;
}
#define MMA16(I, a0, a1, b0, sa, sb)                                                   \
  {                                                                                    \
    const int lane_ = lid & 31, base_ = lid - lane_, g_ = lane_ >> 2, t_ = lane_ & 3;  \
    int d0_ = FP4_MMA_C, d1_ = FP4_MMA_C, d2_ = FP4_MMA_C, d3_ = FP4_MMA_C;            \
    for (int tt_ = 0; tt_ < 4; ++tt_)                                                  \
      for (int e_ = 0; e_ < 4; ++e_) {                                                 \
        const int ai_ = ((base_ + 4 * g_ + tt_) * XA_SLOTS + (sa)) * 2;                \
        const int ar_ = fp4_s8(xa[ai_], e_), ar8_ = fp4_s8(xa[ai_ + 1], e_);           \
        const int bc0_ = fp4_s8(xb[(base_ + 8 * t_ + tt_) * XB_SLOTS + (sb)], e_);     \
        const int bc1_ = fp4_s8(xb[(base_ + 8 * t_ + 4 + tt_) * XB_SLOTS + (sb)], e_); \
        d0_ += ar_ * bc0_;                                                             \
        d1_ += ar_ * bc1_;                                                             \
        d2_ += ar8_ * bc0_;                                                            \
        d3_ += ar8_ * bc1_;                                                            \
      }                                                                                \
    (I) = (int4)(d0_, d1_, d2_, d3_);                                                  \
  }
#endif
// Four int8 lanes from local memory (lowest address in the low byte). FP4_F_LD32 (ld32): one
// 32-bit load (every caller's offset is a multiple of 4 in a 16-byte-aligned array), the same
// word as_uint(vload4) builds from four byte loads.
#if FP4_FORMS & FP4_F_LD32
static inline uint fp4_pack4(__local const char* p) {
  return *(__local const uint*)p;
}
#else
static inline uint fp4_pack4(__local const char* p) {
  return as_uint(vload4(0, p));
}
#endif
#endif

#endif  // SPARQ_NVFP4_FP4_MMA_H
