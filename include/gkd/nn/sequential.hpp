// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Compile-time composition, flat (fold expressions, no nested recursion):
/// - `Sequential<M...>`: layers applied in order, children named "0", "1", ... as `nn.Sequential`;
/// - `Residual<Body, Shortcut>`: body(x) + shortcut(x), children "body" and "shortcut" (an `Identity`
///   shortcut has no tensors);
/// - `SkipConcat<Inner>`: concat([x, inner(x)], channels), the U-Net skip around a deeper level;
/// - `Repeat<M>`: a run-time number of one block type, named "0", "1", ... (counts that are data).
/// Wrong compositions stop at compile time with a sentence (a layer without `visit`, a layer whose
/// `forward` does not take the chain's tensor type); channel counts known only at run time are checked
/// when the chain is built (a gkd::Error names the two layers).
/// @code
///   using namespace gkd::nn;
///   gkd::Generator gen(0);
///   Sequential<Conv2d<float>, BatchNorm2d<float>, ReLU<float>> block(
///       Conv2d<float>({.in = 1, .out = 8, .kernel = 3, .padding = 1}, gen), BatchNorm2d<float>({.channels = 8}), {});
///   auto y = block.forward(x);                 // state_dict keys "0.weight", "1.running_mean", ...
/// @endcode
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gkd/nn/activation.hpp"
#include "gkd/nn/module.hpp"
#include "gkd/ops/join.hpp"

namespace gkd::nn {

namespace detail {

template <class M>
std::optional<std::int64_t> in_channels_of(const M& m) {
  if constexpr (requires { m.in_channels(); }) return m.in_channels();
  return std::nullopt;
}
template <class M>
std::optional<std::int64_t> out_channels_of(const M& m) {
  if constexpr (requires { m.out_channels(); }) return m.out_channels();
  return std::nullopt;
}

template <class... M>
struct FirstValueType {
  using type = float;
};
template <class M0, class... M>
  requires requires { typename M0::value_type; }
struct FirstValueType<M0, M...> {
  using type = typename M0::value_type;
};

}  // namespace detail

template <class... M>
class Sequential {
  static_assert(sizeof...(M) > 0, "A Sequential needs at least one layer.");
  static_assert((Module<M> && ...),
                "Every layer of a Sequential must be a Module: give it `using value_type = T` and a visit(v) member "
                "that names its parameters, buffers and children.");

 public:
  using value_type = typename detail::FirstValueType<M...>::type;
  static_assert((LayerOf<M, value_type> && ...),
                "Every layer of a Sequential must have forward(const Tensor<T>&) returning Tensor<T>, with the same "
                "scalar type T as the first layer.");

  std::tuple<M...> layers;

  explicit Sequential(M... ms) : layers(std::move(ms)...) { check_channels(); }

  Tensor<value_type> forward(const Tensor<value_type>& x) {
    Tensor<value_type> y = x;
    std::apply([&](auto&... m) { ((y = m.forward(y)), ...); }, layers);
    return y;
  }
  template <std::size_t I>
  auto& get() {
    return std::get<I>(layers);
  }
  template <std::size_t I>
  const auto& get() const {
    return std::get<I>(layers);
  }
  std::optional<std::int64_t> in_channels() const { return detail::in_channels_of(std::get<0>(layers)); }
  std::optional<std::int64_t> out_channels() const {
    std::optional<std::int64_t> c;
    std::apply([&](const auto&... m) { ((c = detail::out_channels_of(m) ? detail::out_channels_of(m) : c), ...); },
               layers);
    return c;
  }
  template <class V>
  void visit(V& v) {
    std::size_t i = 0;
    std::apply([&](auto&... m) { (v.child(std::to_string(i++), m), ...); }, layers);
  }

 private:
  void check_channels() const {
    std::optional<std::int64_t> current;
    std::size_t i = 0, producer = 0;
    auto step = [&](const auto& m) {
      const auto in = detail::in_channels_of(m);
      GKD_CHECK(!(in && current && *in != *current), "Sequential",
                "layer " << i << " expects " << *in << " input channels but layer " << producer << " produces "
                         << *current);
      if (const auto out = detail::out_channels_of(m)) current = out, producer = i;
      ++i;
    };
    std::apply([&](const auto&... m) { (step(m), ...); }, layers);
  }
};

template <class Body, class Shortcut = Identity<typename Body::value_type>>
struct Residual {
  static_assert(LayerOf<Body, typename Body::value_type> && LayerOf<Shortcut, typename Body::value_type>,
                "A Residual's body and shortcut must both be layers with forward(const Tensor<T>&) of the same T.");
  using value_type = typename Body::value_type;
  Body body;
  Shortcut shortcut{};
  Tensor<value_type> forward(const Tensor<value_type>& x) { return add(body.forward(x), shortcut.forward(x)); }
  template <class V>
  void visit(V& v) {
    v.child("body", body);
    if constexpr (!std::same_as<Shortcut, Identity<value_type>>) v.child("shortcut", shortcut);
  }
};

template <class Inner>
struct SkipConcat {
  static_assert(LayerOf<Inner, typename Inner::value_type>,
                "A SkipConcat wraps one layer with forward(const Tensor<T>&); its output is concatenated to its input.");
  using value_type = typename Inner::value_type;
  Inner inner;
  Tensor<value_type> forward(const Tensor<value_type>& x) {
    Tensor<value_type> y = inner.forward(x);
    GKD_CHECK(y.dim() == 4 && y.shape()[0] == x.shape()[0] && y.shape()[2] == x.shape()[2] &&
                  y.shape()[3] == x.shape()[3],
              "SkipConcat", "the inner path returns " << to_string(y.shape()) << " for input " << to_string(x.shape())
                                                      << "; a skip needs the same batch and spatial size");
    return concat({x, y}, 1);
  }
  template <class V>
  void visit(V& v) {
    v.child("inner", inner);
  }
};

template <class M>
struct Repeat {
  static_assert(LayerOf<M, typename M::value_type>,
                "Repeat holds a run-time number of one layer type with forward(const Tensor<T>&).");
  using value_type = typename M::value_type;
  std::vector<M> blocks;
  Tensor<value_type> forward(const Tensor<value_type>& x) {
    Tensor<value_type> y = x;
    for (auto& b : blocks) y = b.forward(y);
    return y;
  }
  template <class V>
  void visit(V& v) {
    for (std::size_t i = 0; i < blocks.size(); ++i) v.child(std::to_string(i), blocks[i]);
  }
};

}  // namespace gkd::nn
