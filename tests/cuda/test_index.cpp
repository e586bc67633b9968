// SPDX-License-Identifier: Apache-2.0
// index_select, gather, split and chunk on the GPU against the CPU, forward and backward, float32 and
// float64. All four only move elements (the backward of index_select and gather adds repeated
// indices in the CPU's order), so GPU and CPU must agree exactly. Also: non-contiguous data, repeated
// and empty indices, 0-d gather, and the errors for bad indices (found on the device) and mixed devices.
#include <catch2/catch.hpp>

#include <cmath>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::random_integers;
using gkd::test::require_gpu_matches_cpu;

namespace {

template <gkd::Real T>
void check_index_select() {
  const auto x = random<T>({3, 5, 4}, 201);
  for (std::int64_t d : {0, 1, 2, -1}) {
    const auto k = static_cast<std::size_t>(d < 0 ? d + 3 : d);
    const auto idx = random_integers<T>({7}, x.shape()[k], 202);  // 7 picks from at most 5: repeats
    require_gpu_matches_cpu<T>([d](const auto& in) { return gkd::index_select(in[0], d, in[1]); }, {x, idx}, 0.0, 0.0,
                               "index_select (tensor) dim " + std::to_string(d), {1});
    const std::vector<std::int64_t> list = {2, 0, 2, 1};
    require_gpu_matches_cpu<T>([d, list](const auto& in) { return gkd::index_select(in[0], d, list); }, {x}, 0.0, 0.0,
                               "index_select (list) dim " + std::to_string(d));
  }
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::index_select(in[0].transpose(0, 2), 1, in[1]); },
                             {x, random_integers<T>({6}, 5, 203)}, 0.0, 0.0, "index_select of a transposed view", {1});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::index_select(in[0], 1, in[1]); },
                             {x, Tensor<T>::scalar(T(3))}, 0.0, 0.0, "index_select with a 0-d index", {1});
  require_gpu_matches_cpu<T>(
      [](const auto& in) { return gkd::index_select(in[0], 1, std::vector<std::int64_t>{}); }, {x}, 0.0, 0.0,
      "index_select with no index");
}

template <gkd::Real T>
void check_gather() {
  const auto x = random<T>({3, 5, 4}, 211);
  for (std::int64_t d : {0, 1, 2, -2}) {
    const auto k = static_cast<std::size_t>(d < 0 ? d + 3 : d);
    gkd::Shape shape = {2, 4, 3};  // smaller than x in every other dim
    shape[k] = 6;                  // more picks than x.size(d): repeats
    const auto idx = random_integers<T>(shape, x.shape()[k], 212 + k);
    require_gpu_matches_cpu<T>([d](const auto& in) { return gkd::gather(in[0], d, in[1]); }, {x, idx}, 0.0, 0.0,
                               "gather dim " + std::to_string(d), {1});
  }
  // the class-pick of nll_loss: [N, C, H, W] by [N, 1, H, W]
  const auto logp = random<T>({2, 4, 3, 5}, 216);
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::gather(in[0], 1, in[1]); },
                             {logp, random_integers<T>({2, 1, 3, 5}, 4, 217)}, 0.0, 0.0, "gather of classes", {1});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::gather(in[0].permute({2, 0, 1}), 2, in[1]); },
                             {x, random_integers<T>({4, 3, 7}, 5, 218)}, 0.0, 0.0, "gather from a permuted view", {1});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::gather(in[0], 0, in[1]); },
                             {Tensor<T>::scalar(T(1.5)), Tensor<T>::scalar(T(0))}, 0.0, 0.0, "0-d gather", {1});
  require_gpu_matches_cpu<T>([](const auto& in) { return gkd::gather(in[0], 1, in[1]); },
                             {x, Tensor<T>::zeros({3, 0, 4})}, 0.0, 0.0, "gather with an empty index", {1});
}

template <gkd::Real T>
void check_split_chunk() {
  const auto x = random<T>({4, 7, 3}, 221);
  for (std::int64_t d : {0, 1, 2}) {
    // every part is used differently so that each one's gradient is checked
    auto scaled = [](const std::vector<Tensor<T>>& parts, std::int64_t dim) {
      std::vector<Tensor<T>> out;
      for (std::size_t i = 0; i < parts.size(); ++i) out.push_back(gkd::mul(parts[i], T(i + 1)));
      return gkd::concat(out, dim);
    };
    const std::int64_t n = x.shape()[static_cast<std::size_t>(d)];
    const std::vector<std::int64_t> sizes = {1, n - 1};
    require_gpu_matches_cpu<T>([&](const auto& in) { return scaled(gkd::split(in[0], sizes, d), d); }, {x}, 0.0, 0.0,
                               "split by sizes, dim " + std::to_string(d));
    require_gpu_matches_cpu<T>([&](const auto& in) { return scaled(gkd::split(in[0], std::int64_t{2}, d), d); }, {x},
                               0.0, 0.0, "split by 2, dim " + std::to_string(d));
    require_gpu_matches_cpu<T>([&](const auto& in) { return scaled(gkd::chunk(in[0], 3, d), d); }, {x}, 0.0, 0.0,
                               "chunk into 3, dim " + std::to_string(d));
  }
  const auto parts = gkd::chunk(x.cuda(), 2, 1);
  REQUIRE(parts.size() == 2);
  for (const auto& p : parts) REQUIRE(p.device().is_cuda());
  REQUIRE(parts[1].shape() == gkd::Shape{4, 3, 3});
  gkd::test::require_close(parts[1], gkd::chunk(x, 2, 1)[1], 0.0, "chunk view values");
}

}  // namespace

TEST_CASE("index_select matches the CPU forward and backward", "[cuda][index]") {
  check_index_select<float>();
  check_index_select<double>();
}

TEST_CASE("gather matches the CPU forward and backward", "[cuda][index]") {
  check_gather<float>();
  check_gather<double>();
}

TEST_CASE("split and chunk return GPU views whose gradients match the CPU", "[cuda][index]") {
  check_split_chunk<float>();
  check_split_chunk<double>();
}

TEST_CASE("index_select and gather on the GPU reject bad indices like the CPU", "[cuda][index]") {
  const auto x = random<float>({2, 3}, 231).cuda();
  REQUIRE_THROWS_WITH(gkd::index_select(x, 1, std::vector<std::int64_t>{3}),
                      Catch::Contains("index_select") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(gkd::index_select(x, 1, Tensor<float>::from({2}, {0, -1}).cuda()),
                      Catch::Contains("index_select") && Catch::Contains("-1"));
  REQUIRE_THROWS_WITH(gkd::index_select(x, 0, Tensor<float>::from({1}, {0.5f}).cuda()),
                      Catch::Contains("index_select") && Catch::Contains("0.5"));
  REQUIRE_THROWS_WITH(gkd::index_select(x, 0, Tensor<float>::zeros({1})), Catch::Contains("one device"));
  // found by the device check, reported with the CPU's message (value and flat position)
  auto bad = Tensor<float>::zeros({2, 2});
  bad.data()[3] = 3;
  REQUIRE_THROWS_WITH(gkd::gather(x, 1, bad.cuda()),
                      Catch::Contains("gather") && Catch::Contains("holds 3 at flat index 3"));
  bad.data()[3] = NAN;
  REQUIRE_THROWS_WITH(gkd::gather(x, 1, bad.cuda()), Catch::Contains("gather") && Catch::Contains("non-integer"));
  bad.data()[3] = 1.25f;
  REQUIRE_THROWS_WITH(gkd::gather(x, 1, bad.cuda()), Catch::Contains("gather") && Catch::Contains("1.25"));
  REQUIRE_THROWS_WITH(gkd::gather(x, 1, Tensor<float>::zeros({3, 1}).cuda()),
                      Catch::Contains("gather") && Catch::Contains("[3, 1]"));
  REQUIRE_THROWS_WITH(gkd::gather(x, 1, Tensor<float>::zeros({2, 1})), Catch::Contains("one CUDA device"));
}
