// parallel_chunks: the fallback executors' one way to spread independent work over CPU threads.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "fp_env.h"

namespace sparq::fallback {

// Runs body(lo, hi) over [0, n) in chunks on up to hardware_concurrency threads, each inside
// ScopedExactFpEnv (denormals kept). Items are independent: threading never changes bits.
template <class F>
void parallel_chunks(std::int64_t n, std::int64_t chunk, F&& body) {
  const std::int64_t items = (n + chunk - 1) / chunk;
  const std::int64_t threads =
      std::min<std::int64_t>(items, std::max<std::int64_t>(1, std::thread::hardware_concurrency()));
  std::atomic<std::int64_t> next{0};
  auto worker = [&] {
    rt::ScopedExactFpEnv env;
    for (std::int64_t i; (i = next.fetch_add(1)) < items;)
      body(i * chunk, std::min(n, (i + 1) * chunk));
  };
  if (threads <= 1) {
    worker();
    return;
  }
  std::vector<std::thread> pool;
  for (std::int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

}  // namespace sparq::fallback
