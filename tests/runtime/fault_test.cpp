// Fault cases through the public API: the cache directory vanishes mid-run, a cache file claims a
// payload far larger than itself, SPARQ_KERNEL_DIR points nowhere, and two threads run real ops
// on one shared Context (context.h's rule: calls on one Context are serialized). Allocation over
// the device limit is covered in tensor_test.cpp and attention_errors_test.cpp (TooLargeOnDevice).
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "program_cache.h"
#include "runtime_test_util.h"
#include "selftest.h"

namespace sparq::test {
namespace {

std::string salt(const char* tag) {
  return fmt::format("-DSPARQ_FAULT_SALT_{}_{}_{}", tag, ::getpid(),
                     std::chrono::steady_clock::now().time_since_epoch().count());
}

void run_selftest(Context& ctx, const std::string& defines) {
  std::vector<float> a, b;
  rt::selftest_inputs(a, b);
  std::lock_guard lock(ctx.impl()->mutex);
  EXPECT_EQ(compare_bits(rt::run_selftest_kernel(runtime_of(ctx), a, b, defines),
                         rt::run_selftest_fallback(a, b)),
            "");
}

// A small Mamba conv1d: a real op with its own program, checked against the fallback.
std::vector<float> conv(Context& ctx) {
  const auto x = random_normal(2 * 8 * 32, 71), w = random_normal(8 * 4, 72);
  return mamba::causal_conv1d(ctx, {.x = ctx.upload(x, DType::f32, {2, 8, 32}),
                                    .weight = ctx.upload(w, DType::f32, {8, 4}),
                                    .silu = true})
      .out.download<float>();
}

TEST(RuntimeFault, CacheDirectoryRemovedMidRun) {
  TempDir dir("fault-vanish");
  const std::string cache = (dir.path() / "cache").string();
  auto ctx = device_context_with_cache(cache);
  ASSERT_EQ(ctx.cache_dir(), cache);
  run_selftest(ctx, salt("first"));
  EXPECT_EQ(runtime_of(ctx).programs().stats().disk_writes, 1);

  fs::remove_all(cache);  // another process (or a cleanup job) deletes the cache
  testing::internal::CaptureStderr();
  run_selftest(ctx, salt("second"));  // a new program: built, and its write fails
  run_selftest(ctx, salt("third"));   // the disk cache is now off: no second warning
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(ctx.cache_dir(), "");
  EXPECT_NE(err.find("sparq: warning: program cache directory '" + cache + "'"), std::string::npos)
      << err;
  EXPECT_EQ(err.find("sparq: warning", err.find("sparq: warning") + 1), std::string::npos) << err;
  EXPECT_EQ(compare_bits(conv(ctx),
                         [] {
                           auto cpu = fallback_context();
                           return conv(cpu);
                         }()),
            "");

  // A new Context recreates the directory and caches again.
  auto again = device_context_with_cache(cache);
  EXPECT_EQ(again.cache_dir(), cache);
  run_selftest(again, salt("fourth"));
  EXPECT_EQ(runtime_of(again).programs().stats().disk_writes, 1);
}

TEST(RuntimeFault, CacheFileClaimingAHugePayloadIsRebuiltWithoutAllocatingIt) {
  TempDir dir("fault-huge");
  const std::string s = salt("huge");
  {
    auto ctx = device_context_with_cache(dir.str());
    run_selftest(ctx, s);
  }
  fs::path file;
  for (const auto& e : fs::directory_iterator(dir.path())) file = e.path();
  ASSERT_FALSE(file.empty());
  // Header: magic[8], version u32, header size u32, key[16], payload size u64 (offset 32).
  std::vector<char> bytes(48);
  std::ifstream(file, std::ios::binary).read(bytes.data(), 48);
  const std::uint64_t huge = (std::uint64_t{1} << 32) - 16;
  std::memcpy(bytes.data() + 32, &huge, 8);
  std::ofstream(file, std::ios::binary | std::ios::trunc).write(bytes.data(), 48);

  auto ctx = device_context_with_cache(dir.str());
  run_selftest(ctx, s);
  const auto st = runtime_of(ctx).programs().stats();
  EXPECT_EQ(st.corrupt_files, 1);
  EXPECT_EQ(st.builds, 1);
  EXPECT_EQ(st.disk_writes, 1);  // replaced by a good file
  EXPECT_GT(fs::file_size(file), 48u);
}

TEST(RuntimeFault, CacheFileFormatRejectsEverySingleByteChange) {
  rt::CacheKey key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<unsigned char>(i * 7);
  const std::vector<unsigned char> payload{1, 2, 3, 4, 5};
  const auto file = rt::make_cache_file(key, payload);
  const auto got = rt::cache_file_payload(file, key);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(std::equal(got->begin(), got->end(), payload.begin(), payload.end()));
  for (std::size_t i = 0; i < file.size(); ++i) {
    auto bad = file;
    bad[i] ^= 0x40;
    EXPECT_FALSE(rt::cache_file_payload(bad, key).has_value()) << "byte " << i;
  }
  for (std::size_t n = 0; n < file.size(); ++n)  // every truncation
    EXPECT_FALSE(rt::cache_file_payload(std::span(file).first(n), key).has_value()) << n;
  auto longer = file;
  longer.push_back(0);
  EXPECT_FALSE(rt::cache_file_payload(longer, key).has_value());
}

TEST(RuntimeFault, BadKernelDirIsBuildFailedAndTheContextStaysUsable) {
  auto ctx = device_context_with_cache("");  // no disk cache: the program must be built
  {
    ScopedEnv env("SPARQ_KERNEL_DIR", "/nonexistent/sparq-kernels");
    try {
      conv(ctx);
      ADD_FAILURE() << "an op ran with SPARQ_KERNEL_DIR pointing nowhere";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::build_failed) << e.what();
      EXPECT_NE(std::string(e.what()).find("/nonexistent/sparq-kernels"), std::string::npos)
          << e.what();
    }
  }
  auto cpu = fallback_context();
  EXPECT_EQ(compare_bits(conv(ctx), conv(cpu)), "");  // nothing broken was cached
}

// Two threads run real ops on one Context, interleaved; every result equals the fallback's.
TEST(RuntimeFault, TwoThreadsRunOpsOnOneSharedContext) {
  auto ctx = device_context();
  auto cpu = fallback_context();
  const auto q = random_normal(2 * 4 * 16 * 64, 81), kv = random_normal(2 * 2 * 24 * 64, 82);
  auto attn = [&](Context& c) {
    const Tensor tq = c.upload(q, DType::f32, {2, 4, 16, 64});
    const Tensor tkv = c.upload(kv, DType::f32, {2, 2, 24, 64});
    return attention(c, tq, tkv, tkv, {.causal = true}).out.download<float>();
  };
  const auto want_attn = attn(cpu), want_conv = conv(cpu);
  std::string p0, p1;
  auto worker = [&](bool attention_first, std::string& problem) {
    try {
      for (int i = 0; i < 6 && problem.empty(); ++i) {
        const bool a = (i % 2 == 0) == attention_first;
        const std::string d =
            a ? compare_bits(attn(ctx), want_attn) : compare_bits(conv(ctx), want_conv);
        if (!d.empty()) problem = (a ? "attention: " : "conv1d: ") + d;
      }
    } catch (const std::exception& e) {
      problem = e.what();
    }
  };
  std::thread t0(worker, true, std::ref(p0)), t1(worker, false, std::ref(p1));
  t0.join();
  t1.join();
  EXPECT_EQ(p0, "");
  EXPECT_EQ(p1, "");
}

}  // namespace
}  // namespace sparq::test
