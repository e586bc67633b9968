// SPDX-License-Identifier: Apache-2.0
// Autocast on the CPU: the 16-bit roundings themselves, and conv2d, conv_transpose2d, matmul and linear
// under a gkd::Autocast scope against the same float32 ops run on explicitly rounded tensors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "gkd/ops/conv.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_close;

TEST_CASE("bfloat16 rounding is to nearest, ties to even", "[autocast]") {
  CHECK(round_to_bf16(1.0f) == 1.0f);
  CHECK(round_to_bf16(1.0f + 0x1p-9f) == 1.0f);                 // below the halfway point
  CHECK(round_to_bf16(1.0f + 0x1p-8f) == 1.0f);                 // halfway: to the even 1.0
  CHECK(round_to_bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);   // halfway: to the even 1 + 2^-6
  CHECK(round_to_bf16(-(1.0f + 0x1p-7f + 0x1p-10f)) == -(1.0f + 0x1p-7f));
  CHECK(round_to_bf16(3.0e38f) == 226 * 0x1p120f);                // 225.7 steps of 2^120
  CHECK(std::isinf(round_to_bf16(3.4028235e38f)));              // FLT_MAX rounds up past bf16's largest
  CHECK(std::isnan(round_to_bf16(NAN)));
  CHECK(std::signbit(round_to_bf16(-0.0f)));
}

TEST_CASE("half rounding is to nearest, ties to even, with subnormals and overflow", "[autocast]") {
  CHECK(round_to_f16(1.0f + 0x1p-11f) == 1.0f);                 // halfway: to the even 1.0
  CHECK(round_to_f16(1.0f + 3 * 0x1p-11f) == 1.0f + 0x1p-9f);
  CHECK(round_to_f16(65504.f) == 65504.f);
  CHECK(round_to_f16(65519.f) == 65504.f);
  CHECK(std::isinf(round_to_f16(65520.f)));
  CHECK(round_to_f16(-70000.f) == -INFINITY);
  CHECK(round_to_f16(0x1p-24f) == 0x1p-24f);                    // the smallest subnormal
  CHECK(round_to_f16(0x1p-25f) == 0.0f);                        // halfway: to the even 0
  CHECK(round_to_f16(3 * 0x1p-25f) == 0x1p-23f);                // halfway: to the even 2^-23
  CHECK(round_to_f16(0x1p-14f + 0x1p-25f) == 0x1p-14f);         // smallest normal: spacing 2^-24
  CHECK(std::isnan(round_to_f16(NAN)));
}

TEST_CASE("autocast scopes nest and restore the precision", "[autocast]") {
  CHECK(autocast_precision() == Precision::f32);
  {
    Autocast outer(Precision::bf16);
    CHECK(autocast_precision() == Precision::bf16);
    {
      Autocast inner(Precision::f16);
      CHECK(autocast_precision() == Precision::f16);
    }
    CHECK(autocast_precision() == Precision::bf16);
  }
  CHECK(autocast_precision() == Precision::f32);
}

namespace {

using Inputs = std::vector<Tensor<float>>;
using Op = std::function<Tensor<float>(const Inputs&)>;

Tensor<float> rounded(const Tensor<float>& t, Precision p) { return detail::rounded_copy(t, p); }

/// `op` under autocast equals the float32 op on rounded inputs, rounded; the input gradients equal the
/// float32 op's gradients for the rounded output gradient, rounded. Exactly: the same kernels run in
/// the same order.
void require_autocast_semantics(const Op& op, const Inputs& inputs, Precision p, const std::string& what) {
  INFO(what << " in " << to_string(p));
  Inputs a, r;
  for (const auto& t : inputs) a.push_back(t.detach().clone().requires_grad());
  for (const auto& t : inputs) r.push_back(rounded(t, p).requires_grad());
  Tensor<float> y;
  {
    Autocast scope(p);
    y = op(a);
  }
  const Tensor<float> expected = rounded(op(r), p);
  REQUIRE(y.shape() == expected.shape());
  require_close(y, expected, 0.0, what + " forward");
  {  // and near float32: rounding x, w, the bias and the result by unit roundoff u bounds the error by
     // 3 u op(|x|, |w|, |b|) (u = 2^-8 for bf16, 2^-11 for half), float32's own error aside
    Inputs magnitudes;
    for (const auto& t : inputs) magnitudes.push_back(abs(t));
    const auto bound = op(magnitudes).to_vector(), plain = op(inputs).to_vector(), got = y.to_vector();
    const double u = p == Precision::bf16 ? 0x1p-8 : 0x1p-11;
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("element " << i << ": " << got[i] << " against float32 " << plain[i]);
      REQUIRE(std::abs(double(got[i]) - plain[i]) <= (3 * u + 1e-6) * bound[i]);
    }
  }

  const Tensor<float> g = random<float>(y.shape(), 99);
  y.backward(g);
  const Tensor<float> gr = rounded(g, p);
  op(r).backward(gr);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    require_close(a[i].grad(), rounded(r[i].grad(), p), 0.0, what + " gradient of input " + std::to_string(i));
}

}  // namespace

TEST_CASE("conv2d, conv_transpose2d, matmul and linear round as autocast says", "[autocast]") {
  const auto x = random<float>({2, 3, 7, 6}, 1), w = random<float>({4, 3, 3, 3}, 2), b = random<float>({4}, 3);
  const auto wt = random<float>({3, 4, 3, 3}, 4);
  for (const Precision p : {Precision::bf16, Precision::f16}) {
    require_autocast_semantics([](const Inputs& in) { return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor<float>(), 2, 1); },
                               {x, w, b}, p, "conv2d");
    require_autocast_semantics(
        [](const Inputs& in) { return conv_transpose2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor<float>(), 2, 1, 1); },
        {x, wt, b}, p, "conv_transpose2d");
    require_autocast_semantics([](const Inputs& in) { return matmul(in[0], in[1]); },
                               {random<float>({2, 5, 6}, 5), random<float>({2, 6, 3}, 6)}, p, "matmul");
    require_autocast_semantics([](const Inputs& in) { return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor<float>()); },
                               {random<float>({5, 6}, 7), random<float>({4, 6}, 8), random<float>({4}, 9)}, p, "linear");
  }
}

TEST_CASE("float64 ops ignore autocast", "[autocast]") {
  const auto x = random<double>({1, 2, 5, 5}, 11), w = random<double>({3, 2, 3, 3}, 12);
  const Tensor<double> plain = conv2d(x, w);
  Autocast scope(Precision::bf16);
  require_close(conv2d(x, w), plain, 0.0, "conv2d in float64");
}

TEST_CASE("16-bit roundings equal PyTorch's casts", "[autocast][golden]") {
  const test::Golden golden("autocast");
  for (const auto& [tag, p] : {std::pair{"bf16", Precision::bf16}, std::pair{"f16", Precision::f16}}) {
    const auto in = golden.get<float>(std::string("round_") + tag + ".in");
    require_close(rounded(in, p), golden.get<float>(std::string("round_") + tag + ".out"), 0.0, tag);
  }
}

TEST_CASE("autocast results are within one 16-bit unit of the exact results", "[autocast][golden]") {
  // The exact results: PyTorch in float64 on the inputs and output gradient cast to 16 bits
  // (tools/golden/autocast.py). gkd accumulates in float32 and rounds once, so each element is within
  // half a unit in the last 16-bit place (u |t|; 2 u |t| allowed), apart from float32 summation noise
  // where a result cancels to near 0 (1e-5 of the largest element).
  const test::Golden golden("autocast");
  const std::vector<std::pair<std::string, Op>> cases = {
      {"conv2d", [](const Inputs& in) { return conv2d(in[0], in[1], in[2], 2, 1); }},
      {"conv_transpose2d", [](const Inputs& in) { return conv_transpose2d(in[0], in[1], in[2], 2, 1, 1); }},
      {"matmul", [](const Inputs& in) { return matmul(in[0], in[1]); }},
      {"linear", [](const Inputs& in) { return linear(in[0], in[1], in[2]); }}};
  for (const auto& [tag, p] : {std::pair{"bf16", Precision::bf16}, std::pair{"f16", Precision::f16}}) {
    const double u = p == Precision::bf16 ? 0x1p-8 : 0x1p-11;
    for (const auto& [name, op] : cases) {
      const std::string key = name + "_" + tag;
      INFO(key);
      Inputs in;
      for (int i = 0; golden.has(key + ".in" + std::to_string(i)); ++i)
        in.push_back(golden.get<float>(key + ".in" + std::to_string(i)).requires_grad());
      Tensor<float> y;
      {
        Autocast scope(p);
        y = op(in);
      }
      y.backward(golden.get<float>(key + ".gout"));
      std::vector<std::pair<Tensor<float>, std::string>> checks = {{y, ".exact_out"}};
      for (std::size_t i = 0; i < in.size(); ++i) checks.push_back({in[i].grad(), ".exact_grad" + std::to_string(i)});
      for (const auto& [actual, suffix] : checks) {
        const auto got = actual.to_vector();
        const auto exact = golden.get<double>(key + suffix).to_vector();
        REQUIRE(got.size() == exact.size());
        double largest = 0;
        for (double v : exact) largest = std::max(largest, std::abs(v));
        for (std::size_t i = 0; i < got.size(); ++i) {
          INFO(suffix << " element " << i << ": gkd " << got[i] << " exact " << exact[i]);
          REQUIRE(std::abs(got[i] - exact[i]) <= 2 * u * std::abs(exact[i]) + 1e-5 * largest);
        }
      }
    }
  }
}
