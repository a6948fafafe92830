// Fuzz target: attention_paged's page-table and sequence-length validation, on the fallback.
// Hostile tables (out-of-range, negative, too few pages, huge lengths), page sizes and layouts must
// give sparq::Error or a result; never a crash or a read outside the pages.
#include "fuzz_input.h"
#include "sparq/sparq.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sparq;
  static Context ctx = Context::create({.device = "fallback"});
  fuzz::Input in(data, size);
  const std::int64_t B = in.range(1, 3), Hkv = in.range(1, 2), hmul = in.range(1, 2);
  const std::int64_t D = in.range(1, 16), num_pages = in.range(1, 6);
  const int page_size = static_cast<int>(in.boolean() ? in.range(1, 8) : in.dim(8));
  const std::int64_t slots = in.range(1, 8);  // the pages' real slot count (may differ)
  const PageLayout layout = in.boolean() ? PageLayout::nhd : PageLayout::hnd;
  const std::int64_t max_pages = in.range(0, 4), Lq = in.range(1, 3);

  std::vector<std::int32_t> table(static_cast<std::size_t>(B * max_pages));
  for (auto& t : table)
    t = in.boolean() ? static_cast<std::int32_t>(in.range(-1, num_pages)) : in.raw<std::int32_t>();
  std::vector<std::int32_t> lens(static_cast<std::size_t>(B));
  for (auto& l : lens)
    l = in.boolean() ? static_cast<std::int32_t>(in.range(0, 40)) : in.raw<std::int32_t>();

  const std::vector<std::int64_t> page_shape =
      layout == PageLayout::nhd ? std::vector<std::int64_t>{num_pages, slots, Hkv, D}
                                : std::vector<std::int64_t>{num_pages, Hkv, slots, D};
  const std::vector<float> pages(static_cast<std::size_t>(num_pages * slots * Hkv * D), 0.5f);
  const std::vector<float> q(static_cast<std::size_t>(B * Hkv * hmul * Lq * D), 0.25f);
  try {
    PagedKV kv{.k_pages = ctx.upload(pages, DType::f32, page_shape),
               .v_pages = ctx.upload(pages, DType::f32, page_shape),
               .page_table = ctx.upload(table, DType::i32, {B, max_pages}),
               .seq_lens = ctx.upload(lens, DType::i32, {B}),
               .page_size = page_size,
               .layout = layout};
    const Tensor tq = ctx.upload(q, DType::f32, {B, Hkv * hmul, Lq, D});
    const AttentionResult r =
        attention_paged(ctx, tq, kv, {.causal = in.boolean(), .return_lse = true});
    (void)r.out.download<float>();
  } catch (const Error&) {
  }
  return 0;
}
