// Kernel sources: include resolution (embedded and SPARQ_KERNEL_DIR), missing files, cycles,
// build errors carrying the build log, and every kernel variant building on the test device.
#include "kernel_sources.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kernel_variants.h"
#include "program_cache.h"
#include "runtime_test_util.h"
#include "selftest.h"

namespace sparq::test {
namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

TEST(RuntimeKernelSources, EmbeddedSourceHasIncludesInlinedOnce) {
  const auto programs = rt::embedded_kernel_programs();
  EXPECT_NE(std::find(programs.begin(), programs.end(), rt::kSelftestSource), programs.end());
  const std::string src = rt::resolve_kernel_source(rt::kSelftestSource);
  EXPECT_EQ(count(src, "#include \""), 0u);
  EXPECT_EQ(count(src, "#define SPARQ_COMMON_PRELUDE_H"), 1u);
  EXPECT_EQ(count(src, "sq_selftest_op(int which"), 1u);
  EXPECT_NE(src.find("#line 1 \"common/prelude.h\""), std::string::npos);
}

TEST(RuntimeKernelSources, KernelDirOverrideResolvesSiblingsRootAndCycles) {
  TempDir dir("kdir");
  write_file(dir.path() / "fam/main.cl", "#include \"local.h\"\n#include \"common/a.h\"\nMAIN\n");
  write_file(dir.path() / "fam/local.h", "LOCAL\n#include \"../common/a.h\"\n");
  write_file(dir.path() / "common/a.h", "#pragma once\nA_BODY\n#include \"b.h\"\n");
  write_file(dir.path() / "common/b.h", "B_BODY\n#include \"a.h\"\n");  // cycle back to a.h
  ScopedEnv env("SPARQ_KERNEL_DIR", dir.str());
  const std::string src = rt::resolve_kernel_source("fam/main.cl");
  EXPECT_EQ(count(src, "LOCAL"), 1u);
  EXPECT_EQ(count(src, "A_BODY"), 1u);
  EXPECT_EQ(count(src, "B_BODY"), 1u);
  EXPECT_EQ(count(src, "MAIN"), 1u);
  EXPECT_EQ(count(src, "#pragma once"), 0u);
  EXPECT_LT(src.find("B_BODY"), src.find("MAIN"));
}

TEST(RuntimeKernelSources, MissingFileOrIncludeIsBuildFailedNamingIt) {
  TempDir dir("kdir-missing");
  write_file(dir.path() / "fam/main.cl", "// line 1\n#include \"common/nope.h\"\n");
  ScopedEnv env("SPARQ_KERNEL_DIR", dir.str());
  try {
    rt::resolve_kernel_source("fam/main.cl");
    ADD_FAILURE() << "missing include accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::build_failed);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("common/nope.h"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fam/main.cl line 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir.str()), std::string::npos) << msg;
  }
  try {
    rt::resolve_kernel_source("fam/absent.cl");
    ADD_FAILURE() << "missing file accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::build_failed);
    EXPECT_NE(std::string(e.what()).find("fam/absent.cl"), std::string::npos) << e.what();
  }
}

TEST(RuntimeKernelSources, BuildErrorCarriesTheBuildLog) {
  // The embedded sources, with the self-test kernel replaced by one using an undeclared name.
  TempDir dir("kdir-broken");
  for (const auto& f : rt::embedded_kernel_files()) write_file(dir.path() / f.path, f.text);
  write_file(dir.path() / rt::kSelftestSource,
             "#include \"runtime/selftest_ops.h\"\n"
             "__kernel void sparq_selftest(__global float* out) { out[0] = "
             "sparq_undeclared_identifier; }\n");
  ScopedEnv env("SPARQ_KERNEL_DIR", dir.str());
  auto ctx = device_context_with_cache("");
  try {
    runtime_of(ctx).programs().get(rt::kSelftestSource, "");
    ADD_FAILURE() << "broken kernel built";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::build_failed);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("runtime/selftest.cl"), std::string::npos) << msg;
    EXPECT_NE(msg.find("build log"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sparq_undeclared_identifier"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CL_BUILD_PROGRAM_FAILURE"), std::string::npos) << msg;
  }
}

// Every variant any op can request compiles on the test device (STYLE: caught in CI even before a
// test calls the kernel). Uses the shared test cache, so reruns are fast.
TEST(RuntimeKernelSources, EveryKernelVariantBuilds) {
  auto ctx = device_context();
  const auto variants = rt::all_kernel_variants();
  ASSERT_FALSE(variants.empty());
  int buildable = 0;
  for (const auto& v : variants) {
    SCOPED_TRACE(v.source_path + " " + v.defines);
    if (v.needs_inline_ptx && !runtime_of(ctx).quirks().inline_ptx) continue;  // NVIDIA only
    ++buildable;
    std::lock_guard lock(ctx.impl()->mutex);
    EXPECT_NO_THROW(runtime_of(ctx).programs().get(v.source_path, v.defines));
  }
  EXPECT_EQ(ctx.warm_up(), buildable);
  EXPECT_EQ(Context::create({.device = "fallback"}).warm_up(), 0);
}

}  // namespace
}  // namespace sparq::test
