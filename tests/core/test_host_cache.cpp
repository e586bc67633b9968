// SPDX-License-Identifier: Apache-2.0
// The caching host allocator behind CPU tensors (gkd/core/host_cache.hpp): size classes, reuse, the
// footprint bound, a repeated step without misses, switching it off, concurrent use, NaN fill and
// (under ASan) poisoning.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gkd/core/host_cache.hpp"
#include "support/check.hpp"

using namespace gkd;
using detail::HostCache;

namespace {
constexpr std::size_t kMiB = std::size_t{1} << 20;

Tensor<float> block(std::size_t bytes) { return Tensor<float>::empty({std::int64_t(bytes / sizeof(float))}); }
}  // namespace

TEST_CASE("host cache size classes waste at most an eighth and keep pages whole", "[host_cache]") {
  REQUIRE(HostCache::class_bytes(100) == 100);  // small blocks bypass the cache
  REQUIRE(HostCache::class_bytes(HostCache::kMinBytes - 1) == HostCache::kMinBytes - 1);
  REQUIRE(HostCache::class_bytes(HostCache::kMinBytes) == HostCache::kMinBytes);
  REQUIRE(HostCache::class_bytes(HostCache::kMinBytes + 1) == HostCache::kMinBytes + HostCache::kMinBytes / 8);
  REQUIRE(HostCache::class_bytes(kMiB + 1) == kMiB + kMiB / 8);
  REQUIRE(HostCache::class_bytes(2 * kMiB - 1) == 2 * kMiB);
  std::mt19937_64 gen(3);
  for (int i = 0; i < 10000; ++i) {
    const std::size_t b = HostCache::kMinBytes + gen() % (std::size_t{1} << 34);
    const std::size_t c = HostCache::class_bytes(b);
    INFO("bytes " << b << " class " << c);
    REQUIRE(c >= b);
    REQUIRE(c - b <= b / 8);
    REQUIRE(c % 4096 == 0);
    REQUIRE(HostCache::class_bytes(c) == c);
  }
}

TEST_CASE("host cache hands a freed block out again for its size class", "[host_cache]") {
  set_host_cache_enabled(true);
  empty_host_cache();
  const float* first = nullptr;
  {
    auto t = block(3 * kMiB);
    first = t.data();
    REQUIRE(reinterpret_cast<std::uintptr_t>(first) % 64 == 0);
  }
  const HostCacheStats before = host_cache_stats();
  REQUIRE(before.cached_bytes == 3 * kMiB);
  REQUIRE(before.cached_blocks == 1);
  auto again = block(3 * kMiB - 4096);  // smaller, same class
  const HostCacheStats after = host_cache_stats();
  REQUIRE(again.data() == first);
  REQUIRE(after.hits == before.hits + 1);
  REQUIRE(after.cached_bytes == 0);
  // the reused block is fully usable
  std::fill_n(again.data(), again.numel(), 2.f);
  REQUIRE(again.to_vector().back() == 2.f);
  // small tensors never enter the cache
  { auto small = block(64 << 10); }
  REQUIRE(host_cache_stats().cached_bytes == 0);
}

TEST_CASE("host cache keeps live and cached memory within twice the live peak", "[host_cache]") {
  set_host_cache_enabled(true);
  empty_host_cache();
  std::mt19937_64 gen(11);
  std::vector<Tensor<float>> live;
  std::size_t live_bytes = 0, peak = 0;
  for (int step = 0; step < 400; ++step) {
    if (!live.empty() && (gen() % 2 == 0 || live.size() > 12)) {
      const std::size_t k = gen() % live.size();
      live_bytes -= HostCache::class_bytes(std::size_t(live[k].numel()) * sizeof(float));
      live.erase(live.begin() + std::ptrdiff_t(k));
    } else {
      const std::size_t bytes = (1 + gen() % 64) * (kMiB / 4);  // 256 KiB .. 16 MiB
      live.push_back(block(bytes));
      live_bytes += HostCache::class_bytes(bytes);
      peak = std::max(peak, live_bytes);
    }
    INFO("step " << step);
    const HostCacheStats now = host_cache_stats();
    REQUIRE(now.live_bytes == live_bytes);
    REQUIRE(live_bytes + now.cached_bytes <= HostCache::kPeakMultiple * now.peak_live_bytes);
  }
  live.clear();
  const HostCacheStats end = host_cache_stats();
  REQUIRE(end.live_bytes == 0);
  REQUIRE(end.peak_live_bytes >= peak);
  REQUIRE(end.cached_bytes <= HostCache::kPeakMultiple * end.peak_live_bytes);
  REQUIRE(end.hits > 0);
}

TEST_CASE("host cache serves a repeated step without misses after the first", "[host_cache]") {
  set_host_cache_enabled(true);
  empty_host_cache();
  // one "training step": activations allocated in order, freed in reverse, with temporaries between
  const std::vector<std::size_t> sizes = {4 * kMiB, 3 * kMiB, 8 * kMiB, 512 << 10, 3 * kMiB, 6 * kMiB};
  auto step = [&] {
    std::vector<Tensor<float>> acts;
    for (std::size_t b : sizes) {
      auto temporary = block(b / 2 + (256 << 10));
      acts.push_back(block(b));
    }
    while (!acts.empty()) acts.pop_back();
  };
  step();
  const std::size_t misses = host_cache_stats().misses;
  for (int i = 0; i < 3; ++i) step();
  REQUIRE(host_cache_stats().misses == misses);
}

TEST_CASE("host cache can be emptied and switched off", "[host_cache]") {
  set_host_cache_enabled(true);
  { auto t = block(2 * kMiB); }
  REQUIRE(host_cache_stats().cached_bytes >= 2 * kMiB);
  empty_host_cache();
  REQUIRE(host_cache_stats().cached_bytes == 0);
  REQUIRE(host_cache_stats().cached_blocks == 0);
  auto held = block(2 * kMiB);  // allocated while on, freed while off
  set_host_cache_enabled(false);
  const std::size_t misses = host_cache_stats().misses;
  { auto t = block(2 * kMiB); }
  held = {};
  REQUIRE(host_cache_stats().cached_bytes == 0);
  REQUIRE(host_cache_stats().misses == misses);  // off: not counted, not cached
  set_host_cache_enabled(true);
}

TEST_CASE("host cache serves threads concurrently", "[host_cache]") {
  set_host_cache_enabled(true);
  empty_host_cache();
  const HostCacheStats before = host_cache_stats();
  constexpr int kThreads = 4, kRounds = 200;
#pragma omp parallel for num_threads(kThreads) schedule(static)
  for (int t = 0; t < kThreads; ++t) {
    std::mt19937 gen(static_cast<unsigned>(t));
    for (int r = 0; r < kRounds; ++r) {
      auto x = block((1 + gen() % 8) * (kMiB / 2));
      x.data()[x.numel() - 1] = float(t);  // touch the block's end
      if (x.data()[x.numel() - 1] != float(t)) std::abort();
    }
  }
  const HostCacheStats after = host_cache_stats();
  REQUIRE(after.hits + after.misses - before.hits - before.misses == std::size_t(kThreads * kRounds));
  REQUIRE(after.cached_blocks <= std::size_t(kThreads * kRounds));
  empty_host_cache();
  REQUIRE(host_cache_stats().cached_bytes == 0);
}

TEST_CASE("host cache NaN-fills what it hands out when asked to", "[host_cache]") {
  const char* env = std::getenv("GKD_HOST_CACHE_FILL_NAN");
#ifdef GKD_DETAIL_ASAN
  const bool expected = !(env && std::string(env) == "0");
#else
  const bool expected = env && std::string(env) != "0";
#endif
  REQUIRE(HostCache::instance().fills_nan() == expected);
  if (!expected) return;
  set_host_cache_enabled(true);
  empty_host_cache();
  auto fresh = block(kMiB);  // from the system
  REQUIRE(std::isnan(fresh.data()[0]));
  REQUIRE(std::isnan(fresh.data()[fresh.numel() - 1]));
  std::fill_n(fresh.data(), fresh.numel(), 1.f);
  fresh = {};
  auto reused = block(kMiB);
  REQUIRE(host_cache_stats().hits > 0);
  REQUIRE(std::isnan(reused.data()[0]));
  REQUIRE(std::isnan(reused.data()[reused.numel() / 2]));
}

#ifdef GKD_DETAIL_ASAN
TEST_CASE("host cache poisons cached blocks under AddressSanitizer", "[host_cache]") {
  set_host_cache_enabled(true);
  empty_host_cache();
  const float* p = nullptr;
  {
    auto t = block(kMiB);
    p = t.data();
    REQUIRE(__asan_address_is_poisoned(p) == 0);
  }
  REQUIRE(__asan_address_is_poisoned(p) == 1);
  REQUIRE(__asan_address_is_poisoned(p + kMiB / sizeof(float) - 1) == 1);
  auto again = block(kMiB);
  REQUIRE(again.data() == p);
  REQUIRE(__asan_address_is_poisoned(p) == 0);
}
#endif
