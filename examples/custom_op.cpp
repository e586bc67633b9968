// SPDX-License-Identifier: Apache-2.0
// How to add your own differentiable op to gkd: compute the forward value, then `gkd::record` it
// with a closure that maps the output gradient to one gradient per input. Register the name so that
// your test suite can enumerate it, and prove the backward with gkd::gradcheck in float64.
#include <cmath>
#include <iostream>

#include <gkd/gkd.hpp>

namespace my {

/// swish(x) = x * sigmoid(beta * x), with d/dx = s + beta * x * s * (1 - s).
template <gkd::Real T>
gkd::Tensor<T> swish(const gkd::Tensor<T>& x, T beta = T(1)) {
  // 1. forward, on plain values (gkd::detail::map applies a scalar function elementwise)
  auto sig = [beta](T v) { return T(1) / (T(1) + std::exp(-beta * v)); };
  gkd::Tensor<T> y = gkd::detail::map(x, [sig](T v) { return v * sig(v); });
  // 2. backward: save what it needs (detached, so the closure holds values, not graph)
  return gkd::record("swish", y, {x}, [x = x.detach(), sig, beta](const gkd::Tensor<T>& grad) {
    gkd::Tensor<T> local = gkd::detail::map(x, [sig, beta](T v) {
      const T s = sig(v);
      return s + beta * v * s * (T(1) - s);
    });
    return std::vector<gkd::Tensor<T>>{gkd::mul(grad, local)};
  });
}

}  // namespace my

GKD_REGISTER_OPS(my_swish, "swish")

int main() {
  gkd::Generator gen(0);
  // 3. prove the gradient: central differences in float64
  const auto report = gkd::gradcheck([](const auto& in) { return my::swish(in[0], 1.5); },
                                     {gkd::randn<double>({4, 5}, gen)});
  std::cout << report.message << '\n';
  if (!report) return 1;

  // 4. use it like any other op: fit w so that swish(w * x) approximates a target
  auto x = gkd::randn<float>({64, 1}, gen);
  auto target = my::swish(x * 2.0f, 1.0f).detach();
  auto w = gkd::Tensor<float>::full({1}, 0.5f).requires_grad();
  for (int step = 0; step < 50; ++step) {
    auto diff = my::swish(x * w, 1.0f) - target;
    auto loss = gkd::mean(diff * diff);
    w.zero_grad();
    loss.backward();
    gkd::NoGrad guard;
    w.data()[0] -= 0.5f * w.grad().data()[0];
    if (step % 10 == 0 || step == 49) std::cout << "step " << step << " loss " << loss.item() << " w " << w.data()[0] << '\n';
  }
  return std::abs(w.data()[0] - 2.0f) < 0.05f ? 0 : 1;
}
