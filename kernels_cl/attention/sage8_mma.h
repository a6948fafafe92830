// sage8_mma.h — the warp-level helpers of attention/sage8_mma.cl: int8 mma.sync (m16n8k32,
// m16n8k16) and shfl.sync.bfly as inline PTX, or (SAGE8_EMULATE 1) emulated in local memory with
// the PTX ISA's fragment layouts; quad folds; the P codes of a lane's 4 keys of a 16-key group;
// the defaults of the same-bits forms and the tile step's P and P.V macros (they name the
// kernel's locals). Included by sage8_mma.cl after its macros (SAGE8_EMULATE, SAGE8_SPARSE, NT).
#ifndef SPARQ_ATTENTION_SAGE8_MMA_H
#define SPARQ_ATTENTION_SAGE8_MMA_H

// Same-bits arithmetic forms (sage8_mma.cl banner), 1 unless the build says 0.
#ifndef SAGE8_FAST_DIV
#define SAGE8_FAST_DIV 1
#endif
#ifndef SAGE8_FAST_EXP
#define SAGE8_FAST_EXP 1
#endif
#ifndef SAGE8_SV_FLAG
#define SAGE8_SV_FLAG 1
#endif
#ifndef SAGE8_MMA_BIAS
#define SAGE8_MMA_BIAS 1
#endif
#ifndef SAGE8_FAST_MAX
#define SAGE8_FAST_MAX 1
#endif
#ifndef SAGE8_DELTA_STAGE
#define SAGE8_DELTA_STAGE 1
#endif
#define SQ_S8_DST (SAGE8_DELTA_STAGE && !SAGE8_SPARSE)
#define SQ_S8_SVF (SAGE8_SV_FLAG && !SAGE8_SPARSE)
// P of a key (SAGE8_FAST_EXP: x <= 0 for a visible key, as m_new >= its S2; a hidden key takes
// -160, whose exp2 is +0, in sq_exp2_q_le0's own clamp). VIS_P: the keys whose P is formed; with
// FAST_EXP a skipped row's P is left as it comes (its codes and scales only reach its own MMA
// rows and sums, which the skip masks), and P >= 0 (or NaN) makes absbits the plain bits.
#if SAGE8_FAST_EXP
#define SQ_S8_P(vis, x) sq_exp2_q_le0_core(((int)(vis) & (int)!((x) < -150.0f)) ? (x) : -160.0f)
#define VIS_P(key, hf) KVIS(key, hf)
#define SQ_S8_PBITS(p) as_uint(p)
#define SQ_S8_EXP2 sq_exp2_le0
#else
#define SQ_S8_EXP2 sq_exp2
#define SQ_S8_P(vis, x) ((vis) ? sq_exp2_q(x) : 0.0f)
#define VIS_P(key, hf) (!skip[hf] && KVIS(key, hf))
#define SQ_S8_PBITS(p) sq_i8_absbits(p)
#endif

static inline int dot4(uint a, uint b) {
  const char4 x = as_char4(a), y = as_char4(b);
  return (int)x.s0 * (int)y.s0 + (int)x.s1 * (int)y.s1 + (int)x.s2 * (int)y.s2 +
         (int)x.s3 * (int)y.s3;
}

#if SAGE8_EMULATE
#define EMU_WORDS ((NT / 32) * 192)
static inline void mma_k32(int* d, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
                           __local uint* emu) {
  const int lane = get_local_id(0) & 31, g = lane >> 2, t = lane & 3;
  __local uint* A = emu + (get_local_id(0) >> 5) * 192;  // A[16][8] words, then B[8][8]
  __local uint* B = A + 128;
  A[g * 8 + t] = a0;
  A[(g + 8) * 8 + t] = a1;
  A[g * 8 + 4 + t] = a2;
  A[(g + 8) * 8 + 4 + t] = a3;
  B[g * 8 + t] = b0;
  B[g * 8 + 4 + t] = b1;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = 0; e < 4; ++e) {
    const int r = g + 8 * (e >> 1), c = 2 * t + (e & 1);
    int s = 0;
    for (int w = 0; w < 8; ++w) s += dot4(A[r * 8 + w], B[c * 8 + w]);
    d[e] += s;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}
static inline void mma_k16(int* d, uint a0, uint a1, uint b0, int c0, __local uint* emu) {
  const int lane = get_local_id(0) & 31, g = lane >> 2, t = lane & 3;
  __local uint* A = emu + (get_local_id(0) >> 5) * 192;  // A[16][4] words, then B[8][4]
  __local uint* B = A + 64;
  A[g * 4 + t] = a0;
  A[(g + 8) * 4 + t] = a1;
  B[g * 4 + t] = b0;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = 0; e < 4; ++e) {
    const int r = g + 8 * (e >> 1), c = 2 * t + (e & 1);
    int s = 0;
    for (int w = 0; w < 4; ++w) s += dot4(A[r * 4 + w], B[c * 4 + w]);
    d[e] = c0 + s;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}
// Value of lane (lane ^ mask) of the warp.
static inline uint shfl_xor(uint x, int mask, __local uint* emu) {
  const int lid = get_local_id(0);
  emu[lid] = x;
  barrier(CLK_LOCAL_MEM_FENCE);
  const uint y = emu[lid ^ mask];
  barrier(CLK_LOCAL_MEM_FENCE);
  return y;
}
#else
#define EMU_WORDS 1
#ifdef __clang__  // clang's OpenCL mode (tools/ptx_check.sh); NVIDIA's compiler takes `asm`
#define SQ_ASM __asm__
#else
#define SQ_ASM asm
#endif
static inline void mma_k32(int* d, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
                           __local uint* emu) {
  int d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
  SQ_ASM volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+r"(d0), "+r"(d1), "+r"(d2), "+r"(d3)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  d[0] = d0;
  d[1] = d1;
  d[2] = d2;
  d[3] = d3;
}
static inline void mma_k16(int* d, uint a0, uint a1, uint b0, int c0, __local uint* emu) {
  int d0 = c0, d1 = c0, d2 = c0, d3 = c0;
  SQ_ASM volatile(
      "mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
      "{%0,%1,%2,%3};"
      : "+r"(d0), "+r"(d1), "+r"(d2), "+r"(d3)
      : "r"(a0), "r"(a1), "r"(b0));
  d[0] = d0;
  d[1] = d1;
  d[2] = d2;
  d[3] = d3;
}
static inline uint shfl_xor(uint x, int mask, __local uint* emu) {
  uint y;
  SQ_ASM volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(y) : "r"(x), "r"(mask));
  return y;
}
#endif

// The row max's NaN-propagating max. SAGE8_FAST_MAX 1 (NVIDIA path only): PTX max.NaN.f32, one
// instruction; it differs from sq_mx only in a zero's sign (max(+0, -0) = +0) and in the NaN's
// payload (the GPU's NaNs are all canonical), and neither reaches an output: m is only
// subtracted from and compared with -inf (s - (+0) and s - (-0) differ only as ±0, and
// sq_exp2(±0) = sq_exp2_q(±0) = 1), and lse = m + log2(l) is the same for m = ±0.
#if SAGE8_FAST_MAX && !SAGE8_EMULATE
static inline float sq_s8_mx(float a, float b) {
  float y;
  SQ_ASM("max.NaN.f32 %0, %1, %2;" : "=f"(y) : "f"(a), "f"(b));
  return y;
}
#else
#define sq_s8_mx sq_mx
#endif

// Quad folds (lanes 4g .. 4g + 3 share rows): NaN-propagating float max, uint max, int sum.
static inline float quad_mx(float x, __local uint* emu) {
  x = sq_s8_mx(x, as_float(shfl_xor(as_uint(x), 1, emu)));
  return sq_s8_mx(x, as_float(shfl_xor(as_uint(x), 2, emu)));
}
static inline uint quad_umax(uint x, __local uint* emu) {
  x = max(x, shfl_xor(x, 1, emu));
  return max(x, shfl_xor(x, 2, emu));
}
static inline int quad_sum(int x, __local uint* emu) {
  x += (int)shfl_xor((uint)x, 1, emu);
  return x + (int)shfl_xor((uint)x, 2, emu);
}

// The group scale sp = sq_i8_scale(amax) and the P codes sq_i8_code(p[u], sp, 0) of this lane's 4
// keys of a 16-key group, packed (key u in byte u); *psum = their sum. sq_s8_pcodes_d: as defined.
// sq_s8_pcodes_f (SAGE8_FAST_DIV): the same scale and codes where sq_i8_fast_ok(amax), from
// sq_i8_scale_rcp, one division per group (rs = 1 / sp) and sq_i8_code_pg per key
// (quant/int8_codec.h; 0 <= p[u] <= amax); no branch, so the groups' quad folds interleave.
// Elsewhere its results are garbage and the kernel redoes the group with sq_s8_pcodes_d.
static inline uint sq_s8_pack4_(const int* c, int* psum) {
  *psum = (c[0] + c[1]) + (c[2] + c[3]);
  return (uint)c[0] | ((uint)c[1] << 8) | ((uint)c[2] << 16) | ((uint)c[3] << 24);
}
static inline uint sq_s8_pcodes_d(const float* p, uint amax, float* sp, int* psum) {
  int c[4];
  *sp = sq_i8_scale(amax);
  SQ_UNROLL
  for (int u = 0; u < 4; ++u) c[u] = sq_i8_code(p[u], *sp, 0.0f);
  return sq_s8_pack4_(c, psum);
}
static inline uint sq_s8_pcodes_f(const float* p, uint amax, float* sp, int* psum) {
  int c[4];
  *sp = sq_i8_scale_rcp(amax);
  const float rs = amax != 0u ? 1.0f / *sp : 0.0f;  // amax 0: every p is +0, y = 0, code 0
  SQ_UNROLL
  for (int u = 0; u < 4; ++u) c[u] = sq_i8_code_pg(p[u], *sp, rs);
  return sq_s8_pack4_(c, psum);
}
#if SAGE8_FAST_DIV
#define SQ_S8_PCODES sq_s8_pcodes_f
#else
#define SQ_S8_PCODES sq_s8_pcodes_d
#endif

// MMA accumulators start at SQ_S8_ACC0 (mma_k16's c0, mma_k32's d). SAGE8_MMA_BIAS 1: at
// bits(1.5 * 2^23), so an accumulator holds bits(1.5 * 2^23 + dot) (|dot| < 2^22: no overflow)
// and sq_s8_acc2f is sq_s8_i2f without its integer add (the MMA did it): (float)dot exactly.
#if SAGE8_MMA_BIAS
#define SQ_S8_ACC0 0x4B400000
#define sq_s8_acc2f(a) (as_float(a) - 12582912.0f)
#else
#define SQ_S8_ACC0 0
#define sq_s8_acc2f(a) sq_s8_i2f(a)
#endif

// sq_s8_score and sq_s8_pv_term (attention/sage8_common.h) of f = (float)dot.
static inline float sq_s8_score_f(float f, float sq, float sk) {
  return (f * sq) * sk;
}
static inline float sq_s8_pv_f(float f, float sp, float sv) {
  return sp == 0.0f ? 0.0f : (f * sp) * sv;
}
// sq_s8_pv_f for a finite sv, without its sP == 0 test: sP == 0 makes every code of the group 0
// (sq_i8_code), so dot == 0 and (+0 * 0) * sv = +0, the value the test returns. A non-finite sv
// (0 * inf = NaN) needs the test: the kernel takes sq_s8_pv_f for tiles that have one.
static inline float sq_s8_pv_f_fin(float f, float sp, float sv) {
  return (f * sp) * sv;
}

// P.V of a tile step (TERM: sq_s8_pv_f, or sq_s8_pv_f_fin where the tile's V scales are
// all finite): Ot[d] = ((U0 + U1) + U2) + U3; O = fma(O, alpha, Ot).
#define SQ_S8_PV_TILE(TERM)                                                                     \
  SQ_UNROLL                                                                                     \
  for (int nt = 0; nt < DH / 8; ++nt) {                                                         \
    const int dc = 8 * nt + 2 * t;                                                              \
    const float4 sv0 = vload4(0, svs + dc * 4), sv1 = vload4(0, svs + (dc + 1) * 4);            \
    float ot[4];                                                                                \
    SQ_UNROLL                                                                                   \
    for (int gr = 0; gr < 4; ++gr) {                                                            \
      int dd[4];                                                                                \
      mma_k16(dd, pa[0][gr], pa[1][gr], vs[(8 * nt + g) * VW + 4 * gr + t], SQ_S8_ACC0, emu);   \
      const float v0 = gr == 0 ? sv0.x : gr == 1 ? sv0.y : gr == 2 ? sv0.z : sv0.w;             \
      const float v1 = gr == 0 ? sv1.x : gr == 1 ? sv1.y : gr == 2 ? sv1.z : sv1.w;             \
      const float u0 = TERM(sq_s8_acc2f(dd[0]), sp[0][gr], v0);                                 \
      const float u1 = TERM(sq_s8_acc2f(dd[1]), sp[0][gr], v1);                                 \
      const float u2 = TERM(sq_s8_acc2f(dd[2]), sp[1][gr], v0);                                 \
      const float u3 = TERM(sq_s8_acc2f(dd[3]), sp[1][gr], v1);                                 \
      ot[0] = gr == 0 ? u0 : ot[0] + u0;                                                        \
      ot[1] = gr == 0 ? u1 : ot[1] + u1;                                                        \
      ot[2] = gr == 0 ? u2 : ot[2] + u2;                                                        \
      ot[3] = gr == 0 ? u3 : ot[3] + u3;                                                        \
    }                                                                                           \
    SQ_UNROLL                                                                                   \
    for (int e = 0; e < 4; ++e)                                                                 \
      if (!skip[e >> 1] && TILE_STEP) o[4 * nt + e] = fma(o[4 * nt + e], alpha[e >> 1], ot[e]); \
  }

#endif  // SPARQ_ATTENTION_SAGE8_MMA_H
