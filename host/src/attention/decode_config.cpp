// The bandwidth decode kernels' speed knobs (attention_kernels.h). None of them changes an
// operation or its order, so every choice gives the same bits.
#include <algorithm>
#include <string>

#include "attention_kernels.h"
#include "errors.h"
#include "tuning_env.h"

namespace sparq::attention_detail {

DecodeBwConfig DecodeBwConfig::normalized() const {
  DecodeBwConfig c = *this;
  while (c.cols < 4 && c.head_dim / c.cols > c.threads) c.cols *= 2;
  while (c.cols > 1 && c.threads / (c.head_dim / c.cols) > c.rows) c.cols /= 2;
  return c;
}

DecodeTuning DecodeTuning::from_env(bool is_nvidia, bool inline_ptx) {
  DecodeTuning t;
  rt::for_each_tuning_item(
      "SPARQ_TUNE_DECODE", [&](const std::string& key, long value, const std::string& item) {
        if (key == "kernel" && value >= 0 && value <= 2) {
          t.kernel = static_cast<int>(value);
          t.set_kernel = true;
        } else if (key == "rows" && (value == 0 || value == 4 || value == 8))
          t.rows = static_cast<int>(value);
        else if (key == "threads" && (value == 64 || value == 128 || value == 256)) {
          t.threads = static_cast<int>(value);
          t.set_threads = true;
        } else if (key == "cols" && (value == 1 || value == 2 || value == 4)) {
          t.cols = static_cast<int>(value);
          t.set_cols = true;
        } else if (key == "cvt" && value >= 0 && value <= 2) {
          t.magic_i8 = static_cast<int>(value == 2 && !inline_ptx ? 1 : value);
          t.set_cvt = true;
        } else if (key == "unroll" && (value == 0 || value == 1))
          t.unroll = static_cast<int>(value);
        else if (key == "async" && (value == 0 || value == 1)) {
          t.async = value == 1;
          t.set_async = true;
        } else if (key == "span" && value >= 64 && value <= 4096 && (value & (value - 1)) == 0)
          t.span = static_cast<int>(value);
        else if (key == "kpi" && (value == 1 || value == 2 || value == 4))
          t.kpi = static_cast<int>(value);
        else if (key == "kloc" && (value == 0 || value == 1))
          t.kloc = value == 1;
        else if (key == "regs" && value >= 0 && value <= 255) {
          t.nv_max_regs = is_nvidia ? static_cast<int>(value) : 0;
          t.set_regs = true;
        } else if (key == "verbose" && (value == 0 || value == 1))
          t.nv_verbose = is_nvidia && value == 1;
        else
          rt::fail(ErrorCode::invalid_argument, "attention",
                   "SPARQ_TUNE_DECODE item '{}' is not kernel=0|1|2, rows=0|4|8, "
                   "threads=64|128|256, cols=1|2|4, cvt=0|1|2, unroll=0|1, async=0|1, "
                   "span=64..4096 (a power of two), kpi=1|2|4, kloc=0|1, regs=0..255 or "
                   "verbose=0|1",
                   item);
      });
  return t;
}

DecodeBwConfig DecodeTuning::bw(int head_dim, int element_bytes, std::int64_t rows_needed,
                                bool is_gpu, bool cp_async) const {
  DecodeBwConfig c;
  c.head_dim = head_dim;
  c.element_bytes = element_bytes;
  c.rows = rows != 0 ? rows : rows_needed <= 4 ? 4 : 8;
  c.threads = threads;
  c.cols = cols;
  c.magic_i8 = magic_i8;
  c.unroll = unroll < 0 ? is_gpu : unroll == 1;
  c.async = async;
  c.async_ptx = async && cp_async;
  c.nv_max_regs = nv_max_regs;
  c.nv_verbose = nv_verbose;
  return c.normalized();
}

std::int64_t DecodeFlatConfig::local_bytes() const {
  const std::int64_t rows = bw.rows, dh = bw.head_dim;
  const std::int64_t vr = dh * bw.element_bytes / 16;   // 16-byte vectors per K/V row
  return rows * dh * 4                                  // q'
         + (kloc ? 2 : 1) * span * ((vr + 1) * 16 + 4)  // V (and K) rows, padded; scales
         + span * rows * 4                              // scores / probabilities
         + std::max(rows * (span / 64), std::int64_t{bw.threads}) * 4  // partial tile maxima
         + rows * (span / 64) * 4 * 4 + rows * 4;                      // statistics, running max
}

DecodeFlatConfig DecodeFlatConfig::fitted(std::int64_t local_mem) const {
  DecodeFlatConfig f = *this;
  while (f.span > 64 && f.local_bytes() > local_mem) f.span /= 2;
  return f;
}

DecodeRoute route_decode(const DecodeTuning& env, int head_dim, int element_bytes,
                         std::int64_t rows_needed, bool is_gpu, bool nvidia_ptx_async,
                         std::int64_t local_mem) {
  DecodeRoute r;
  DecodeTuning t = env.for_call(element_bytes, nvidia_ptx_async);
  if (head_dim == 256) {
    t = env;
    t.kernel = 2;  // SPARQ_TUNE_DECODE kernel=0|1 does not apply: their tiles do not fit
    if (!env.set_threads) t.threads = 128;
    if (!env.set_cols) t.cols = 1;
    if (!env.set_cvt && nvidia_ptx_async && element_bytes == 1) t.magic_i8 = 2;
    local_mem = std::min<std::int64_t>(local_mem, 48 * 1024);
  }
  r.tuning = t;
  if (t.kernel == 2) {
    r.flat = t.flat(head_dim, element_bytes, rows_needed, is_gpu, nvidia_ptx_async, local_mem);
    r.kernel = r.flat.local_bytes() <= local_mem ? 2 : -1;
  } else if (t.kernel == 1) {
    r.bw = t.bw(head_dim, element_bytes, rows_needed, is_gpu, nvidia_ptx_async);
    r.kernel = 1;
  } else {
    r.kernel = 0;
  }
  return r;
}

}  // namespace sparq::attention_detail
