// Helpers for the runtime tests: temp dirs, scoped environment variables, child processes of the
// test binary (for multi-process and no-OpenCL scenarios), and a device Context with its own
// program-cache directory.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "context_impl.h"
#include "test_support.h"

extern char** environ;

namespace sparq::test {

namespace fs = std::filesystem;

// A fresh directory under the temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("sparq-rt-" + tag + "-" + std::to_string(::getpid()) +
                                         "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// Sets (or unsets, with nullopt) an environment variable for the scope; tests run sequentially.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A device Context (the tests' device, see test_support.h) using `cache_dir` ("" = no disk).
inline Context device_context_with_cache(const std::string& cache_dir, bool profile = false) {
  return Context::create({.device = test_device_selector(),
                          .cache_dir = cache_dir,
                          .disk_cache = !cache_dir.empty(),
                          .profile = profile});
}

// Throws (a test failure) on a fallback context instead of binding a reference to null.
inline rt::DeviceRuntime& runtime_of(Context& ctx) {
  if (!ctx.impl()->device)
    throw std::runtime_error("this test needs an OpenCL device; SPARQ_TEST_DEVICE is the fallback");
  return *ctx.impl()->device;
}

// A child process running one test of this binary with extra environment variables; its output
// goes to a file so a failure can show it.
class ChildTest {
 public:
  ChildTest(const std::string& test_name, const std::map<std::string, std::string>& env,
            const fs::path& log)
      : log_(log) {
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      const std::string kv = *e, key = kv.substr(0, kv.find('='));
      // A sharded parent (GTEST_TOTAL_SHARDS / GTEST_SHARD_INDEX) would shard the child's
      // one-test filter away: the child runs its test whole.
      if (key == "GTEST_TOTAL_SHARDS" || key == "GTEST_SHARD_INDEX") continue;
      if (!env.count(key)) env_strings.push_back(kv);
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    // This very binary, wherever it was copied (e.g. onto the GPU machine).
    std::string binary = fs::read_symlink("/proc/self/exe").string();
    std::string filter = "--gtest_filter=" + test_name;
    std::vector<char*> argv = {binary.data(), filter.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    spawn_error_ = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
  }
  // Exit status (or -1 if it did not start / did not exit normally).
  int wait() {
    if (spawn_error_ != 0) return -1;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_ || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }
  std::string output() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int spawn_error_ = 0;
};

// Helper tests run only inside a ChildTest that sets SPARQ_TEST_HELPER to their role.
inline bool helper_role_is(const char* role) {
  const char* r = std::getenv("SPARQ_TEST_HELPER");
  return r && std::string(r) == role;
}

}  // namespace sparq::test
