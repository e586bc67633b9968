// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"
#include "support/golden.hpp"

#include "gkd/cuda/memory.hpp"  // merge_dims: host code, no CUDA needed

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("views share storage and index correctly", "[views]") {
  auto t = Tensor<float>::from({2, 3}, {0, 1, 2, 3, 4, 5});
  auto tt = t.transpose(0, 1);
  REQUIRE(tt.shape() == Shape{3, 2});
  REQUIRE(!tt.is_contiguous());
  REQUIRE(tt.data() == t.data());
  REQUIRE(tt.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  REQUIRE(tt.contiguous().is_contiguous());
  REQUIRE(t.reshape({3, -1}).shape() == Shape{3, 2});
  REQUIRE(t.slice(1, 0, 3, 2).to_vector() == std::vector<float>{0, 2, 3, 5});
  REQUIRE(t.narrow(1, 1, 2).to_vector() == std::vector<float>{1, 2, 4, 5});
  REQUIRE(t.select(0, -1).to_vector() == std::vector<float>{3, 4, 5});
  REQUIRE(t.unsqueeze(0).shape() == Shape{1, 2, 3});
  REQUIRE(t.unsqueeze(2).squeeze(2).shape() == Shape{2, 3});
  REQUIRE(t.select(1, 0).unsqueeze(1).expand({2, 4}).to_vector() == std::vector<float>{0, 0, 0, 0, 3, 3, 3, 3});
  REQUIRE(Tensor<float>::zeros({2, 3, 4, 5}).flatten(1).shape() == Shape{2, 60});
  REQUIRE(Tensor<float>::zeros({2, 3, 4, 5}).flatten(1, 2).shape() == Shape{2, 12, 5});
  auto c = t.clone();
  c.at({0, 0}) = 100;
  REQUIRE(t.at({0, 0}) == 0);
  REQUIRE(tt.reshape({6}).to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});  // copies when needed
}

TEST_CASE("views gradcheck", "[gradcheck][views]") {
  const auto x = random({2, 3, 4}, 31);
  require_gradcheck([](const In& v) { return v[0].reshape({4, -1}); }, {x});
  require_gradcheck([](const In& v) { return v[0].permute({2, 0, 1}); }, {x});
  require_gradcheck([](const In& v) { return v[0].transpose(0, 2).reshape({-1}); }, {x});
  require_gradcheck([](const In& v) { return v[0].slice(2, 1, 4, 2); }, {x});
  require_gradcheck([](const In& v) { return v[0].narrow(1, 1, 2).select(0, 1); }, {x});
  require_gradcheck([](const In& v) { return v[0].unsqueeze(1).expand({2, 5, 3, 4}); }, {x});
  require_gradcheck([](const In& v) { return v[0].narrow(0, 0, 1).squeeze(0); }, {x});
  require_gradcheck([](const In& v) { return v[0].clone() * v[0].contiguous(); }, {x});
  require_gradcheck([](const In& v) { return v[0].flatten(0, 1); }, {x});
}

TEST_CASE("view errors name the op and shapes", "[views][errors]") {
  const auto t = Tensor<float>::zeros({2, 3});
  REQUIRE_THROWS_WITH(t.reshape({4, 2}), Catch::Contains("reshape") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 2]"));
  REQUIRE_THROWS_WITH(t.reshape({-1, -1}), Catch::Contains("more than one -1"));
  REQUIRE_THROWS_WITH(t.permute({0, 0}), Catch::Contains("appears twice"));
  REQUIRE_THROWS_WITH(t.permute({0}), Catch::Contains("permute"));
  REQUIRE_THROWS_WITH(t.slice(1, 2, 1), Catch::Contains("slice"));
  REQUIRE_THROWS_WITH(t.slice(1, 0, 3, 0), Catch::Contains("step"));
  REQUIRE_THROWS_WITH(t.select(0, 2), Catch::Contains("select"));
  REQUIRE_THROWS_WITH(t.expand({4, 3, 2}), Catch::Contains("expand") && Catch::Contains("[4, 3, 2]"));
  REQUIRE_THROWS_WITH(t.squeeze(0), Catch::Contains("squeeze") && Catch::Contains("is not 1"));
  REQUIRE_THROWS_WITH(t.unsqueeze(4), Catch::Contains("unsqueeze"));
  REQUIRE_THROWS_WITH(t.flatten(1, 0), Catch::Contains("flatten"));
  REQUIRE_THROWS_WITH(t.transpose(0, 3), Catch::Contains("transpose"));
}

namespace {
/// The (destination, source) offset pairs of a strided layout in row-major order.
std::vector<std::pair<std::int64_t, std::int64_t>> offset_pairs(const cuda::StridedPair& l) {
  std::int64_t n = 1;
  for (int d = 0; d < l.rank; ++d) n *= l.shape[d];
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t rest = i, dst = 0, src = 0;
    for (int d = l.rank - 1; d >= 0; --d) {
      dst += (rest % l.shape[d]) * l.dst_stride[d];
      src += (rest % l.shape[d]) * l.src_stride[d];
      rest /= l.shape[d];
    }
    out.emplace_back(dst, src);
  }
  return out;
}
cuda::StridedPair layout(std::vector<std::int64_t> shape, std::vector<std::int64_t> dst, std::vector<std::int64_t> src) {
  cuda::StridedPair l;
  l.rank = static_cast<int>(shape.size());
  for (int d = 0; d < l.rank; ++d) l.shape[d] = shape[d], l.dst_stride[d] = dst[d], l.src_stride[d] = src[d];
  return l;
}
}  // namespace

TEST_CASE("merge_dims keeps every element pair and merges what is contiguous on both sides", "[views]") {
  const cuda::StridedPair contiguous = layout({2, 3, 4}, {12, 4, 1}, {12, 4, 1});
  const cuda::StridedPair transposed = layout({3, 2, 4}, {8, 4, 1}, {4, 12, 1});  // dims 0, 1 swapped in src
  const cuda::StridedPair sliced = layout({2, 1, 3, 5}, {15, 15, 5, 1}, {30, 30, 10, 1});  // 5 of 10 columns
  const cuda::StridedPair broadcast = layout({4, 1, 6}, {6, 6, 1}, {0, 0, 1});
  const cuda::StridedPair single = layout({1, 1}, {1, 1}, {7, 3});
  for (const auto& l : {contiguous, transposed, sliced, broadcast, single}) {
    const cuda::StridedPair m = cuda::merge_dims(l);
    REQUIRE(offset_pairs(m) == offset_pairs(l));
  }
  const cuda::StridedPair m = cuda::merge_dims(contiguous);
  REQUIRE((m.rank == 1 && m.shape[0] == 24 && m.dst_stride[0] == 1 && m.src_stride[0] == 1));
  REQUIRE(cuda::merge_dims(transposed).rank == 3);  // nothing merges across the swapped dims
  REQUIRE(cuda::merge_dims(sliced).rank == 2);      // the size-1 dim goes, rows stay apart
  REQUIRE(cuda::merge_dims(broadcast).rank == 2);
  REQUIRE(cuda::merge_dims(single).rank == 0);
}
