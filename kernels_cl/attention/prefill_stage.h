// prefill_stage.h — K/V staging of prefill_body.h (OpenCL C only; included by it, after its
// macros): which keys a step holds, where their rows live, and the slice loads/stores from global
// memory through registers into local memory. Macros, not functions: PoCL 3.1's LLVM 15 crashes in
// its inliner on these as functions when unrolled.
//
// Per step n the work-items < BN stage slot lid of half n & 1 (one step ahead: the prefetch of
// step n + 1 reads it during step n):
//  - sparse: the slot's key kidx and position kps (SparseIndex tiles, then columns);
//  - paged K/V (page_size > 0, either mode): key j of sequence b lives in page
//    pages[b][j / page_size] at slot j % page_size; kro / vro hold that row's element offset
//    (page * page stride + slot * slot stride; the head offset is in kv_base_k / kv_base_v), and
//    ksr / vsr the element offset of its scales in k_sc / v_sc (int8: one f32 per row; NVFP4:
//    D / 16 E4M3 codes; an element is then sq_att_deq_i8 / sq_att_deq_fp4 of its code,
//    attention_common.h sq_att_load_kv4). Contiguous / varlen K/V skip this table.
// Staging only decides which floats reach local memory, never an operation of the definition:
// paged K/V give the bits of the same K/V stored contiguously.

// Element offset of step n_'s slot s_ row (key j_) from kv_base_k / kv_base_v.
#define K_ROW(n_, s_, j_) (paged ? kro[((n_)&1) * BN + (s_)] : (k0 + (j_)) * k_sr)
#define V_ROW(n_, s_, j_) (paged ? vro[((n_)&1) * BN + (s_)] : (k0 + (j_)) * v_sr)

// Elements [dv, dv + 4) of the K/V row at element `row` as fp32: f32/f16/bf16 widened; scaled
// pages dequantized with the scales at element *srow of sc (read from local memory only then).
static inline float4 sq_pf_load_kv4(gbytes base, long row, int dt, int dv, gbytes sc,
                                    __local const long* srow) {
  return dt <= SQ_DT_BF16 ? sq_att_load4(base, row + dv, dt)
                          : sq_att_load_kv4(base, row, dt, dv, 4, sc, *srow);
}

// p = sq_exp2(s - m_new) (attention_common.h sq_att_prob). ATT_EXP_CVT 1 (a speed knob): with
// k = round-to-even(x) taken by convert_int_rte (exact for |x| <= 150) in place of
// sq_round_rne_int's bit operations: the same k, the same operations after it (sq_exp2_core_),
// so the same bits.
#if defined(ATT_EXP_CVT) && ATT_EXP_CVT
static inline float sq_pf_prob(float s, float m_new) {
  const float x = s - m_new;
  if (sq_isnan(x)) return x;
  if (x >= 128.0f) return sq_inf_();
  if (!(x >= -150.0f)) return 0.0f;
  return sq_exp2_core_(x, convert_int_rte(x));
}
#else
#define sq_pf_prob sq_att_prob
#endif

// Paged: the row offsets (and scale offsets) of key j_ (-1: none; zeros, never read) into slot x_.
#define PAGE_ROW(x_, j_)                                                   \
  do {                                                                     \
    long kr_ = 0, vr_ = 0, ks_ = 0, vs_ = 0;                               \
    if ((j_) >= 0) {                                                       \
      const long pg_ = page_row[(j_) / page_size], sl_ = (j_) % page_size; \
      kr_ = pg_ * k_sb + sl_ * k_sr;                                       \
      vr_ = pg_ * v_sb + sl_ * v_sr;                                       \
      ks_ = ks_base + pg_ * ks_sb + sl_ * ks_sr;                           \
      vs_ = vs_base + pg_ * vs_sb + sl_ * vs_sr;                           \
    }                                                                      \
    kro[x_] = kr_;                                                         \
    vro[x_] = vr_;                                                         \
    ksr[x_] = ks_;                                                         \
    vsr[x_] = vs_;                                                         \
  } while (0)

#if SQ_PREFILL_SPARSE
// Stages step n_'s slot keys and positions (and paged rows) into half n_ & 1 (work-items < BN).
#define STEP_KEYS(n_)                                                                    \
  do {                                                                                   \
    if (lid < BN) {                                                                      \
      const int sn_ = (n_), sc_ = (sn_ - nt) * BN + lid;                                 \
      int j_ = sn_ < nt ? ts[sn_] + lid : (sc_ < ncol ? cs[sc_] : -1);                   \
      if (j_ >= lk) j_ = -1;                                                             \
      kidx[(sn_ & 1) * BN + lid] = j_;                                                   \
      kps[(sn_ & 1) * BN + lid] = j_ < 0 ? 0 : (has_pos ? kpos[(long)b * lk + j_] : j_); \
      if (paged) PAGE_ROW((sn_ & 1) * BN + lid, j_);                                     \
    }                                                                                    \
  } while (0)
#else
// Stages the paged rows of step n_'s keys [64 n_, 64 n_ + 64) into half n_ & 1.
#define STEP_KEYS(n_)                                   \
  do {                                                  \
    if (paged && lid < BN) {                            \
      const int j_ = (n_)*BN + lid;                     \
      PAGE_ROW(((n_)&1) * BN + lid, j_ < lk ? j_ : -1); \
    }                                                   \
  } while (0)
#endif

// Slice `st` of step `n` (st < NQK: Q'/K d-slice; else V key slice) from global memory into
// the registers pf[NPF], then from pf into local memory (Q'/K slices into qs/ks [row][QS], V into
// qkv [key][DH]). The Q rows are the work-group's, scaled by c exactly as they are used.
#define SLICE_LOAD(n_, st_)                                                                       \
  do {                                                                                            \
    const int sst_ = (st_);                                                                       \
    if (sst_ < NQK) {                                                                             \
      const int sd0_ = sst_ * DS;                                                                 \
      SQ_UNROLL                                                                                   \
      for (int t_ = 0; t_ < SR; ++t_) {                                                           \
        float4 x_ = (float4)(0.0f);                                                               \
        if (q_row[t_] >= 0) x_ = sq_att_load4(q, q_row[t_] + sd0_ + st_dv, q_dt) * c;             \
        pf[t_] = x_;                                                                              \
        const int s_ = st_row + SRW * t_, j_ = STEP_KEY(n_, s_);                                  \
        pf[SR + t_] = KEY_OK(j_) ? sq_pf_load_kv4(k, kv_base_k + K_ROW(n_, s_, j_), k_dt,         \
                                                  sd0_ + st_dv, k_sc, ksr + ((n_)&1) * BN + s_)   \
                                 : (float4)(0.0f);                                                \
      }                                                                                           \
    } else {                                                                                      \
      const int sjs_ = (sst_ - NQK) * JS;                                                         \
      SQ_UNROLL                                                                                   \
      for (int i_ = 0; i_ < NPF; ++i_) {                                                          \
        const int x_ = lid + i_ * NT, s_ = sjs_ + x_ / (DH / 4);                                  \
        const int j_ = STEP_KEY(n_, s_);                                                          \
        pf[i_] = KEY_OK(j_) ? sq_pf_load_kv4(v, kv_base_v + V_ROW(n_, s_, j_), v_dt,              \
                                             (x_ % (DH / 4)) * 4, v_sc, vsr + ((n_)&1) * BN + s_) \
                            : (float4)(0.0f);                                                     \
      }                                                                                           \
    }                                                                                             \
  } while (0)

#define SLICE_STORE(st_)                                               \
  do {                                                                 \
    if ((st_) < NQK) {                                                 \
      SQ_UNROLL                                                        \
      for (int t_ = 0; t_ < SR; ++t_) {                                \
        const int r_ = st_row + SRW * t_;                              \
        ST4(qs + r_ * QS + st_dv, pf[t_]);                             \
        ST4(ks + r_ * QS + st_dv, pf[SR + t_]);                        \
      }                                                                \
    } else {                                                           \
      SQ_UNROLL                                                        \
      for (int i_ = 0; i_ < NPF; ++i_) {                               \
        const int x_ = lid + i_ * NT;                                  \
        ST4(qkv + (x_ / (DH / 4)) * DH + (x_ % (DH / 4)) * 4, pf[i_]); \
      }                                                                \
    }                                                                  \
  } while (0)
