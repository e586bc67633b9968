// SPDX-License-Identifier: Apache-2.0
#include "support/check.hpp"

using namespace gkd;

TEST_CASE("gradients accumulate across backward calls and zero_grad clears them", "[autograd]") {
  auto w = Tensor<double>::from({2}, {1, 2}).requires_grad();
  sum(w * w).backward();
  REQUIRE(w.grad().to_vector() == std::vector<double>{2, 4});
  sum(w * 3.0).backward();
  REQUIRE(w.grad().to_vector() == std::vector<double>{5, 7});
  w.zero_grad();
  REQUIRE(!w.grad().defined());
}

TEST_CASE("a tensor used twice receives the sum of both paths", "[autograd]") {
  auto x = Tensor<double>::from({3}, {1, 2, 3}).requires_grad();
  auto y = x * x + exp(x) - x.reshape({3, 1}).squeeze(1);
  sum(y).backward();
  const auto g = x.grad().to_vector();
  for (int i = 0; i < 3; ++i) REQUIRE(g[i] == Approx(2 * (i + 1) + std::exp(i + 1.0) - 1));
}

TEST_CASE("leaves sharing one output gradient keep separate gradient buffers", "[autograd]") {
  // add's backward hands the same gradient to both inputs: neither leaf may take it over while the
  // other still holds it, or the second backward would accumulate into both through one buffer.
  auto a = Tensor<double>::from({2}, {1, 2}).requires_grad();
  auto b = Tensor<double>::from({2}, {3, 4}).requires_grad();
  auto y = (a + b).retain_grad();
  y.backward(Tensor<double>::from({2}, {1, 10}), true);
  REQUIRE(a.grad().data() != b.grad().data());
  REQUIRE(a.grad().data() != y.grad().data());
  y.backward(Tensor<double>::from({2}, {1, 10}));
  REQUIRE(a.grad().to_vector() == std::vector<double>{2, 20});
  REQUIRE(b.grad().to_vector() == std::vector<double>{2, 20});
  REQUIRE(y.grad().to_vector() == std::vector<double>{2, 20});
  // A leaf that is the sole holder of its gradient keeps that buffer; accumulation still adds.
  auto w = Tensor<double>::from({2}, {1, 2}).requires_grad();
  sum(w * w).backward();
  sum(w * w).backward();
  REQUIRE(w.grad().to_vector() == std::vector<double>{4, 8});
}

TEST_CASE("a gradient set by hand: shape checked, views kept, strided ones summed out of place", "[autograd]") {
  auto x = Tensor<double>::from({2, 2}, {1, 2, 3, 4}).requires_grad();
  REQUIRE_THROWS_WITH(x.set_grad(Tensor<double>::zeros({4})),
                      Catch::Contains("set_grad") && Catch::Contains("[4]") && Catch::Contains("[2, 2]"));
  // A transposed view is held as given; backward then adds into a contiguous copy, not into its base.
  const auto base = Tensor<double>::from({2, 2}, {10, 20, 30, 40});
  x.set_grad(base.transpose(0, 1));
  sum(x * Tensor<double>::from({2, 2}, {1, 2, 3, 4})).backward();
  REQUIRE(x.grad().to_vector() == std::vector<double>{11, 32, 23, 44});
  REQUIRE(base.to_vector() == std::vector<double>{10, 20, 30, 40});
  // An expanded (stride-0) view: every element is its own sum.
  x.set_grad(Tensor<double>::from({1, 2}, {1, 2}).expand({2, 2}));
  sum(x).backward();
  REQUIRE(x.grad().to_vector() == std::vector<double>{2, 3, 2, 3});
}

TEST_CASE("explicit output gradient, retain_graph and non-leaf retain_grad", "[autograd]") {
  auto x = Tensor<double>::from({2}, {1, 2}).requires_grad();
  auto h = (x * 2.0).retain_grad();
  auto y = h * h;
  y.backward(Tensor<double>::from({2}, {1, 10}), true);
  REQUIRE(x.grad().to_vector() == std::vector<double>{8, 160});
  REQUIRE(h.grad().to_vector() == std::vector<double>{4, 80});
  y.backward(Tensor<double>::from({2}, {1, 0}));  // graph was retained
  REQUIRE(x.grad().to_vector() == std::vector<double>{16, 160});
}

TEST_CASE("misuse of backward raises clear errors", "[autograd][errors]") {
  auto x = Tensor<double>::from({2}, {1, 2}).requires_grad();
  auto y = sum(x * x);
  y.backward();
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("freed graph") && Catch::Contains("retain_graph"));
  REQUIRE_THROWS_WITH(sum(Tensor<double>::ones({2})).backward(), Catch::Contains("no input") && Catch::Contains("requires grad"));
  REQUIRE_THROWS_WITH((x * 2.0).backward(), Catch::Contains("one-element") && Catch::Contains("[2]"));
  REQUIRE_THROWS_WITH((x * 2.0).backward(Tensor<double>::ones({3})), Catch::Contains("[3]") && Catch::Contains("[2]"));
  REQUIRE_THROWS_WITH((x * 2.0).requires_grad(false), Catch::Contains("leaf"));
  REQUIRE_THROWS_WITH(Tensor<double>().backward(), Catch::Contains("undefined"));
}

TEST_CASE("NoGrad and detach stop recording", "[autograd]") {
  auto x = Tensor<double>::ones({2}).requires_grad();
  {
    NoGrad guard;
    REQUIRE(!grad_enabled());
    REQUIRE(!(x * 2.0).requires_grad_flag());
  }
  REQUIRE(grad_enabled());
  REQUIRE(!x.detach().requires_grad_flag());
  REQUIRE(x.detach().data() == x.data());
  auto y = sum(x * x.detach());  // the detached factor is a constant
  y.backward();
  REQUIRE(x.grad().to_vector() == std::vector<double>{1, 1});
}

TEST_CASE("saved buffers are released after backward", "[autograd]") {
  auto x = Tensor<double>::ones({1000}).requires_grad();
  std::weak_ptr<Storage<double>> saved;
  Tensor<double> y;
  {
    auto e = exp(x);  // exp saves its output for backward
    saved = e.storage();
    y = sum(e);
  }
  REQUIRE(!saved.expired());  // kept alive by the graph
  y.backward();
  REQUIRE(saved.expired());
}

TEST_CASE("unary ops keep only the operand their derivative reads", "[autograd]") {
  auto x = Tensor<double>::from({4}, {-1, 0.5, 2, -3}).requires_grad();
  auto kept_after = [&](auto op) {  // whether the graph keeps op's input alive
    std::weak_ptr<Storage<double>> input;
    Tensor<double> y;
    {
      const auto h = x * 2.0;  // mul by a scalar keeps nothing
      input = h.storage();
      y = op(h);
    }
    const bool kept = !input.expired();
    sum(y).backward();
    return kept;
  };
  REQUIRE(!kept_after([](const auto& h) { return relu(h); }));  // relu and relu6 keep their output
  REQUIRE(!kept_after([](const auto& h) { return relu6(h); }));
  REQUIRE(!kept_after([](const auto& h) { return sigmoid(h); }));
  REQUIRE(kept_after([](const auto& h) { return leaky_relu(h, 0.1); }));  // its derivative reads the input
  // Every backward above added to x.grad: 2 * (relu' + relu6' + sigmoid' + leaky_relu') at 2x.
  const auto g = x.grad().to_vector();
  const std::vector<double> h{-2, 1, 4, -6};
  for (std::size_t i = 0; i < h.size(); ++i) {
    const double s = 1 / (1 + std::exp(-h[i]));
    const double expected = 2 * ((h[i] > 0) + (h[i] > 0 && h[i] < 6) + s * (1 - s) + (h[i] > 0 ? 1 : 0.1));
    REQUIRE(g[i] == Approx(expected));
  }
}

TEST_CASE("deep graphs do not overflow the stack", "[autograd]") {
  auto x = Tensor<double>::scalar(1.0).requires_grad();
  auto y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.0;
  y.backward();
  REQUIRE(x.grad().item() == 1.0);
}

TEST_CASE("a backward returning a wrongly shaped gradient is caught", "[autograd][errors]") {
  auto x = Tensor<double>::ones({3}).requires_grad();
  auto y = record("clone", Tensor<double>::ones({3}), {x},
                  [](const Tensor<double>&) { return std::vector<Tensor<double>>{Tensor<double>::ones({4})}; });
  REQUIRE_THROWS_WITH(sum(y).backward(), Catch::Contains("clone") && Catch::Contains("[4]") && Catch::Contains("[3]"));
}
