// Fallback twin of kernels_cl/diffusion/sim.cl: the same 32-lane dot order (sim_math.h) and the
// same selection order.
#include <cstring>

#include "common/convert.h"
#include "diffusion/sim_math.h"
#include "diffusion_fallback.h"

namespace sparq::fallback::diffusion {

using namespace sparq::cl_common;

namespace {

float load_e(const std::byte* e, std::int64_t i, int dt) {
  if (dt == 0) {
    float v;
    std::memcpy(&v, e + i * 4, 4);
    return v;
  }
  std::uint16_t h;
  std::memcpy(&h, e + i * 2, 2);
  return dt == 1 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

}  // namespace

void l2_normalize(float* out, const float* v, std::int64_t rows, std::int64_t d) {
  parallel_chunks(rows, 64, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* row = v + r * d;
      float p[32] = {};
      for (std::int64_t e = 0; e < d; ++e) p[e & 31] = sq_fma(row[e], row[e], p[e & 31]);
      const float ss = sq_lane_tree32(p);
      if (ss == 0.0f) {
        for (std::int64_t e = 0; e < d; ++e) out[r * d + e] = row[e];
        continue;
      }
      const float inv = 1.0f / sq_sqrt(ss);
      for (std::int64_t e = 0; e < d; ++e) out[r * d + e] = row[e] * inv;
    }
  });
}

void sim_top1(const std::byte* e, int e_dtype, const std::uint8_t* valid, std::int64_t m,
              const float* q, std::int64_t bq, std::int64_t d, std::int32_t* index, float* score) {
  parallel_chunks(bq, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t qi = lo; qi < hi; ++qi) {
      int best_i = -1;
      float best_s = 0.0f;
      for (std::int64_t r = 0; r < m; ++r) {
        if (!valid[r]) continue;
        float p[32] = {};
        for (std::int64_t k = 0; k < d; ++k)
          p[k & 31] = sq_fma(q[qi * d + k], load_e(e, r * d + k, e_dtype), p[k & 31]);
        const float s = sq_lane_tree32(p);
        if (sq_top1_better(s, static_cast<int>(r), best_s, best_i)) {
          best_s = s;
          best_i = static_cast<int>(r);
        }
      }
      index[qi] = best_i;
      score[qi] = best_s;
    }
  });
}

void sim_topk(const std::byte* e, int e_dtype, const std::uint8_t* valid, std::int64_t m,
              const float* q, std::int64_t bq, std::int64_t d, int k, std::int32_t* index,
              float* score) {
  parallel_chunks(bq, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t qi = lo; qi < hi; ++qi) {
      float ls[16];
      int li[16];
      for (int t = 0; t < 16; ++t) {
        ls[t] = 0.0f;
        li[t] = -1;
      }
      for (std::int64_t r = 0; r < m; ++r) {
        if (!valid[r]) continue;
        float p[32] = {};
        for (std::int64_t c = 0; c < d; ++c)
          p[c & 31] = sq_fma(q[qi * d + c], load_e(e, r * d + c, e_dtype), p[c & 31]);
        sq_topk_insert(ls, li, k, sq_lane_tree32(p), static_cast<int>(r));
      }
      for (int t = 0; t < k; ++t) {
        index[qi * k + t] = li[t];
        score[qi * k + t] = ls[t];
      }
    }
  });
}

}  // namespace sparq::fallback::diffusion
