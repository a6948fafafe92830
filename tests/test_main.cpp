// GoogleTest main: gives this process its own POCL_CACHE_DIR before any OpenCL call, so ctest
// can run tests in parallel without PoCL cache races between processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  if (!std::getenv("SPARQ_TEST_KEEP_POCL_CACHE")) {
    auto dir =
        std::filesystem::temp_directory_path() / ("sparq-pocl-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    ::setenv("POCL_CACHE_DIR", dir.c_str(), 1);
  }
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  if (!std::getenv("SPARQ_TEST_KEEP_POCL_CACHE")) {
    std::error_code ec;
    std::filesystem::remove_all(std::getenv("POCL_CACHE_DIR"), ec);
  }
  return rc;
}
