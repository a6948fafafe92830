// LatentCache: retrieval of the planted entry, hit threshold and k ladder, each eviction policy,
// crash-safe persistence (round trip, corrupt and foreign files refused).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "diffusion/diffusion_test_util.h"

namespace sparq::test::diff {
namespace {

std::vector<float> emb(std::uint64_t seed, std::uint32_t dim) {
  return random_normal(dim, seed);
}

TEST(DiffusionLatentCache, QueryHitsAndKLadder) {
  for (bool on_device : {false, true}) {
    Context ctx = on_device ? device_context() : fallback_context();
    LatentCache cache(ctx, {.capacity = 64, .dim = 48});
    EXPECT_EQ(cache.query(emb(1, 48))[0].slot, -1);  // empty cache: no slot
    for (std::uint64_t i = 0; i < 40; ++i) cache.insert(emb(100 + i, 48), 1000 + i, i);
    EXPECT_EQ(cache.size(), 40u);
    auto q = emb(100 + 17, 48);  // the very embedding of entry 17, scaled: cosine 1
    for (auto& v : q) v *= 3.0f;
    const auto far = emb(9999, 48);
    q.insert(q.end(), far.begin(), far.end());
    const auto hits = cache.query(q);
    ASSERT_EQ(hits.size(), 2u);
    EXPECT_TRUE(hits[0].hit);
    EXPECT_EQ(hits[0].payload, 1017u);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-5);
    EXPECT_EQ(hits[0].k, 25);   // top of the ladder
    EXPECT_FALSE(hits[1].hit);  // random 48-d vectors: cosine far below 0.8
    EXPECT_EQ(hits[1].k, 0);
  }
}

std::uint32_t evicted_by(CachePolicy policy) {
  Context cpu = fallback_context();
  LatentCache c(cpu, {.capacity = 4, .dim = 8, .policy = policy});
  for (std::uint64_t i = 0; i < 4; ++i) c.insert(emb(i, 8), i, 10 + i);  // slots 0..3
  c.touch(0, 20, 5);   // slot 0: recent, 1 use, benefit 5
  c.touch(1, 21, 25);  // slot 1: most recent, benefit 25
  c.touch(1, 22, 25);
  c.touch(3, 15, 10);  // slot 3: 1 use, benefit 10, older
  // slot 2: never used, inserted third.
  return c.insert(emb(50, 8), 50, 30);
}

TEST(DiffusionLatentCache, EvictionPolicies) {
  EXPECT_EQ(evicted_by(CachePolicy::FIFO), 0u);   // oldest insertion
  EXPECT_EQ(evicted_by(CachePolicy::LRU), 2u);    // last use 12 (its insertion)
  EXPECT_EQ(evicted_by(CachePolicy::LFU), 2u);    // 0 uses
  EXPECT_EQ(evicted_by(CachePolicy::LCBFU), 2u);  // benefit 0
  Context cpu = fallback_context();
  LatentCache c(cpu, {.capacity = 3, .dim = 8, .policy = CachePolicy::LCBFU});
  for (std::uint64_t i = 0; i < 3; ++i) c.insert(emb(i, 8), i, i);
  c.touch(0, 5, 10);
  c.touch(2, 6, 10);
  EXPECT_EQ(c.insert(emb(9, 8), 9, 7), 1u);  // the only entry with no benefit
  c.erase(1);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.insert(emb(10, 8), 10, 8), 1u);  // holes are filled before evicting
}

TEST(DiffusionLatentCache, PersistenceRoundTripAndCorruption) {
  Context cpu = fallback_context();
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("sparq-lc-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
       std::to_string(reinterpret_cast<std::uintptr_t>(&cpu)));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "cache.bin").string();
  LatentCache c(cpu, {.capacity = 16, .dim = 32, .policy = CachePolicy::LRU, .tau_hit = 0.7f});
  for (std::uint64_t i = 0; i < 10; ++i) c.insert(emb(i, 32), 500 + i, i);
  c.touch(4, 99, 15);
  c.erase(2);
  c.save(path);
  c.save(path);  // replacing an existing file works too
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
  LatentCache back = LatentCache::load(cpu, path);
  EXPECT_EQ(back.size(), 9u);
  EXPECT_EQ(back.config().policy, CachePolicy::LRU);
  EXPECT_EQ(back.config().tau_hit, 0.7f);
  const auto q = emb(7, 32);
  const auto a = c.query(q), b = back.query(q);
  EXPECT_EQ(a[0].slot, b[0].slot);
  EXPECT_EQ(b[0].payload, 507u);
  EXPECT_EQ(a[0].score, b[0].score);
  std::string good;
  {
    std::ifstream f(path, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write_file = [](const std::string& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  // A crash during save leaves a partial temporary file; the published file is untouched.
  write_file(path + ".tmp.999999", good.substr(0, good.size() / 3));
  EXPECT_EQ(LatentCache::load(cpu, path).size(), 9u);
  // A torn (truncated) cache file is refused, whatever the cut.
  for (std::size_t keep : {good.size() / 2, good.size() - 1, std::size_t{20}}) {
    write_file(path, good.substr(0, keep));
    EXPECT_THROW(LatentCache::load(cpu, path), Error) << "truncated to " << keep;
  }
  write_file(path, good);
  EXPECT_EQ(LatentCache::load(cpu, path).size(), 9u);
  // Flip one byte: the checksum refuses the file.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    char ch;
    f.read(&ch, 1);
    f.seekp(100);
    ch = static_cast<char>(ch ^ 0x5a);
    f.write(&ch, 1);
  }
  EXPECT_THROW(LatentCache::load(cpu, path), Error);
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "not a cache";
  }
  EXPECT_THROW(LatentCache::load(cpu, path), Error);
  EXPECT_THROW(LatentCache::load(cpu, (dir / "missing.bin").string()), Error);
  EXPECT_THROW(LatentCache(cpu, {.capacity = 4, .dim = 0}), Error);
  EXPECT_THROW(c.insert(emb(1, 31), 0, 0), Error);
  EXPECT_THROW(c.touch(2, 0), Error);  // erased slot
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sparq::test::diff
