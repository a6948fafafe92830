// Context: thread safety (one shared Context, two Contexts), profiling, launch errors, names.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "errors.h"
#include "runtime_test_util.h"
#include "selftest.h"

namespace sparq::test {
namespace {

// What an op does on a Context: lock it, then enqueue. Returns "" or the first problem.
std::string run_selftest_op(Context& ctx, const std::vector<float>& a, const std::vector<float>& b,
                            const std::vector<float>& want) {
  std::vector<float> got;
  {
    std::lock_guard lock(ctx.impl()->mutex);
    got = rt::run_selftest_kernel(runtime_of(ctx), a, b);
  }
  return compare_bits(got, want);
}

// Each thread uploads its own data, runs a kernel and downloads, many times; any interleaving
// bug shows up as another thread's data or a failed OpenCL call.
void hammer(Context& ctx, int thread_id, std::string& problem) {
  std::vector<float> a, b;
  rt::selftest_inputs(a, b);
  const auto want = rt::run_selftest_fallback(a, b);
  try {
    for (int iter = 0; iter < 20 && problem.empty(); ++iter) {
      std::vector<float> mine(257);
      for (std::size_t i = 0; i < mine.size(); ++i)
        mine[i] = static_cast<float>(thread_id * 100000 + iter * 1000) + static_cast<float>(i);
      auto t = ctx.upload(mine, DType::f32, {257});
      if (iter % 5 == 0) problem = run_selftest_op(ctx, a, b, want);
      ctx.finish();
      if (t.download<float>() != mine)
        problem = "thread " + std::to_string(thread_id) + ": data mixed up";
    }
  } catch (const std::exception& e) {
    problem = e.what();
  }
}

TEST(RuntimeContext, TwoThreadsShareOneContext) {
  auto ctx = device_context();
  std::string p0, p1;
  std::thread t0([&] { hammer(ctx, 0, p0); });
  std::thread t1([&] { hammer(ctx, 1, p1); });
  t0.join();
  t1.join();
  EXPECT_EQ(p0, "");
  EXPECT_EQ(p1, "");
}

TEST(RuntimeContext, TwoThreadsWithTwoContexts) {
  std::string p0, p1, p2;
  auto own_context = [](int id, std::string& problem) {
    try {
      auto ctx = device_context();
      hammer(ctx, id, problem);
    } catch (const std::exception& e) {
      problem = e.what();
    }
  };
  std::thread t0(own_context, 0, std::ref(p0));
  std::thread t1(own_context, 1, std::ref(p1));
  std::thread t2([&] {  // and a fallback Context beside them
    try {
      auto ctx = fallback_context();
      for (int i = 0; i < 50; ++i) {
        std::vector<float> mine(100, static_cast<float>(i));
        if (ctx.upload(mine, DType::f32, {100}).download<float>() != mine) p2 = "mixed up";
      }
    } catch (const std::exception& e) {
      p2 = e.what();
    }
  });
  t0.join();
  t1.join();
  t2.join();
  EXPECT_EQ(p0, "");
  EXPECT_EQ(p1, "");
  EXPECT_EQ(p2, "");
}

TEST(RuntimeContext, KernelArgumentErrorsAreSparqErrors) {
  auto ctx = device_context();
  auto& rt = runtime_of(ctx);
  cl::Kernel k = rt.kernel(rt::kSelftestSource, rt::kSelftestKernel, "");
  cl::Buffer buf = rt.allocate(16, "test");
  const double wrong_size = 1.0;  // argument 3 is a uint
  try {
    rt::set_kernel_args("my_op", k, buf, buf, buf, wrong_size);
    ADD_FAILURE() << "a double accepted for a uint argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::opencl_error);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("my_op: setting argument 3 of kernel 'sparq_selftest'"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("CL_INVALID_ARG_SIZE"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(rt::set_kernel_args("my_op", k, buf, buf, buf, cl_uint{4}));
}

TEST(RuntimeContext, ProfilingRecordsKernelTimes) {
  // The default cache dir (the shared test cache under ctest): a disk hit after the first run.
  auto ctx = Context::create({.device = test_device_selector(), .profile = true});
  std::vector<float> a, b;
  rt::selftest_inputs(a, b);
  EXPECT_EQ(run_selftest_op(ctx, a, b, rt::run_selftest_fallback(a, b)), "");
  const auto times = ctx.kernel_times();
  ASSERT_EQ(times.size(), 1u);
  EXPECT_EQ(times[0].op, "selftest");
  EXPECT_EQ(times[0].kernel, rt::kSelftestKernel);
  EXPECT_GE(times[0].time_ms, 0.0);
  ctx.clear_kernel_times();
  EXPECT_TRUE(ctx.kernel_times().empty());
  EXPECT_TRUE(fallback_context().kernel_times().empty());
}

TEST(RuntimeContext, LaunchErrorsNameTheOpAndTheOpenCLError) {
  auto ctx = device_context();
  auto& rt = runtime_of(ctx);
  cl::Kernel unset(rt.programs().get(rt::kSelftestSource, ""), rt::kSelftestKernel);  // no args
  try {
    rt.launch("my_op", unset, cl::NDRange(64), cl::NDRange(64));
    ADD_FAILURE() << "launch without arguments succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::opencl_error);
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("my_op: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("sparq_selftest"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CL_INVALID_KERNEL_ARGS"), std::string::npos) << msg;
  }
  try {
    rt.kernel(rt::kSelftestSource, "no_such_kernel", "");
    ADD_FAILURE() << "unknown kernel name accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_kernel"), std::string::npos) << e.what();
  }
}

TEST(RuntimeContext, DeviceInfoAndNames) {
  auto ctx = device_context();
  const auto& info = ctx.device();
  EXPECT_EQ(info.backend, Backend::opencl);
  EXPECT_FALSE(info.name.empty());
  EXPECT_GE(info.local_mem_bytes, 32u * 1024);
  EXPECT_GT(info.max_alloc_bytes, 0u);
  EXPECT_EQ(rt::device_selftest(runtime_of(ctx)), "");
  EXPECT_EQ(fallback_context().device().backend, Backend::fallback);
  EXPECT_STREQ(rt::cl_error_name(-5), "CL_OUT_OF_RESOURCES");
  EXPECT_STREQ(rt::cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
  EXPECT_STREQ(rt::cl_error_name(-9999), "CL_UNKNOWN_ERROR(-9999)");
  EXPECT_STREQ(error_code_name(ErrorCode::too_large), "too_large");
  const Error e(ErrorCode::io_error, "x");
  EXPECT_EQ(e.code(), ErrorCode::io_error);
  EXPECT_STREQ(e.what(), "x");
  EXPECT_STRNE(version(), "");
}

TEST(RuntimeContext, DefaultCacheDirFollowsEnvironment) {
  {
    ScopedEnv a("SPARQ_CACHE_DIR", "/x/sparq-cache");
    EXPECT_EQ(default_cache_dir(), "/x/sparq-cache");
  }
  ScopedEnv a("SPARQ_CACHE_DIR", std::nullopt);
  {
    ScopedEnv b("XDG_CACHE_HOME", "/y/cache");
    EXPECT_EQ(default_cache_dir(), "/y/cache/sparq");
  }
  ScopedEnv b("XDG_CACHE_HOME", std::nullopt);
  ScopedEnv c("HOME", "/home/z");
  EXPECT_EQ(default_cache_dir(), "/home/z/.cache/sparq");
}

}  // namespace
}  // namespace sparq::test
