// Program cache: in memory per Context and on disk (ARCHITECTURE §4).
// Disk key = xxh3-128 of (resolved source, build options, platform + device name, driver
// version, sparq version). File = header {magic, format version, key, payload size, xxh3-64
// checksum} + the device binary; written to a unique temp name and renamed (atomic), so two
// processes building the same program both succeed. A corrupt or foreign file is rebuilt and
// replaced; an unwritable directory disables the disk cache with one warning on stderr.
#pragma once
#include <array>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "opencl.hpp.h"

namespace sparq::rt {

// The on-disk file format, as pure functions (the fuzz target fuzz/targets/program_cache_file.cpp
// feeds cache_file_payload arbitrary bytes).
using CacheKey = std::array<unsigned char, 16>;
// A complete cache file: header {magic, format version, header size, key, payload size, xxh3-64
// of the payload} + payload.
std::vector<unsigned char> make_cache_file(const CacheKey& key,
                                           std::span<const unsigned char> payload);
// The payload of a cache file's bytes, or nullopt unless every header field matches (magic,
// version, header size, `key`), the payload size equals the rest of the file (1 byte to 4 GiB)
// and its checksum matches. Never reads outside `file`.
std::optional<std::span<const unsigned char>> cache_file_payload(
    std::span<const unsigned char> file, const CacheKey& key);

struct CacheStats {
  int memory_hits = 0, disk_hits = 0, builds = 0, disk_writes = 0, corrupt_files = 0;
};

class ProgramCache {
 public:
  ProgramCache(cl::Context context, cl::Device device, std::string cache_dir);  // "" = no disk

  // The options every sparq program gets: exactness flags + user defines.
  static std::string build_options(const std::string& defines);

  // Builds (or loads) the program for kernels_cl/`source_path` with `defines`.
  // Throws sparq::Error(build_failed) with the build log.
  cl::Program get(const std::string& source_path, const std::string& defines);

  // "" when the disk cache is off: none requested, or the directory is unusable.
  std::string cache_dir() const;
  CacheStats stats() const;

 private:
  using Key = CacheKey;
  Key disk_key(const std::string& source, const std::string& options) const;
  std::string file_path(const Key& key) const;
  bool load(const Key& key, const std::string& options, cl::Program& out);
  void store(const Key& key, const cl::Program& program);
  cl::Program build(const std::string& source_path, const std::string& source,
                    const std::string& options);

  cl::Context context_;
  cl::Device device_;
  std::string cache_dir_;
  std::string device_id_;  // platform + device name + driver version
  mutable std::mutex mutex_;
  std::map<std::string, cl::Program> memory_;
  CacheStats stats_;
};

}  // namespace sparq::rt
