// SPDX-License-Identifier: Apache-2.0
// Device memory: the caching allocator's reuse and statistics, host/device copies (contiguous and
// strided), streams and events.
#include <catch2/catch.hpp>

#include "gkd/cuda/memory.hpp"
#include "support/check.hpp"

using gkd::Tensor;
namespace cuda = gkd::cuda;

TEST_CASE("a second allocation of the same size reuses the cached block", "[cuda][memory]") {
  const std::size_t bytes = 3 << 20;
  void* first = cuda::allocate(bytes);
  REQUIRE(first != nullptr);
  cuda::deallocate(first);
  const auto before = cuda::memory_stats();
  REQUIRE(before.cached >= bytes);
  void* second = cuda::allocate(bytes);
  const auto after = cuda::memory_stats();
  REQUIRE(second == first);
  REQUIRE(after.reserved == before.reserved);
  REQUIRE(after.device_allocations == before.device_allocations);
  REQUIRE(after.in_use >= bytes);
  REQUIRE(after.peak_in_use >= after.in_use);
  cuda::deallocate(second);
  REQUIRE(cuda::allocate(0) == nullptr);
}

TEST_CASE("a steady loop of device ops does not call cudaMalloc", "[cuda][memory]") {
  auto x = gkd::test::random<float>({64, 1000}, 1).cuda();
  auto step = [&] { return gkd::sum(gkd::relu(gkd::mul(x, x))).item(); };
  const float first = step();
  const auto warm = cuda::memory_stats();
  for (int i = 0; i < 5; ++i) REQUIRE(step() == first);
  REQUIRE(cuda::memory_stats().device_allocations == warm.device_allocations);
}

TEST_CASE("empty_cache returns the free blocks to the driver", "[cuda][memory]") {
  { auto t = Tensor<float>::zeros({1 << 20}, gkd::cuda_device()); }
  REQUIRE(cuda::memory_stats().cached > 0);
  cuda::empty_cache();
  const auto stats = cuda::memory_stats();
  REQUIRE(stats.cached == 0);
  REQUIRE(stats.reserved == stats.in_use);
}

TEST_CASE("tensors round-trip between host and device", "[cuda][memory]") {
  const auto x = gkd::test::random<double>({3, 4, 5}, 2);
  const auto d = x.cuda();
  REQUIRE(d.device() == gkd::cuda_device(0));
  REQUIRE(d.is_contiguous());
  REQUIRE(d.cpu().to_vector() == x.to_vector());
  REQUIRE(x.to(gkd::kCPU).storage() == x.storage());  // already there: no copy
  REQUIRE(d.cuda().storage() == d.storage());
  // device-to-device copy and strided views made contiguous on the device
  const auto p = d.permute({2, 0, 1});
  REQUIRE_FALSE(p.is_contiguous());
  REQUIRE(p.contiguous().cpu().to_vector() == x.permute({2, 0, 1}).contiguous().to_vector());
  REQUIRE(p.cpu().to_vector() == x.permute({2, 0, 1}).contiguous().to_vector());
  REQUIRE(d.slice(1, 1, 4, 2).clone().cpu().to_vector() == x.slice(1, 1, 4, 2).contiguous().to_vector());
  REQUIRE(Tensor<float>::full({7}, 2.5f, gkd::cuda_device()).cpu().to_vector() == std::vector<float>(7, 2.5f));
  REQUIRE(Tensor<float>::scalar(4.f).cuda().item() == 4.f);
  const auto empty = Tensor<float>::empty({0, 3}).cuda();
  REQUIRE(empty.numel() == 0);
  REQUIRE(empty.cpu().shape() == gkd::Shape{0, 3});
}

TEST_CASE("host element access to a device tensor is refused", "[cuda][memory]") {
  auto d = Tensor<float>::zeros({2, 2}, gkd::cuda_device());
  REQUIRE_THROWS_WITH(d.at({0, 0}), Catch::Contains("copy it with cpu()"));
}

TEST_CASE("events time work on the default stream and on an owned stream", "[cuda][memory]") {
  cuda::Event start, stop;
  start.record();
  auto y = gkd::exp(gkd::test::random<float>({1 << 16}, 3).cuda());
  stop.record();
  REQUIRE(stop.elapsed_ms(start) >= 0.f);
  cuda::Stream stream;
  REQUIRE(stream.handle() != nullptr);
  cuda::Event on_stream;
  on_stream.record(&stream);
  on_stream.synchronize();
  stream.synchronize();
  cuda::synchronize();
}
