#pragma OPENCL FP_CONTRACT OFF
// kv_append.cl — writes new K (or V) tokens into a paged KV cache (sparq::kv_append; launched
// once for K and once for V), optionally updating Quest's page metadata of K in the same kernel.
// Mirror: fallback_cpu/attention/kv_append.cpp.
//
// Token t of sequence b, head h goes to position pos = seq_lens[b] + t (the lengths before the
// append), page page_table[b][pos / page_size], slot pos % page_size. Each element of its row is
// widened exactly from its stored dtype (attention_common.h), then
//   f32 pages: stored as is;  f16/bf16 pages: rounded to nearest even;
//   i8 pages (quant/int8_codec.h, specs/fp4_attention.md §5): amax = max over the row of the
//     |x| bit patterns; scale = amax / 127 (correctly rounded); code = sq_i8_code(x, scale,
//     -127); the row's scale is stored beside the codes.
//   NVFP4 pages (u8, SQ_DT_FP4): each group of 16 elements [16g, 16g + 16) of the row is
//     quantized by quant16 (nvfp4/fp4_math.h sq_fp4_quant16, specs/fp4_attention.md §2.3: the
//     group's E4M3 scale code of amax / 6, E2M1 codes RNE of x / scale), exactly as
//     fp4_quantize_rows quantizes that row: D / 2 code bytes, D / 16 scale codes.
// Every step is exact or one rounding of one value, so the bytes written are the same on every
// device.
//
// meta == 0: work-item r = (b * Hkv + h) * n + t writes one row.
// meta == 1 (Quest metadata, K only): work-item r = (b * Hkv + h) * npg + i handles the i-th
// page the append touches for (b, h): it writes that page's new rows in slot order, and after
// each row, for every d, folds the row's stored element x (kv_pages.h sq_kv_element: the
// dequantized value the cache now holds) into the page's entry of kmin / kmax [num_pages, Hkv,
// D]: slot 0 starts the entry (kmin = kmax = x), a later slot continues it (kmin = sq_mn(kmin,
// x), kmax = sq_mx(kmax, x)). That is Quest's metadata fold (sparse/quest_math.h) over the
// page's tokens ascending, continued from the stored entry, so the entries equal those
// quest_update_metadata computes after the append, bit for bit. Macros: none.
#include "attention/attention_common.h"
#include "nvfp4/fp4_math.h"
#include "quant/int8_codec.h"

// Row `at` of src (dtype s_dt) into the page row `to` of dst (dtype d_dt), scales at `so`.
static void append_row(gbytes src, long at, int s_dt, __global uchar* dst, long to, int d_dt,
                       __global uchar* sc, long so, int d) {
  if (d_dt == SQ_DT_FP4) {
    for (int g = 0; g < d / SQ_FP4_GROUP; ++g) {
      float x[SQ_FP4_GROUP];
      uchar bytes[SQ_FP4_GROUP / 2];
      for (int e = 0; e < SQ_FP4_GROUP; ++e)
        x[e] = sq_att_load1(src, at + g * SQ_FP4_GROUP + e, s_dt);
      sc[so + g] = (uchar)sq_fp4_quant16(x, bytes);
      for (int e = 0; e < SQ_FP4_GROUP / 2; ++e) dst[to + g * (SQ_FP4_GROUP / 2) + e] = bytes[e];
    }
    return;
  }
  if (d_dt != SQ_DT_I8) {
    for (int e = 0; e < d; ++e) sq_att_store1(dst, to + e, d_dt, sq_att_load1(src, at + e, s_dt));
    return;
  }
  uint amax = 0;
  for (int e = 0; e < d; ++e) amax = max(amax, sq_i8_absbits(sq_att_load1(src, at + e, s_dt)));
  const float scale = sq_i8_scale(amax);
  __global char* codes = (__global char*)dst;
  for (int e = 0; e < d; ++e)
    codes[to + e] = (char)sq_i8_code(sq_att_load1(src, at + e, s_dt), scale, -127.0f);
  ((__global float*)sc)[so] = scale;
}

__kernel void kv_append(gbytes src, long s_off, long s_sb, long s_sh, long s_st, int s_dt,
                        __global uchar* dst, long d_off, long d_sp, long d_ss, long d_sh, int d_dt,
                        __global uchar* sc, long c_off, long c_sp, long c_ss, long c_sh,
                        __global const int* seq_lens, long sl_off, __global const int* pages,
                        long pt_off, long max_pages, int page_size, int hkv, int n, int d,
                        int rows, int meta, int npg, __global float* kmin, __global float* kmax) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int per = meta ? npg : n;  // work-items per (b, h)
  const int h = (r / per) % hkv, b = r / (per * hkv);
  const int len = seq_lens[sl_off + b];
  // Tokens [t0, t1) of this work-item: one token, or the new tokens of one page.
  int t0 = r % per, t1 = t0 + 1;
  if (meta) {
    const long pg = len / page_size + t0;
    t0 = (int)max((long)len, pg * page_size) - len;
    t1 = (int)min((long)len + n, (pg + 1) * page_size) - len;
  }
  for (int t = t0; t < t1; ++t) {
    const long at = s_off + b * s_sb + h * s_sh + t * s_st;
    const int pos = len + t;
    const long page = pages[pt_off + b * max_pages + pos / page_size];
    const long slot = pos % page_size;
    const long to = d_off + page * d_sp + slot * d_ss + h * d_sh;
    const long so = c_off + page * c_sp + slot * c_ss + h * c_sh;
    append_row(src, at, s_dt, dst, to, d_dt, sc, so, d);
    if (!meta) continue;
    const long e0 = (page * hkv + h) * d;
    for (int e = 0; e < d; ++e) {
      const float x = sq_kv_element(dst, to, d_dt, e, sc, so);
      kmin[e0 + e] = slot == 0 ? x : sq_mn(kmin[e0 + e], x);
      kmax[e0 + e] = slot == 0 ? x : sq_mx(kmax[e0 + e], x);
    }
  }
}
