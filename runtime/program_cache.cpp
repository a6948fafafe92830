// Program cache (see program_cache.h for the contract). The file format is private to sparq:
//   CacheFileHeader (little-endian host layout) + payload (the CL_PROGRAM_BINARIES blob).
// A file is trusted only if magic, format version, key and payload checksum all match and the
// driver accepts the binary; anything else counts as corrupt and is rebuilt and replaced.
#include "program_cache.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "errors.h"
#include "kernel_sources.h"
#include "sparq/context.h"

namespace sparq::rt {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'S', 'P', 'A', 'R', 'Q', 'P', 'C', '\0'};
constexpr std::uint32_t kFormatVersion = 1;

struct CacheFileHeader {
  char magic[8];
  std::uint32_t format_version;
  std::uint32_t header_bytes;  // sizeof(CacheFileHeader): catches a layout change
  unsigned char key[16];
  std::uint64_t payload_bytes;
  std::uint64_t payload_xxh3_64;
};

// The exactness flags of ARCHITECTURE §2; never any fast-math flag.
constexpr const char* kExactFlags = "-cl-fp32-correctly-rounded-divide-sqrt -cl-std=CL1.2";

// One warning per directory per process, however many Contexts use it.
void warn_once(const std::string& dir, const std::string& why) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard lock(mutex);
  if (!warned.insert(dir).second) return;
  std::fprintf(stderr,
               "sparq: warning: program cache directory '%s' is not usable (%s); "
               "the disk cache is off for it in this process\n",
               dir.c_str(), why.c_str());
}

std::string usable_dir_problem(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ec.message();
  if (!fs::is_directory(dir, ec)) return "not a directory";
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return std::strerror(errno);
  return "";
}

// Temp files of writers that died mid-write (crash, kill) would otherwise stay forever. An hour is
// far longer than any write, so a live writer's file is never touched.
void remove_stale_temp_files(const std::string& dir) {
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (it->path().filename().string().find(".clbin.tmp.") == std::string::npos) continue;
    std::error_code e;
    const auto written = fs::last_write_time(it->path(), e);
    if (!e && now - written > std::chrono::hours(1)) fs::remove(it->path(), e);
  }
}

// Length-prefixed fields, so ("ab","c") and ("a","bc") hash differently.
void hash_field(XXH3_state_t* st, const std::string& s) {
  const std::uint64_t n = s.size();
  XXH3_128bits_update(st, &n, sizeof n);
  XXH3_128bits_update(st, s.data(), s.size());
}

std::string unique_temp_name(const std::string& final_path) {
  static std::atomic<std::uint64_t> counter{0};
  return fmt::format("{}.tmp.{}.{:x}.{}", final_path, ::getpid(),
                     std::hash<std::thread::id>{}(std::this_thread::get_id()), counter++);
}

std::string build_log(const cl::Program& program, const cl::Device& device) {
  try {
    return program.getBuildInfo<CL_PROGRAM_BUILD_LOG>(device);
  } catch (const cl::Error&) {
    return "(no build log available)";
  }
}

}  // namespace

std::string ProgramCache::build_options(const std::string& defines) {
  return defines.empty() ? std::string(kExactFlags) : std::string(kExactFlags) + " " + defines;
}

ProgramCache::ProgramCache(cl::Context context, cl::Device device, std::string cache_dir)
    : context_(std::move(context)), device_(std::move(device)) {
  const cl::Platform platform(device_.getInfo<CL_DEVICE_PLATFORM>());
  device_id_ = platform.getInfo<CL_PLATFORM_NAME>() + "\n" + device_.getInfo<CL_DEVICE_NAME>() +
               "\n" + device_.getInfo<CL_DRIVER_VERSION>();
  if (cache_dir.empty()) return;
  if (auto problem = usable_dir_problem(cache_dir); !problem.empty()) {
    warn_once(cache_dir, problem);
    return;
  }
  remove_stale_temp_files(cache_dir);
  cache_dir_ = std::move(cache_dir);
}

CacheStats ProgramCache::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string ProgramCache::cache_dir() const {
  std::lock_guard lock(mutex_);
  return cache_dir_;
}

cl::Program ProgramCache::get(const std::string& source_path, const std::string& defines) {
  const std::string options = build_options(defines);
  std::lock_guard lock(mutex_);
  const std::string memory_key = source_path + "\n" + options;
  if (auto it = memory_.find(memory_key); it != memory_.end()) {
    ++stats_.memory_hits;
    return it->second;
  }
  const std::string source = resolve_kernel_source(source_path);
  const auto key = disk_key(source, options);
  cl::Program program;
  bool loaded = false;
  if (!cache_dir_.empty()) loaded = load(key, options, program);
  if (!loaded) {
    program = build(source_path, source, options);
    ++stats_.builds;
    if (!cache_dir_.empty()) store(key, program);
  }
  memory_.emplace(memory_key, program);
  return program;
}

ProgramCache::Key ProgramCache::disk_key(const std::string& source,
                                         const std::string& options) const {
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  hash_field(st, source);
  hash_field(st, options);
  hash_field(st, device_id_);
  hash_field(st, sparq::version());
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  Key key;
  std::memcpy(key.data(), canon.digest, key.size());
  return key;
}

std::string ProgramCache::file_path(const Key& key) const {
  std::string hex;
  for (unsigned char b : key) hex += fmt::format("{:02x}", b);
  return cache_dir_ + "/" + hex + ".clbin";
}

std::vector<unsigned char> make_cache_file(const CacheKey& key,
                                           std::span<const unsigned char> payload) {
  CacheFileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.format_version = kFormatVersion;
  h.header_bytes = sizeof h;
  std::memcpy(h.key, key.data(), key.size());
  h.payload_bytes = payload.size();
  h.payload_xxh3_64 = XXH3_64bits(payload.data(), payload.size());
  std::vector<unsigned char> file(sizeof h + payload.size());
  std::memcpy(file.data(), &h, sizeof h);
  if (!payload.empty()) std::memcpy(file.data() + sizeof h, payload.data(), payload.size());
  return file;
}

std::optional<std::span<const unsigned char>> cache_file_payload(
    std::span<const unsigned char> file, const CacheKey& key) {
  CacheFileHeader h{};
  if (file.size() < sizeof h) return std::nullopt;
  std::memcpy(&h, file.data(), sizeof h);
  const std::uint64_t rest = file.size() - sizeof h;
  const bool ok = std::memcmp(h.magic, kMagic, sizeof kMagic) == 0 &&
                  h.format_version == kFormatVersion && h.header_bytes == sizeof h &&
                  std::memcmp(h.key, key.data(), key.size()) == 0 && h.payload_bytes > 0 &&
                  h.payload_bytes < (std::uint64_t{1} << 32) && h.payload_bytes == rest;
  if (!ok) return std::nullopt;
  const auto payload = file.subspan(sizeof h);
  if (XXH3_64bits(payload.data(), payload.size()) != h.payload_xxh3_64) return std::nullopt;
  return payload;
}

bool ProgramCache::load(const Key& key, const std::string& options, cl::Program& out) {
  const std::string path = file_path(key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;  // not cached yet
  // The whole file, sized by what is on disk (never by a size field inside it).
  std::vector<unsigned char> file;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  bool ok = !ec && size >= sizeof(CacheFileHeader) && size < (std::uint64_t{1} << 32);
  if (ok) {
    file.resize(size);
    ok = static_cast<bool>(in.read(reinterpret_cast<char*>(file.data()),
                                   static_cast<std::streamsize>(file.size()))) &&
         in.peek() == std::ifstream::traits_type::eof();
  }
  std::vector<unsigned char> payload;
  if (ok) {
    const auto p = cache_file_payload(file, key);
    ok = p.has_value();
    if (ok) payload.assign(p->begin(), p->end());
  }
  if (ok) {
    try {
      cl::Program program(context_, {device_}, cl::Program::Binaries{payload});
      program.build({device_}, options.c_str());
      out = program;
      ++stats_.disk_hits;
      return true;
    } catch (const cl::Error&) {
      // A binary the driver rejects (e.g. written by another driver build) is just stale.
    }
  }
  ++stats_.corrupt_files;
  return false;
}

void ProgramCache::store(const Key& key, const cl::Program& program) {
  std::vector<std::vector<unsigned char>> binaries;
  try {
    binaries = program.getInfo<CL_PROGRAM_BINARIES>();
  } catch (const cl::Error&) {
    return;  // a driver that cannot export binaries: memory cache only
  }
  if (binaries.size() != 1 || binaries[0].empty()) return;
  const std::vector<unsigned char> file = make_cache_file(key, binaries[0]);

  // Write a private temp file, then rename over the final name: readers see either no file or a
  // complete one, and two processes writing the same key both succeed (the last rename wins).
  const std::string final_path = file_path(key);
  const std::string tmp = unique_temp_name(final_path);
  bool ok = false;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    ok = out && out.write(reinterpret_cast<const char*>(file.data()),
                          static_cast<std::streamsize>(file.size()));
    if (ok) {
      out.close();
      ok = !out.fail();
    }
  }
  if (ok && std::rename(tmp.c_str(), final_path.c_str()) == 0) {
    ++stats_.disk_writes;
    return;
  }
  const std::string why = std::strerror(errno);
  std::error_code ec;
  fs::remove(tmp, ec);
  warn_once(cache_dir_, "cannot write " + final_path + ": " + why);
  cache_dir_.clear();
}

cl::Program ProgramCache::build(const std::string& source_path, const std::string& source,
                                const std::string& options) {
  cl::Program program;
  try {
    program = cl::Program(context_, source);
    program.build({device_}, options.c_str());
    // SPARQ_BUILD_LOG=1 prints every build's log (on NVIDIA, with -cl-nv-verbose among the
    // options, ptxas's register and spill counts): for tuning sessions, never needed otherwise.
    if (const char* env = std::getenv("SPARQ_BUILD_LOG"); env != nullptr && *env == '1')
      std::fprintf(stderr, "[sparq] built kernels_cl/%s with '%s':\n%s\n", source_path.c_str(),
                   options.c_str(), build_log(program, device_).c_str());
  } catch (const cl::Error& e) {
    std::string log = program() ? build_log(program, device_) : std::string("(no program)");
    constexpr std::size_t kMaxLog = 64 * 1024;
    if (log.size() > kMaxLog) log = log.substr(0, kMaxLog) + "\n... (build log truncated)";
    fail(ErrorCode::build_failed, "program build",
         "kernels_cl/{} failed to build ({}) with options '{}' on '{}'; build log:\n{}",
         source_path, cl_error_name(e.err()), options, device_.getInfo<CL_DEVICE_NAME>(), log);
  }
  return program;
}

}  // namespace sparq::rt
