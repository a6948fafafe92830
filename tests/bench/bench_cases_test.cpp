// Every small case of the bench registry (bench/cases/) as a test: prepared on the test device,
// run once, and compared with the fallback bit for bit, exactly as sparq-bench validates it.
// A case added for the benchmark is therefore also checked in CI (STYLE.md: tests as a table).
#ifdef SPARQ_HAVE_BENCH_CASES
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "cases/case.h"
#include "test_support.h"

namespace sparq::test {
namespace {

std::vector<std::string> small_case_names() {
  std::vector<std::string> names;
  for (const auto& c : bench::all_cases())
    if (c.size == bench::SizeClass::small) names.push_back(c.name);
  return names;
}

// gtest parameter names allow only [A-Za-z0-9_].
std::string test_name(const std::string& case_name) {
  std::string out;
  for (char ch : case_name) out += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return out;
}

class BenchCase : public ::testing::TestWithParam<std::string> {};

TEST_P(BenchCase, DeviceEqualsFallback) {
  const bench::Case* found = nullptr;
  for (const auto& c : bench::all_cases())
    if (c.name == GetParam()) found = &c;
  ASSERT_NE(found, nullptr) << GetParam();
  auto dev = device_context();
  auto fb = fallback_context();
  auto instance = found->prepare(dev);
  instance->run();
  dev.finish();
  const bench::Validation v = instance->validate(fb);
  EXPECT_TRUE(v.exact) << found->name << " (seed " << found->seed << ", " << v.scope
                       << "): " << v.detail;
  EXPECT_GT(v.values_compared, 0u) << found->name << " compared nothing";
}

INSTANTIATE_TEST_SUITE_P(SmallCases, BenchCase, ::testing::ValuesIn(small_case_names()),
                         [](const auto& info) { return test_name(info.param); });

}  // namespace
}  // namespace sparq::test
#endif  // SPARQ_HAVE_BENCH_CASES
