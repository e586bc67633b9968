// SPDX-License-Identifier: Apache-2.0
#pragma once
// Forward/backward parity of a gkd network with the PyTorch definition in tools/golden/models.py.
// Parameters, buffers and inputs are set by the same formula on both sides (no weights committed);
// the golden file holds checksums: sum, sum of squares and elements 0 and n/2 of each tensor.
#include <cmath>
#include <cstdint>
#include <string>

#include "gkd/nn/dropout.hpp"
#include "gkd/nn/module.hpp"
#include "support/check.hpp"
#include "support/golden.hpp"

namespace gkd::test {

inline std::uint32_t fnv1a(const std::string& s) {
  std::uint32_t h = 0x811C9DC5u;
  for (unsigned char c : s) h = (h ^ c) * 0x01000193u;
  return h;
}

/// u in [-0.5, 0.5): ((fnv1a(name) + 7919 i) mod 2003) / 2003 - 0.5, exactly as the Python side.
inline double formula_u(std::uint32_t h, std::int64_t i) {
  return static_cast<double>((static_cast<std::uint64_t>(h) + 7919u * static_cast<std::uint64_t>(i)) % 2003u) / 2003.0 -
         0.5;
}

template <Real T>
Tensor<T> formula_tensor(const std::string& name, const Shape& shape, double scale = 1.0) {
  Tensor<T> t = Tensor<T>::empty(shape);
  const std::uint32_t h = fnv1a(name);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(scale * formula_u(h, i));
  return t;
}

/// The value rule of tools/golden/models.py: value_for(name, shape).
inline double formula_value(const std::string& name, const Shape& shape, std::uint32_t h, std::int64_t i) {
  const double u = formula_u(h, i);
  const std::string leaf = name.substr(name.rfind('.') + 1);
  if (leaf == "running_mean") return 0.1 * u;
  if (leaf == "running_var") return 1.0 + u;
  if (leaf == "num_batches_tracked" || leaf == "gamma") return 0.0;
  if (shape.size() >= 2) return u * (2.0 / std::sqrt(static_cast<double>(numel(shape) / shape[0])));
  if (leaf == "weight") return 0.6 + 0.4 * u;
  return 0.2 * u;
}

template <nn::Module M>
void set_by_formula(M& net) {
  for (auto& [name, t] : nn::state_dict(net)) {
    REQUIRE(t.is_contiguous());
    const std::uint32_t h = fnv1a(name);
    for (std::int64_t i = 0; i < t.numel(); ++i)
      t.data()[i] = static_cast<typename M::value_type>(formula_value(name, t.shape(), h, i));
  }
}

/// Compares `actual` with the stored checksum [sum, sum of squares, x[0], x[n/2]]: the sum within
/// tol times the L2 norm, the sum of squares within 2 tol relative, the elements within tol of
/// max(|expected|, rms). `floor` is an absolute allowance for tensors that are zero in exact
/// arithmetic (e.g. the gradient of a conv bias followed by training-mode batch norm), which hold only
/// rounding noise.
template <Real T>
void require_checksum(const Golden& golden, const std::string& key, const Tensor<T>& actual, double tol,
                      double floor = 1e-30) {
  INFO("tensor " << key);
  REQUIRE(actual.defined());
  const Tensor<double> e = golden.get<double>(key);
  const auto v = actual.to_vector();
  const std::size_t n = v.size();
  double s = 0, q = 0;
  for (T x : v) s += static_cast<double>(x), q += static_cast<double>(x) * static_cast<double>(x);
  const double es = e.data()[0], eq = e.data()[1];
  const double l2 = std::sqrt(eq), rms = l2 / std::sqrt(static_cast<double>(n));
  INFO("sum " << s << " vs " << es << ", sum of squares " << q << " vs " << eq);
  CHECK(std::abs(s - es) <= tol * l2 + floor);
  CHECK(std::abs(q - eq) <= 2 * tol * eq + floor * floor * static_cast<double>(n) + 2 * floor * l2);
  const double picks[2] = {static_cast<double>(v[0]), static_cast<double>(v[n / 2])};
  for (int k = 0; k < 2; ++k) {
    INFO("element " << (k ? n / 2 : 0) << ": " << picks[k] << " vs " << e.data()[2 + k]);
    CHECK(std::abs(picks[k] - e.data()[2 + k]) <= tol * std::max(std::abs(e.data()[2 + k]), rms) + floor);
  }
}

inline double parity_tolerance(bool is_double) { return is_double ? 1e-9 : 1e-4; }

/// One step with dropout off — float64 in training mode (batch statistics), float32 in evaluation mode
/// (well conditioned in single precision) — forward, loss = sum(logits * G), backward; then checks the
/// logits, the taps, the input gradient, every parameter gradient, the running statistics, and (float64)
/// the eval-mode logits afterwards. `forward(net, x)` returns the network's Output; `taps(out)` lists
/// (name, tensor) pairs.
template <nn::Module M, class Forward, class Taps>
void require_parity(M& net, const std::string& name, const Shape& input, Forward forward, Taps taps) {
  using T = typename M::value_type;
  const bool dbl = std::is_same_v<T, double>;
  const std::string tag = name + (dbl ? ".float64" : ".float32");
  const double tol = parity_tolerance(dbl);
  const Golden golden("models");
  set_by_formula(net);
  nn::train(net, dbl);
  nn::set_dropout_training(net, false);
  Tensor<T> x = formula_tensor<T>("input", input, 4.0).requires_grad();
  auto out = forward(net, x);
  const Tensor<T> g = formula_tensor<T>("gout", out.logits.shape());
  sum(mul(out.logits, g)).backward();
  require_checksum(golden, tag + ".logits", out.logits, tol);
  for (auto& [tap, t] : taps(out)) require_checksum(golden, tag + "." + tap, t, tol);
  require_checksum(golden, tag + ".input_grad", x.grad(), tol);
  // Rounding-noise allowance: tol * 1e-2 of the largest parameter gradient norm of this network.
  double largest = 0;
  for (auto& [pname, p] : nn::named_parameters(net))
    if (golden.has(tag + ".grad." + pname)) largest = std::max(largest, std::sqrt(golden.get<double>(tag + ".grad." + pname).data()[1]));
  const double floor = tol * 1e-2 * largest;
  int checked = 0;
  for (auto& [pname, p] : nn::named_parameters(net)) {
    const std::string key = tag + ".grad." + pname;
    INFO("parameter " << pname);
    REQUIRE(golden.has(key) == p.grad().defined());
    if (golden.has(key)) require_checksum(golden, key, p.grad(), tol, floor), ++checked;
  }
  CHECK(checked > 0);
  for (auto& [bname, b] : nn::named_buffers(net))
    if (golden.has(tag + ".buffer." + bname)) require_checksum(golden, tag + ".buffer." + bname, b, tol);
  if (!golden.has(tag + ".eval_logits")) return;
  nn::eval(net);
  NoGrad guard;
  require_checksum(golden, tag + ".eval_logits", forward(net, x.detach()).logits, tol);
}

}  // namespace gkd::test
