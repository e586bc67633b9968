// SPDX-License-Identifier: Apache-2.0
#include "gkd/ops/norm.hpp"

#include "support/check.hpp"
#include "support/golden.hpp"

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

TEST_CASE("batch_norm2d gradcheck", "[gradcheck][norm]") {
  const auto x = add(random({3, 4, 3, 2}, 1, 2.0), 1.0), w = random({4}, 2), b = random({4}, 3);
  auto rm = random({4}, 4), rv = add(abs(random({4}, 5)), 0.5);
  SECTION("training with affine and running statistics") {
    require_gradcheck([&](const In& v) { return batch_norm2d(v[0], v[1], v[2], rm, rv, true); }, {x, w, b});
  }
  SECTION("training without affine or running statistics") {
    require_gradcheck([](const In& v) { return batch_norm2d(v[0], {}, {}, {}, {}, true, 0.1, 1e-3); }, {x});
  }
  SECTION("training with weight only, one image") {
    require_gradcheck([&](const In& v) { return batch_norm2d(v[0], v[1], {}, rm, rv, true); },
                      {random({1, 4, 2, 3}, 6), w});
  }
  SECTION("evaluation") {
    require_gradcheck([&](const In& v) { return batch_norm2d(v[0], v[1], v[2], rm, rv, false); }, {x, w, b});
    require_gradcheck([&](const In& v) { return batch_norm2d(v[0], {}, {}, rm, rv, false); }, {x});
  }
  SECTION("fused ReLU and ReLU6, training and evaluation") {
    const auto w6 = mul(w, 4.0);  // outputs past 6, so that relu6 clips on both sides
    for (const auto act : {FusedActivation::ReLU, FusedActivation::ReLU6}) {
      for (const bool training : {true, false}) {
        require_gradcheck([&](const In& v) { return batch_norm2d(v[0], v[1], v[2], rm, rv, training, 0.1, 1e-5, act); },
                          {x, w6, b});
        require_gradcheck([&](const In& v) { return batch_norm2d(v[0], {}, {}, rm, rv, training, 0.1, 1e-5, act); },
                          {x});
      }
    }
  }
}

TEMPLATE_TEST_CASE("batch_norm2d with a fused activation equals the separate ops bit for bit", "[norm]", float,
                   double) {
  using T = TestType;
  const auto x = gkd::test::random<T>({3, 4, 5, 6}, 21, 2.0);
  const auto w = mul(gkd::test::random<T>({4}, 22), T(4)), b = gkd::test::random<T>({4}, 23);
  const auto gout = gkd::test::random<T>({3, 4, 5, 6}, 24);
  for (const auto act : {FusedActivation::ReLU, FusedActivation::ReLU6}) {
    for (const bool training : {true, false}) {
      for (const bool affine : {true, false}) {
        INFO("activation " << static_cast<int>(act) << ", training " << training << ", affine " << affine);
        auto run = [&](bool fused) {
          auto rm = Tensor<T>::zeros({4}), rv = Tensor<T>::ones({4});
          const std::vector<Tensor<T>> in{x.clone().requires_grad(), w.clone().requires_grad(),
                                          b.clone().requires_grad()};
          const auto wi = affine ? in[1] : Tensor<T>(), bi = affine ? in[2] : Tensor<T>();
          const auto y = fused ? batch_norm2d(in[0], wi, bi, rm, rv, training, 0.1, 1e-5, act)
                               : activate(batch_norm2d(in[0], wi, bi, rm, rv, training), act);
          y.backward(gout);
          std::vector<std::vector<T>> values{y.to_vector(), in[0].grad().to_vector(), rm.to_vector(), rv.to_vector()};
          if (affine) values.insert(values.end(), {in[1].grad().to_vector(), in[2].grad().to_vector()});
          return std::pair{values, y.meta()->grad_fn->op};
        };
        const auto [fused, fused_op] = run(true);
        const auto [separate, separate_op] = run(false);
        REQUIRE(fused == separate);
        REQUIRE(fused_op == (act == FusedActivation::ReLU ? "batch_norm2d_relu" : "batch_norm2d_relu6"));
        REQUIRE(separate_op == (act == FusedActivation::ReLU ? "relu" : "relu6"));
        const auto y = fused[0];
        REQUIRE(std::count(y.begin(), y.end(), T(0)) > 0);  // the activation clipped something
        if (act == FusedActivation::ReLU6 && affine) REQUIRE(std::count(y.begin(), y.end(), T(6)) > 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("batch_norm2d matches PyTorch, running statistics and fused activations included", "[golden][norm]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("norm");
  const std::string dtype(dtype_name<T>());
  struct Case {
    const char* name;
    bool training, running;
    double momentum, eps;
    FusedActivation activation = FusedActivation::None;
  };
  constexpr auto relu = FusedActivation::ReLU, relu6 = FusedActivation::ReLU6;
  for (const Case c : {Case{"bn_train", true, true, 0.1, 1e-5}, Case{"bn_train_plain", true, true, 0.3, 1e-3},
                       Case{"bn_train_no_running", true, false, 0.1, 1e-5}, Case{"bn_eval", false, true, 0.1, 1e-5},
                       Case{"bn_eval_plain", false, true, 0.1, 1e-3}, Case{"bn_single_image", true, true, 0.5, 1e-5},
                       Case{"bn_relu_train", true, true, 0.1, 1e-5, relu},
                       Case{"bn_relu6_train", true, true, 0.1, 1e-5, relu6},
                       Case{"bn_relu_eval", false, true, 0.1, 1e-5, relu},
                       Case{"bn_relu6_eval_plain", false, true, 0.1, 1e-5, relu6}}) {
    INFO(c.name);
    Tensor<T> rm, rv;
    if (c.running) {
      rm = g.get<T>(std::string(c.name) + ".running_mean0");
      rv = g.get<T>(std::string(c.name) + ".running_var0");
    }
    const auto rm_before = rm.defined() ? rm.clone() : Tensor<T>();
    gkd::test::check_golden_case<T>(g, c.name, [&](const V& v) {
      const auto w = v.size() > 1 ? v[1] : Tensor<T>(), b = v.size() > 2 ? v[2] : Tensor<T>();
      return batch_norm2d(v[0], w, b, rm, rv, c.training, c.momentum, c.eps, c.activation);
    });
    const double tol = std::is_same_v<T, double> ? 1e-10 : 1e-5;
    if (c.running && c.training) {
      gkd::test::require_close(rm, g.get<T>(std::string(c.name) + "." + dtype + ".running_mean"), tol, "running_mean");
      gkd::test::require_close(rv, g.get<T>(std::string(c.name) + "." + dtype + ".running_var"), tol, "running_var");
    } else if (c.running) {
      REQUIRE(rm.to_vector() == rm_before.to_vector());  // evaluation leaves the statistics alone
    }
  }
}

TEST_CASE("batch_norm2d normalises each channel and accepts views", "[norm]") {
  const auto base = add(random({2, 3, 6, 5}, 10, 3.0), 2.0);
  const auto x = base.permute({0, 1, 3, 2});  // non-contiguous
  auto rm = Tensor<double>::zeros({3}), rv = Tensor<double>::ones({3});
  const auto y = batch_norm2d(x, {}, {}, rm, rv, true);
  const auto m = mean(y, {0, 2, 3});
  const auto v = mean(mul(y, y), {0, 2, 3});
  for (std::int64_t c = 0; c < 3; ++c) {
    REQUIRE(std::abs(m.at({c})) < 1e-12);
    REQUIRE(std::abs(v.at({c}) - 1.0) < 1e-5);  // biased variance / (var + eps)
  }
  // Running statistics live in a strided view of a bigger buffer: updates go through the view.
  auto stats = Tensor<double>::zeros({3, 2});
  auto rm_view = stats.select(1, 0).detach(), rv_view = stats.select(1, 1).detach();
  detail::copy_into(rv_view, Tensor<double>::ones({3}));
  batch_norm2d(x, {}, {}, rm_view, rv_view, true);
  REQUIRE(rm_view.to_vector() == rm.to_vector());
  REQUIRE(rv_view.to_vector() == rv.to_vector());
}

TEST_CASE("batch_norm2d bad input raises gkd::Error naming op and shapes", "[errors][norm]") {
  using F = Tensor<float>;
  using Catch::Contains;
  const auto x = F::zeros({2, 3, 4, 4}), p = F::ones({3});
  REQUIRE_THROWS_WITH(batch_norm2d(F::zeros({2, 3, 4}), p, p, p, p, true),
                      Contains("batch_norm2d") && Contains("[2, 3, 4]") && Contains("4-D"));
  REQUIRE_THROWS_WITH(batch_norm2d(x, F::ones({4}), p, p, p, true),
                      Contains("batch_norm2d") && Contains("weight") && Contains("[4]") && Contains("[2, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(batch_norm2d(x, p, F::ones({3, 1}), p, p, true), Contains("batch_norm2d") && Contains("bias"));
  REQUIRE_THROWS_WITH(batch_norm2d(x, p, p, F::ones({2}), p, true), Contains("batch_norm2d") && Contains("running_mean"));
  REQUIRE_THROWS_WITH(batch_norm2d(x, p, p, p, F::ones({5}), false), Contains("batch_norm2d") && Contains("running_var"));
  REQUIRE_THROWS_WITH(batch_norm2d(x, p, p, F(), F(), false),
                      Contains("batch_norm2d") && Contains("evaluation") && Contains("[2, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(batch_norm2d(F::zeros({1, 3, 1, 1}), p, p, p, p, true),
                      Contains("batch_norm2d") && Contains("more than 1 value") && Contains("[1, 3, 1, 1]"));
  REQUIRE_THROWS_WITH(batch_norm2d(F(), p, p, p, p, true), Contains("batch_norm2d") && Contains("undefined"));
  REQUIRE_THROWS_WITH(batch_norm2d(x, p, p, p, p, true, 0.1, -1.0), Contains("batch_norm2d") && Contains("eps"));
}
