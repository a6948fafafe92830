// Program cache: miss then hit (memory and disk) with identical kernel results, corrupt and
// foreign files rebuilt and replaced, unusable directories tolerated, two processes at once.
#include "program_cache.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "runtime_test_util.h"
#include "selftest.h"

namespace sparq::test {
namespace {

// A define no other test uses, so the program is a real miss in a fresh directory even if the
// driver keeps its own cache; the kernel ignores it.
std::string unique_salt(const char* tag) {
  return fmt::format("-DSPARQ_TEST_SALT_{}_{}_{}", tag, ::getpid(),
                     std::chrono::steady_clock::now().time_since_epoch().count());
}

// Runs the self-test kernel built with `defines`; the outputs must equal the fallback's.
std::vector<float> run_and_check(Context& ctx, const std::string& defines) {
  std::vector<float> a, b;
  rt::selftest_inputs(a, b);
  std::lock_guard lock(ctx.impl()->mutex);
  auto got = rt::run_selftest_kernel(runtime_of(ctx), a, b, defines);
  EXPECT_EQ(compare_bits(got, rt::run_selftest_fallback(a, b)), "");
  return got;
}

std::vector<fs::path> cache_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  return out;
}

double ms_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

TEST(RuntimeProgramCache, BuildOptionsAreExactAndNeverFastMath) {
  const std::string opts = rt::ProgramCache::build_options("-DHEAD_DIM=64");
  EXPECT_NE(opts.find("-cl-fp32-correctly-rounded-divide-sqrt"), std::string::npos);
  EXPECT_NE(opts.find("-cl-std=CL1.2"), std::string::npos);
  EXPECT_NE(opts.find("-DHEAD_DIM=64"), std::string::npos);
  for (const char* bad : {"fast-relaxed", "mad-enable", "unsafe-math", "finite-math", "denorms"})
    EXPECT_EQ(opts.find(bad), std::string::npos) << bad;
}

TEST(RuntimeProgramCache, MissThenMemoryHitThenDiskHitSameBits) {
  TempDir dir("cache-hit");
  const std::string salt = unique_salt("hit");
  auto ctx = device_context_with_cache(dir.str());
  ASSERT_EQ(ctx.cache_dir(), dir.str());
  auto& cache = runtime_of(ctx).programs();
  const double build_ms = ms_of([&] { cache.get(rt::kSelftestSource, salt); });
  const double memory_ms = ms_of([&] { cache.get(rt::kSelftestSource, salt); });
  EXPECT_LT(memory_ms, build_ms);
  auto stats = cache.stats();
  EXPECT_EQ(stats.builds, 1);
  EXPECT_EQ(stats.memory_hits, 1);
  EXPECT_EQ(stats.disk_writes, 1);
  ASSERT_EQ(cache_files(dir.path()).size(), 1u);  // one file, no temp file left behind
  const auto first = run_and_check(ctx, salt);

  auto again = device_context_with_cache(dir.str());
  const double disk_ms =
      ms_of([&] { runtime_of(again).programs().get(rt::kSelftestSource, salt); });
  stats = runtime_of(again).programs().stats();
  EXPECT_EQ(stats.disk_hits, 1);
  EXPECT_EQ(stats.builds, 0);
  EXPECT_EQ(stats.corrupt_files, 0);
  EXPECT_EQ(compare_bits(run_and_check(again, salt), first), "");
  RecordProperty("build_ms", std::to_string(build_ms));
  RecordProperty("disk_hit_ms", std::to_string(disk_ms));
}

// One valid cache file is built once, then copied into a fresh directory per kind of damage; a
// new Context must rebuild the program, count the file as corrupt, replace it, and the
// replacement must then be hit. (One real build: rebuilding the same source is cheap.)
TEST(RuntimeProgramCache, CorruptOrForeignFileIsRebuiltAndReplaced) {
  TempDir pristine("cache-pristine");
  const std::string salt = unique_salt("corrupt");
  {
    auto ctx = device_context_with_cache(pristine.str());
    runtime_of(ctx).programs().get(rt::kSelftestSource, salt);
  }
  const auto files = cache_files(pristine.path());
  ASSERT_EQ(files.size(), 1u);
  const std::map<std::string, std::function<void(const fs::path&)>> damages = {
      {"payload byte flipped",
       [](const fs::path& f) {
         std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
         io.seekg(-1, std::ios::end);
         char c = 0;
         io.read(&c, 1);
         io.seekp(-1, std::ios::end);
         c = static_cast<char>(c ^ 0x5a);
         io.write(&c, 1);
       }},
      {"truncated", [](const fs::path& f) { fs::resize_file(f, fs::file_size(f) / 2); }},
      {"foreign file",
       [](const fs::path& f) {
         std::ofstream(f, std::ios::binary | std::ios::trunc) << "not a sparq cache file";
       }},
      {"empty file",
       [](const fs::path& f) { std::ofstream(f, std::ios::binary | std::ios::trunc); }},
  };
  for (const auto& [tag, damage] : damages) {
    SCOPED_TRACE(tag);
    TempDir dir("cache-corrupt");
    const fs::path file = dir.path() / files[0].filename();
    fs::copy_file(files[0], file);
    damage(file);

    auto ctx = device_context_with_cache(dir.str());
    run_and_check(ctx, salt);
    auto stats = runtime_of(ctx).programs().stats();
    EXPECT_EQ(stats.corrupt_files, 1);
    EXPECT_EQ(stats.builds, 1);
    EXPECT_EQ(stats.disk_writes, 1);

    auto after = device_context_with_cache(dir.str());
    runtime_of(after).programs().get(rt::kSelftestSource, salt);
    stats = runtime_of(after).programs().stats();
    EXPECT_EQ(stats.disk_hits, 1);
    EXPECT_EQ(stats.corrupt_files, 0);
    EXPECT_EQ(cache_files(dir.path()).size(), 1u);
  }
}

// Tests run as root, for whom chmod does not block writes: use paths that no one can create.
TEST(RuntimeProgramCache, UnusableDirectoryMeansNoDiskCacheAndOneWarning) {
  TempDir dir("cache-unusable");
  const fs::path regular_file = dir.path() / "a-file";
  std::ofstream(regular_file) << "x";
  const std::string salt = unique_salt("unusable");
  for (const std::string& bad :
       {(regular_file / "cache").string(), std::string("/proc/sparq-cache")}) {
    SCOPED_TRACE(bad);
    testing::internal::CaptureStderr();
    auto ctx = device_context_with_cache(bad);
    auto ctx2 = device_context_with_cache(bad);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(ctx.cache_dir(), "");
    EXPECT_EQ(ctx2.cache_dir(), "");
    std::size_t warnings = 0;
    for (auto p = err.find("sparq: warning"); p != std::string::npos;
         p = err.find("sparq: warning", p + 1))
      ++warnings;
    EXPECT_EQ(warnings, 1u) << err;
    EXPECT_NE(err.find(bad), std::string::npos) << err;
    run_and_check(ctx, salt);
    EXPECT_EQ(runtime_of(ctx).programs().stats().disk_writes, 0);
  }
}

TEST(RuntimeProgramCache, StaleTempFilesOfDeadWritersAreRemoved) {
  TempDir dir("cache-stale");
  const fs::path stale = dir.path() / "0123.clbin.tmp.99999.abc.0";
  const fs::path fresh = dir.path() / "0123.clbin.tmp.99999.abc.1";
  const fs::path other = dir.path() / "unrelated-old-file";
  for (const auto& p : {stale, fresh, other}) std::ofstream(p) << "partial";
  const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(2);
  fs::last_write_time(stale, old_time);
  fs::last_write_time(other, old_time);
  auto ctx = device_context_with_cache(dir.str());
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));  // may belong to a writer that is still running
  EXPECT_TRUE(fs::exists(other));  // not ours to delete
}

// Child role: wait for the parent's start signal, then build the shared program and check it.
TEST(RuntimeHelper, BuildIntoSharedCache) {
  if (!helper_role_is("shared_cache")) GTEST_SKIP() << "helper of RuntimeProgramCache.TwoProcesses";
  const std::string dir = std::getenv("SPARQ_TEST_HELPER_DIR");
  const std::string salt = std::getenv("SPARQ_TEST_HELPER_SALT");
  const fs::path go = fs::path(dir).parent_path() / "go";
  for (int i = 0; i < 6000 && !fs::exists(go); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto ctx = device_context_with_cache(dir);
  ASSERT_EQ(ctx.cache_dir(), dir);
  run_and_check(ctx, salt);
}

TEST(RuntimeProgramCache, TwoProcessesBuildingAtOnceBothSucceed) {
  TempDir root("cache-two-procs");
  const fs::path dir = root.path() / "cache";
  const std::string salt = unique_salt("two");
  const std::map<std::string, std::string> env = {{"SPARQ_TEST_HELPER", "shared_cache"},
                                                  {"SPARQ_TEST_HELPER_DIR", dir.string()},
                                                  {"SPARQ_TEST_HELPER_SALT", salt}};
  ChildTest a("RuntimeHelper.BuildIntoSharedCache", env, root.path() / "a.log");
  ChildTest b("RuntimeHelper.BuildIntoSharedCache", env, root.path() / "b.log");
  std::ofstream(root.path() / "go") << "go";
  ASSERT_EQ(a.wait(), 0) << a.output();
  ASSERT_EQ(b.wait(), 0) << b.output();
  EXPECT_NE(a.output().find("[  PASSED  ] 1 test"), std::string::npos) << a.output();
  EXPECT_NE(b.output().find("[  PASSED  ] 1 test"), std::string::npos) << b.output();
  // Exactly one complete file remains (both renamed onto the same name; no temp files), and it
  // is a valid entry for a third process.
  ASSERT_EQ(cache_files(dir).size(), 1u);
  auto ctx = device_context_with_cache(dir.string());
  run_and_check(ctx, salt);
  EXPECT_EQ(runtime_of(ctx).programs().stats().disk_hits, 1);
}

}  // namespace
}  // namespace sparq::test
