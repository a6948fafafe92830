// LatentCache: MoDM / NIRVANA-style cache of final latents keyed by text embeddings (spec §4.4).
// Embeddings are normalised on the host with the fallback's l2_normalize (the same bits as the
// kernel), kept in a host mirror and written row by row into the device matrix E.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "diffusion_common.h"
#include "fallback_cpu/diffusion/diffusion_fallback.h"

namespace sparq::diffusion {

using namespace detail_diffusion;

namespace {

constexpr const char* kOp = "LatentCache";
constexpr char kMagic[8] = {'S', 'Q', 'L', 'C', 'A', 'C', 'H', '1'};

std::uint64_t fnv1a(const std::vector<unsigned char>& bytes) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

template <class T>
void put(std::vector<unsigned char>& out, const T& v) {
  const auto* p = reinterpret_cast<const unsigned char*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

template <class T>
T get(const std::vector<unsigned char>& in, std::size_t& at, const std::string& path) {
  if (at + sizeof(T) > in.size())
    rt::fail(ErrorCode::io_error, kOp, "{} is truncated (corrupt cache file)", path);
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  at += sizeof v;
  return v;
}

void validate(const CacheConfig& c) {
  require(kOp, c.capacity >= 1 && c.capacity <= (1u << 24), "capacity must be in [1, 2^24], got {}",
          c.capacity);
  require(kOp, c.dim >= 1 && c.dim <= 65536, "dim must be in [1, 65536], got {}", c.dim);
  require(kOp, std::isfinite(c.tau_hit), "tau_hit must be finite, got {}", c.tau_hit);
  for (std::size_t i = 0; i < c.k_table.size(); ++i) {
    require(kOp, std::isfinite(c.k_table[i].first) && c.k_table[i].second >= 0,
            "k_table[{}] must have a finite threshold and k >= 0", i);
    require(kOp, i == 0 || c.k_table[i].first < c.k_table[i - 1].first,
            "k_table thresholds must be strictly decreasing");
  }
}

}  // namespace

LatentCache::LatentCache(Context& ctx, CacheConfig config) : ctx_(ctx), config_(std::move(config)) {
  validate(config_);
  entries_.resize(config_.capacity);
  rows_.assign(static_cast<std::size_t>(config_.capacity) * config_.dim, 0.0f);
  emb_ = ctx_.upload(rows_, DType::f32, {config_.capacity, config_.dim});
  valid_ =
      ctx_.upload(std::vector<std::uint8_t>(config_.capacity, 0), DType::u8, {config_.capacity});
}

void LatentCache::write_row(std::uint32_t slot) {
  auto& impl = *ctx_.impl();
  std::lock_guard lock(impl.mutex);
  const std::size_t row_bytes = static_cast<std::size_t>(config_.dim) * 4;
  const float* src = rows_.data() + static_cast<std::size_t>(slot) * config_.dim;
  const std::uint8_t v = entries_[slot].valid ? 1 : 0;
  if (impl.device) {
    impl.device->write(emb_.storage()->buffer, slot * row_bytes, row_bytes, src, kOp);
    impl.device->write(valid_.storage()->buffer, slot, 1, &v, kOp);
  } else {
    std::memcpy(host_ptr<std::byte>(emb_) + slot * row_bytes, src, row_bytes);
    host_ptr<std::uint8_t>(valid_)[slot] = v;
  }
}

std::vector<CacheHit> LatentCache::query(std::span<const float> q) {
  require(kOp, !q.empty() && q.size() % config_.dim == 0,
          "query has {} values; expected a multiple of dim = {}", q.size(), config_.dim);
  const auto bq = static_cast<std::int64_t>(q.size() / config_.dim);
  std::vector<float> qn(q.size());
  fallback::diffusion::l2_normalize(qn.data(), q.data(), bq, config_.dim);
  const Top1 top = sim_top1(ctx_, emb_, valid_, ctx_.upload(qn, DType::f32, {bq, config_.dim}));
  std::vector<CacheHit> hits(static_cast<std::size_t>(bq));
  for (std::size_t i = 0; i < hits.size(); ++i) {
    auto& h = hits[i];
    h.slot = top.index[i];
    h.score = top.score[i];
    if (h.slot < 0) continue;
    h.payload = entries_[static_cast<std::size_t>(h.slot)].payload;
    h.hit = h.score >= config_.tau_hit;
    if (!h.hit) continue;
    for (const auto& [tau, k] : config_.k_table)
      if (h.score >= tau) {
        h.k = k;
        break;
      }
  }
  return hits;
}

void LatentCache::touch(std::uint32_t slot, std::uint64_t now, int k_saved) {
  require(kOp, slot < config_.capacity && entries_[slot].valid, "touch: slot {} is not in use",
          slot);
  require(kOp, k_saved >= 0, "touch: k_saved must be >= 0, got {}", k_saved);
  auto& e = entries_[slot];
  e.last_use = now;
  e.uses += 1;
  e.benefit += static_cast<std::uint64_t>(k_saved);
}

std::uint32_t LatentCache::victim() const {
  std::uint32_t best = 0;
  auto key = [&](const Entry& e) -> std::pair<std::uint64_t, std::uint64_t> {
    switch (config_.policy) {
      case CachePolicy::LRU:
        return {e.last_use, 0};
      case CachePolicy::LFU:
        return {e.uses, e.last_use};
      case CachePolicy::FIFO:
        return {0, 0};
      case CachePolicy::LCBFU:
        return {e.benefit, 0};
    }
    return {0, 0};
  };
  for (std::uint32_t s = 1; s < config_.capacity; ++s) {
    const auto ks = key(entries_[s]), kb = key(entries_[best]);
    if (ks < kb || (ks == kb && entries_[s].seq < entries_[best].seq)) best = s;
  }
  return best;
}

std::uint32_t LatentCache::insert(std::span<const float> embedding, std::uint64_t payload,
                                  std::uint64_t now) {
  require(kOp, embedding.size() == config_.dim, "insert: embedding has {} values; dim is {}",
          embedding.size(), config_.dim);
  for (float v : embedding) require(kOp, std::isfinite(v), "insert: embedding is not finite");
  std::uint32_t slot = config_.capacity;
  for (std::uint32_t s = 0; s < config_.capacity && slot == config_.capacity; ++s)
    if (!entries_[s].valid) slot = s;
  if (slot == config_.capacity) slot = victim();
  fallback::diffusion::l2_normalize(rows_.data() + static_cast<std::size_t>(slot) * config_.dim,
                                    embedding.data(), 1, config_.dim);
  entries_[slot] = {true, next_seq_++, now, 0, 0, payload};
  write_row(slot);
  return slot;
}

void LatentCache::erase(std::uint32_t slot) {
  require(kOp, slot < config_.capacity, "erase: slot {} is outside [0, {})", slot,
          config_.capacity);
  entries_[slot].valid = false;
  write_row(slot);
}

std::uint32_t LatentCache::size() const {
  std::uint32_t n = 0;
  for (const auto& e : entries_) n += e.valid ? 1 : 0;
  return n;
}

void LatentCache::save(const std::string& path) const {
  std::vector<unsigned char> out(kMagic, kMagic + 8);
  put(out, config_.capacity);
  put(out, config_.dim);
  put(out, static_cast<std::uint32_t>(config_.policy));
  put(out, config_.tau_hit);
  put(out, static_cast<std::uint32_t>(config_.k_table.size()));
  for (const auto& [tau, k] : config_.k_table) {
    put(out, tau);
    put(out, static_cast<std::int32_t>(k));
  }
  put(out, next_seq_);
  for (std::uint32_t s = 0; s < config_.capacity; ++s) {
    const auto& e = entries_[s];
    put(out, static_cast<std::uint8_t>(e.valid));
    for (auto v : {e.seq, e.last_use, e.uses, e.benefit, e.payload}) put(out, v);
    const auto* row = reinterpret_cast<const unsigned char*>(
        rows_.data() + static_cast<std::size_t>(s) * config_.dim);
    out.insert(out.end(), row, row + config_.dim * 4);
  }
  put(out, fnv1a(out));
  // Write a new file, make it durable, then atomically replace: a crash leaves the old file or
  // the new one, never a torn mix.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) rt::fail(ErrorCode::io_error, kOp, "cannot create {}: {}", tmp, std::strerror(errno));
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t w = ::write(fd, out.data() + done, out.size() - done);
    if (w <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      rt::fail(ErrorCode::io_error, kOp, "writing {} failed: {}", tmp, std::strerror(errno));
    }
    done += static_cast<std::size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    rt::fail(ErrorCode::io_error, kOp, "cannot replace {}: {}", path, std::strerror(errno));
  }
}

LatentCache LatentCache::load(Context& ctx, const std::string& path) {
  std::vector<unsigned char> in;
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) rt::fail(ErrorCode::io_error, kOp, "cannot open {}: {}", path, std::strerror(errno));
    unsigned char buf[1 << 16];
    for (std::size_t r; (r = std::fread(buf, 1, sizeof buf, f)) > 0;)
      in.insert(in.end(), buf, buf + r);
    std::fclose(f);
  }
  if (in.size() < 16 || std::memcmp(in.data(), kMagic, 8) != 0)
    rt::fail(ErrorCode::io_error, kOp, "{} is not a sparq latent cache file", path);
  std::uint64_t sum;
  std::memcpy(&sum, in.data() + in.size() - 8, 8);
  in.resize(in.size() - 8);
  if (fnv1a(in) != sum) rt::fail(ErrorCode::io_error, kOp, "{} fails its checksum (corrupt)", path);
  std::size_t at = 8;
  CacheConfig c;
  c.capacity = get<std::uint32_t>(in, at, path);
  c.dim = get<std::uint32_t>(in, at, path);
  c.policy = static_cast<CachePolicy>(get<std::uint32_t>(in, at, path));
  c.tau_hit = get<float>(in, at, path);
  const auto nk = get<std::uint32_t>(in, at, path);
  require(kOp, nk <= 1024, "{}: k_table of {} entries (corrupt)", path, nk);
  c.k_table.clear();
  for (std::uint32_t i = 0; i < nk; ++i) {
    const float tau = get<float>(in, at, path);
    c.k_table.emplace_back(tau, get<std::int32_t>(in, at, path));
  }
  require(kOp, static_cast<std::uint32_t>(c.policy) <= 3, "{}: unknown policy (corrupt)", path);
  LatentCache cache(ctx, c);
  cache.next_seq_ = get<std::uint64_t>(in, at, path);
  for (std::uint32_t s = 0; s < c.capacity; ++s) {
    auto& e = cache.entries_[s];
    e.valid = get<std::uint8_t>(in, at, path) != 0;
    e.seq = get<std::uint64_t>(in, at, path);
    e.last_use = get<std::uint64_t>(in, at, path);
    e.uses = get<std::uint64_t>(in, at, path);
    e.benefit = get<std::uint64_t>(in, at, path);
    e.payload = get<std::uint64_t>(in, at, path);
    for (std::uint32_t k = 0; k < c.dim; ++k)
      cache.rows_[static_cast<std::size_t>(s) * c.dim + k] = get<float>(in, at, path);
    if (e.valid) cache.write_row(s);
  }
  if (at != in.size()) rt::fail(ErrorCode::io_error, kOp, "{} has trailing bytes (corrupt)", path);
  return cache;
}

}  // namespace sparq::diffusion
