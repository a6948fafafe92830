// sparq::kv_append and make_paged_kv: writing new tokens into a paged KV cache (plain, int8 or
// NVFP4 pages). Validates shapes and the page table for the new lengths on the host, runs
// kernels_cl/attention/kv_append.cl (once for K, once for V) or its fallback, then advances
// seq_lens in place.
#include <fmt/format.h>

#include <cstring>
#include <mutex>

#include "attention_access.h"
#include "attention_kernels.h"
#include "attention_validate.h"
#include "context_impl.h"
#include "errors.h"
#include "fallback_cpu/attention/attention_fallback.h"
#include "paged_kv.h"
#include "sparq/attention.h"
#include "sparq/quest.h"

namespace sparq {

using namespace attention_detail;

namespace {

constexpr const char* kOp = "kv_append";

// `meta`: the Quest state whose kmin / kmax the launch updates (K with Quest), else null.
void run_append(ContextImpl& impl, const fallback::KvAppendProblem& p, const Tensor& seq_lens,
                const Tensor& page_table, const QuestState* meta) {
  if (!impl.device) {
    fallback::kv_append(p);
    return;
  }
  rt::DeviceRuntime& dev = *impl.device;
  const KvAppendKernelConfig cfg;
  cl::Kernel kernel = dev.kernel(cfg.source, cfg.kernel, cfg.defines());
  const cl::Buffer& dummy = p.src.storage()->buffer;
  const auto& sc = p.scales.defined() ? p.scales.storage()->buffer : dummy;
  const auto a = p.src_at, o = p.dst_at, c = p.sc_at;
  const int rows = p.batch * p.hkv * (meta ? p.npg : p.n);
  rt::set_kernel_args(
      kOp, kernel, p.src.storage()->buffer, cl_long(a.base), cl_long(a.seq), cl_long(a.head),
      cl_long(a.row), cl_int(a.dtype), p.dst.storage()->buffer, cl_long(o.base), cl_long(o.seq),
      cl_long(o.row), cl_long(o.head), cl_int(o.dtype), sc, cl_long(c.base), cl_long(c.seq),
      cl_long(c.row), cl_long(c.head), seq_lens.storage()->buffer, cl_long(seq_lens.offset()),
      page_table.storage()->buffer, cl_long(page_table.offset()), cl_long(p.max_pages),
      cl_int(p.page_size), cl_int(p.hkv), cl_int(p.n), cl_int(p.d), cl_int(rows),
      cl_int(meta != nullptr), cl_int(p.npg), meta ? meta->kmin.storage()->buffer : dummy,
      meta ? meta->kmax.storage()->buffer : dummy);
  const std::int64_t global = (rows + 63) / 64 * 64;
  dev.launch(kOp, kernel, cl::NDRange(global), cl::NDRange(64));
}

// Quest state of the cache: kmin / kmax f32 [num_pages, Hkv, D], contiguous from offset 0, made
// for this page size (the entries quest_update_metadata would write).
void check_quest(const PagedKV& kv, const QuestState& q, std::int64_t hkv, std::int64_t d,
                 const ContextImpl& impl) {
  if (q.options.page_size != kv.page_size)
    rt::fail(ErrorCode::shape_mismatch, kOp,
             "quest was built for pages of {} tokens; the cache has {}", q.options.page_size,
             kv.page_size);
  const std::vector<std::int64_t> want{kv.k_pages.dim(0), hkv, d};
  for (auto [t, name] : {std::pair{&q.kmin, "quest->kmin"}, {&q.kmax, "quest->kmax"}}) {
    detail::check_tensor_owner(kOp, name, *t, impl);
    if (t->dtype() != DType::f32 || t->shape() != want || !t->is_contiguous() || t->offset() != 0)
      rt::fail(ErrorCode::shape_mismatch, kOp, "{} is {}; expected contiguous f32[{}]", name,
               t->desc().describe(), fmt::join(want, ", "));
  }
}

}  // namespace

PagedKV make_paged_kv(Context& ctx, std::int64_t num_pages, int page_size, int hkv, int head_dim,
                      DType storage, PageLayout layout) {
  constexpr const char* op = "make_paged_kv";
  if (num_pages <= 0 || page_size <= 0 || hkv <= 0)
    rt::fail(ErrorCode::invalid_argument, op,
             "num_pages = {}, page_size = {}, hkv = {}; each must be > 0", num_pages, page_size,
             hkv);
  check_head_dim(op, "head_dim", head_dim);
  if (storage != DType::f32 && storage != DType::f16 && storage != DType::bf16 &&
      storage != DType::i8 && storage != DType::u8)
    rt::fail(ErrorCode::invalid_argument, op,
             "storage {} is not f32, f16, bf16, i8 (int8) or u8 (NVFP4)", dtype_name(storage));
  if (storage == DType::u8 && (head_dim <= 0 || head_dim % 16 != 0))
    rt::fail(ErrorCode::invalid_argument, op,
             "head_dim = {} for NVFP4 (u8) pages; expected a positive multiple of 16 (the group)",
             head_dim);
  const bool nhd = layout == PageLayout::nhd;
  std::vector<std::int64_t> shape = {num_pages, nhd ? page_size : hkv, nhd ? hkv : page_size};
  PagedKV kv;
  kv.page_size = page_size;
  kv.layout = layout;
  // Zero-filled (zero codes and scales): slots past seq_lens are never read, but a cache with
  // defined bytes can be compared, saved and hashed.
  auto zeros = [&ctx](DType t, const std::vector<std::int64_t>& s) {
    std::size_t n = dtype_size(t);
    for (auto x : s) n *= static_cast<std::size_t>(x);
    return ctx.upload(std::vector<std::byte>(n).data(), t, s);
  };
  if (storage == DType::i8) {
    kv.k_scales = zeros(DType::f32, shape);
    kv.v_scales = zeros(DType::f32, shape);
  }
  if (storage == DType::u8) {  // NVFP4: one E4M3 code per 16 elements, two E2M1 codes per byte
    std::vector<std::int64_t> sc = shape;
    sc.push_back(head_dim / 16);
    kv.k_scales = zeros(DType::u8, sc);
    kv.v_scales = zeros(DType::u8, sc);
  }
  shape.push_back(storage == DType::u8 ? head_dim / 2 : head_dim);
  kv.k_pages = zeros(storage, shape);
  kv.v_pages = zeros(storage, shape);
  return kv;
}

void kv_append(Context& ctx, PagedKV& kv, const Tensor& k_new, const Tensor& v_new,
               QuestState* quest) {
  auto& impl = *ctx.impl();
  std::lock_guard lock(impl.mutex);
  for (auto [t, name] : {std::pair{&k_new, "k_new"},
                         {&v_new, "v_new"},
                         {&kv.k_pages, "kv.k_pages"},
                         {&kv.v_pages, "kv.v_pages"},
                         {&kv.page_table, "kv.page_table"},
                         {&kv.seq_lens, "kv.seq_lens"}})
    detail::check_tensor_owner(kOp, name, *t, impl);
  for (auto [t, name] : {std::pair{&kv.k_scales, "kv.k_scales"}, {&kv.v_scales, "kv.v_scales"}})
    if (t->defined()) detail::check_tensor_owner(kOp, name, *t, impl);
  check_page_tensors(kOp, kv);
  check_float_tensor(kOp, "k_new", k_new.desc(), 4, "[B, Hkv, n, D]");
  check_float_tensor(kOp, "v_new", v_new.desc(), 4, "[B, Hkv, n, D]");
  if (k_new.shape() != v_new.shape())
    rt::fail(ErrorCode::shape_mismatch, kOp,
             "v_new has shape [{}], k_new has [{}]; they must match",
             fmt::join(v_new.shape(), ", "), fmt::join(k_new.shape(), ", "));
  const bool nhd = kv.layout == PageLayout::nhd;
  const std::int64_t batch = k_new.dim(0), hkv = k_new.dim(1), n = k_new.dim(2), d = k_new.dim(3);
  const std::int64_t slots = kv.k_pages.dim(nhd ? 1 : 2), pool_heads = kv.k_pages.dim(nhd ? 2 : 1);
  if (kv.page_size <= 0 || kv.page_size != slots)
    rt::fail(ErrorCode::shape_mismatch, kOp,
             "kv.page_size is {} but kv.k_pages has {} slots per page", kv.page_size, slots);
  if (pool_heads != hkv || page_head_dim(kv.k_pages) != d)
    rt::fail(ErrorCode::shape_mismatch, kOp,
             "k_new has {} heads of dim {}; the pages hold {} heads of dim {}", hkv, d, pool_heads,
             page_head_dim(kv.k_pages));
  check_index_tensor(kOp, "kv.page_table", kv.page_table.desc(), 2, "[B, max_pages_per_seq]");
  check_index_tensor(kOp, "kv.seq_lens", kv.seq_lens.desc(), 1, "[B]");
  if (kv.page_table.dim(0) != batch || kv.seq_lens.dim(0) != batch)
    rt::fail(ErrorCode::shape_mismatch, kOp,
             "kv.page_table has {} rows and kv.seq_lens {} entries; k_new has batch {}",
             kv.page_table.dim(0), kv.seq_lens.dim(0), batch);
  if (!kv.page_table.is_contiguous() || !kv.seq_lens.is_contiguous())
    rt::fail(ErrorCode::shape_mismatch, kOp, "kv.page_table and kv.seq_lens must be contiguous");
  const std::vector<std::int32_t> lens = download_index(kv.seq_lens);
  const std::vector<std::int32_t> table = download_index(kv.page_table);
  std::vector<std::int64_t> new_lens(lens.begin(), lens.end());
  for (auto& l : new_lens) l += n;
  const std::int64_t max_pages = kv.page_table.dim(1);
  check_page_table(kOp, table, max_pages, new_lens, kv.page_size, kv.k_pages.dim(0));
  // Two sequences writing one slot would race (and make the cache depend on the device).
  std::vector<std::int64_t> owner(static_cast<std::size_t>(kv.k_pages.dim(0)), -1);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t i = lens[b] / kv.page_size; i * kv.page_size < new_lens[b]; ++i) {
      auto& o = owner[static_cast<std::size_t>(table[b * max_pages + i])];
      if (o >= 0 && o != b)
        rt::fail(ErrorCode::invalid_argument, kOp,
                 "page {} receives tokens of sequences {} and {}; a page belongs to one sequence",
                 table[b * max_pages + i], o, b);
      o = b;
    }

  if (quest) check_quest(kv, *quest, hkv, d, impl);

  fallback::KvAppendProblem p;
  p.seq_lens = lens.data();
  p.page_table = table.data();
  p.max_pages = max_pages;
  p.batch = static_cast<int>(batch);
  p.hkv = static_cast<int>(hkv);
  p.n = static_cast<int>(n);
  p.d = static_cast<int>(d);
  p.page_size = kv.page_size;
  if (n > 0) {
    for (int which = 0; which < 2; ++which) {
      p.src = which == 0 ? k_new : v_new;
      p.dst = which == 0 ? kv.k_pages : kv.v_pages;
      p.scales = which == 0 ? kv.k_scales : kv.v_scales;
      p.src_at = access_bhld(p.src);
      p.dst_at = page_access(p.dst, nhd);
      p.sc_at = p.scales.defined() ? scale_access(p.scales, nhd) : Access{};
      const QuestState* meta = which == 0 ? quest : nullptr;
      // The fallback folds into the host arrays; a device gets the buffers (run_append).
      auto host = [&](const Tensor& t) {
        return meta && !impl.device ? reinterpret_cast<float*>(t.storage()->host.data()) : nullptr;
      };
      p.kmin = meta ? host(meta->kmin) : nullptr;
      p.kmax = meta ? host(meta->kmax) : nullptr;
      p.npg = 0;
      if (meta)
        for (std::int64_t b = 0; b < batch; ++b)
          p.npg = std::max<int>(p.npg, static_cast<int>((lens[b] + n - 1) / kv.page_size -
                                                        lens[b] / kv.page_size + 1));
      run_append(impl, p, kv.seq_lens, kv.page_table, meta);
    }
  }
  std::vector<std::int32_t> advanced(lens.size());
  for (std::size_t b = 0; b < lens.size(); ++b)
    advanced[b] = static_cast<std::int32_t>(new_lens[b]);
  const std::size_t bytes = advanced.size() * 4, at = kv.seq_lens.offset() * 4;
  if (impl.device)
    impl.device->write(kv.seq_lens.storage()->buffer, at, bytes, advanced.data(), kOp);
  else
    std::memcpy(kv.seq_lens.storage()->host.data() + at, advanced.data(), bytes);
}

}  // namespace sparq
