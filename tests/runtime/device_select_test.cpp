// Device choice: the capability rule, SPARQ_DEVICE parsing, refusals, the default order, and the
// machine without any OpenCL platform.
#include "device_select.h"

#include <gtest/gtest.h>

#include "runtime_test_util.h"

namespace sparq::test {
namespace {

rt::DeviceCaps good_caps() {
  rt::DeviceCaps caps;
  caps.opencl_c_version = "OpenCL C 1.2 test";
  caps.single_fp_config = CL_FP_DENORM | CL_FP_INF_NAN | CL_FP_ROUND_TO_NEAREST | CL_FP_FMA |
                          CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT;
  caps.local_mem_bytes = 48 * 1024;
  return caps;
}

TEST(RuntimeDeviceSelect, CapabilityRuleAcceptsCapableDevice) {
  EXPECT_EQ(rt::capability_problem(good_caps()), "");
  auto caps = good_caps();
  caps.opencl_c_version = "OpenCL C 3.0 CUDA";
  caps.local_mem_bytes = 32 * 1024;  // the minimum itself is enough
  EXPECT_EQ(rt::capability_problem(caps), "");
}

TEST(RuntimeDeviceSelect, CapabilityRuleNamesEachMissingCapability) {
  auto caps = good_caps();
  caps.single_fp_config &= ~CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT;
  EXPECT_NE(rt::capability_problem(caps).find("CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT"),
            std::string::npos);

  caps = good_caps();
  caps.single_fp_config &= ~CL_FP_DENORM;
  EXPECT_NE(rt::capability_problem(caps).find("CL_FP_DENORM"), std::string::npos);

  caps = good_caps();
  caps.opencl_c_version = "OpenCL C 1.1 old";
  EXPECT_NE(rt::capability_problem(caps).find("OpenCL C 1.1 < 1.2"), std::string::npos);

  caps = good_caps();
  caps.local_mem_bytes = 16 * 1024;
  EXPECT_NE(rt::capability_problem(caps).find("local memory 16 KiB < 32 KiB"), std::string::npos);

  caps = good_caps();
  caps.compiler_available = false;
  caps.single_fp_config = 0;
  const std::string all = rt::capability_problem(caps);
  EXPECT_NE(all.find("compiler"), std::string::npos) << all;
  EXPECT_NE(all.find("CL_FP_DENORM"), std::string::npos) << all;
  EXPECT_NE(all.find("CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT"), std::string::npos) << all;
}

// A synthetic machine: a refused GPU, a usable PoCL CPU device, a usable non-PoCL CPU device.
std::vector<rt::DeviceCandidate> fake_machine() {
  std::vector<rt::DeviceCandidate> all(3);
  all[0].platform_index = 0;
  all[0].name = "NVIDIA Fake GPU";
  all[0].platform_name = "NVIDIA CUDA";
  all[0].is_gpu = true;
  all[0].problem = "no correctly rounded fp32 divide/sqrt";
  all[1].platform_index = 1;
  all[1].name = "pthread-fake-cpu";
  all[1].platform_name = "Portable Computing Language";
  all[1].is_pocl = true;
  all[2].platform_index = 2;
  all[2].name = "Vendor CPU Runtime";
  all[2].platform_name = "Vendor";
  return all;
}

ErrorCode code_of(const std::vector<rt::DeviceCandidate>& all, const std::string& spec,
                  std::string* message = nullptr) {
  try {
    rt::select_among(all, spec, "SPARQ_DEVICE=" + spec);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "'" << spec << "' was accepted";
  return ErrorCode::internal;
}

TEST(RuntimeDeviceSelect, DefaultOrderSkipsRefusedGpuThenPrefersPocl) {
  auto all = fake_machine();
  // Default: the GPU is refused, so PoCL; the device handles are null in the fake list, so
  // identify the pick by which flags lead to it: removing PoCL makes the default the fallback
  // (a non-PoCL CPU device is never a default).
  EXPECT_FALSE(rt::select_among(all, "", "default").fallback);
  all.erase(all.begin() + 1);
  EXPECT_TRUE(rt::select_among(all, "", "default").fallback);
  EXPECT_TRUE(rt::select_among({}, "", "default").fallback);
}

TEST(RuntimeDeviceSelect, ExplicitRefusedDeviceThrowsDeviceRefusedWithReason) {
  const auto all = fake_machine();
  std::string msg;
  EXPECT_EQ(code_of(all, "gpu", &msg), ErrorCode::device_refused);
  EXPECT_NE(msg.find("no correctly rounded fp32 divide/sqrt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NVIDIA Fake GPU"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SPARQ_DEVICE=gpu"), std::string::npos) << msg;
  EXPECT_EQ(code_of(all, "0:0"), ErrorCode::device_refused);
  EXPECT_EQ(code_of(all, "fake gpu"), ErrorCode::device_refused);  // name substring, any case
}

TEST(RuntimeDeviceSelect, SelectorsMatchingNothingListWhatExists) {
  const auto all = fake_machine();
  std::string msg;
  EXPECT_EQ(code_of(all, "no-such-device", &msg), ErrorCode::no_device);
  EXPECT_NE(msg.find("pthread-fake-cpu"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[0:0]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("refused"), std::string::npos) << msg;
  EXPECT_EQ(code_of(all, "3:0"), ErrorCode::no_device);
  EXPECT_EQ(code_of(all, "1:1"), ErrorCode::no_device);
  EXPECT_EQ(code_of({}, "pocl", &msg), ErrorCode::no_device);
  EXPECT_NE(msg.find("no OpenCL device found"), std::string::npos) << msg;
  EXPECT_EQ(code_of({}, "gpu"), ErrorCode::no_device);
}

TEST(RuntimeDeviceSelect, SelectorsAreCaseInsensitiveAndTrimmed) {
  const auto all = fake_machine();
  EXPECT_FALSE(rt::select_among(all, "  PoCL ", "x").fallback);
  EXPECT_FALSE(rt::select_among(all, "VENDOR cpu", "x").fallback);
  EXPECT_FALSE(rt::select_among(all, "2:0", "x").fallback);
  EXPECT_TRUE(rt::select_among(all, "FallBack", "x").fallback);
}

TEST(RuntimeDeviceSelect, FallbackContextFromOptionAndEnvironment) {
  auto ctx = Context::create({.device = "FALLBACK"});
  EXPECT_EQ(ctx.backend(), Backend::fallback);
  EXPECT_EQ(ctx.cache_dir(), "");
  ScopedEnv env("SPARQ_DEVICE", "fallback");
  EXPECT_EQ(Context::create().backend(), Backend::fallback);
}

TEST(RuntimeDeviceSelect, RealDevicesByIndexNameAndEnvironment) {
  const auto devices = list_devices();
  if (devices.empty()) GTEST_SKIP() << "no OpenCL device on this machine";
  for (const auto& d : devices) {
    EXPECT_EQ(d.usable, d.reason.empty()) << d.name;
    EXPECT_NE(d.selector.find(':'), std::string::npos);
  }
  auto ctx = device_context();
  ASSERT_EQ(ctx.backend(), Backend::opencl);
  std::string upper = ctx.device().name;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(Context::create({.device = upper}).device().name, ctx.device().name);
  for (const auto& d : devices)
    if (d.usable && d.name == ctx.device().name) {
      ScopedEnv env("SPARQ_DEVICE", d.selector);
      EXPECT_EQ(Context::create().device().name, d.name);
    }
  try {
    Context::create({.device = "no-such-device-anywhere"});
    ADD_FAILURE() << "accepted a device that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::no_device);
    EXPECT_NE(std::string(e.what()).find(devices[0].name), std::string::npos) << e.what();
  }
}

// Runs in a child whose ICD loader sees no vendor at all (OCL_ICD_VENDORS = empty dir):
// clGetPlatformIDs fails with CL_PLATFORM_NOT_FOUND_KHR, which must mean "use the fallback".
TEST(RuntimeHelper, NoOpenCLPlatformMeansFallback) {
  if (!helper_role_is("no_platform")) GTEST_SKIP() << "helper of RuntimeDeviceSelect.NoPlatform";
  EXPECT_TRUE(list_devices().empty());
  auto ctx = Context::create();
  EXPECT_EQ(ctx.backend(), Backend::fallback);
  auto t = ctx.upload(std::vector<float>{1, 2, 3}, DType::f32, {3});
  EXPECT_EQ(t.download<float>(), (std::vector<float>{1, 2, 3}));
  try {
    Context::create({.device = "pocl"});
    ADD_FAILURE() << "pocl accepted without any platform";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::no_device);
  }
}

TEST(RuntimeDeviceSelect, NoPlatform) {
  TempDir dir("no-icd");
  ChildTest child("RuntimeHelper.NoOpenCLPlatformMeansFallback",
                  {{"SPARQ_TEST_HELPER", "no_platform"},
                   {"OCL_ICD_VENDORS", dir.str()},
                   {"OCL_ICD_FILENAMES", ""},
                   {"SPARQ_DEVICE", ""}},
                  dir.path() / "log.txt");
  ASSERT_EQ(child.wait(), 0) << child.output();
  EXPECT_NE(child.output().find("[  PASSED  ] 1 test"), std::string::npos) << child.output();
}

}  // namespace
}  // namespace sparq::test
