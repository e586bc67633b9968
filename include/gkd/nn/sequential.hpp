// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Compile-time composition, flat (fold expressions, no nested recursion):
/// - `Sequential<M...>`: layers applied in order, children named "0", "1", ... as `nn.Sequential`; a
///   ReLU or ReLU6 after a BatchNorm2d runs inside the batch norm's pass;
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
#include <concepts>
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

/// Layer applies Next (an activation naming its `fused_activation`) in its own forward pass.
template <class Layer, class Next>
concept AbsorbsActivation = requires(Layer& layer, const Tensor<typename Layer::value_type>& x) {
  { Next::fused_activation } -> std::convertible_to<FusedActivation>;
  { layer.forward(x, Next::fused_activation) } -> std::same_as<Tensor<typename Layer::value_type>>;
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

  /// The layers in order. A ReLU or ReLU6 right after a layer that can apply it in its own pass
  /// (BatchNorm2d) runs inside that layer: same values and gradients, one tensor and two passes fewer.
  Tensor<value_type> forward(const Tensor<value_type>& x) {
    Tensor<value_type> y = x;
    [&]<std::size_t... I>(std::index_sequence<I...>) { ((y = step<I>(y)), ...); }(std::index_sequence_for<M...>{});
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
  using Layers = std::tuple<M...>;
  /// Whether layer I + 1 is an activation that layer I applies itself.
  template <std::size_t I>
  static constexpr bool absorbs_next() {
    if constexpr (I + 1 >= sizeof...(M)) return false;
    else return detail::AbsorbsActivation<std::tuple_element_t<I, Layers>, std::tuple_element_t<I + 1, Layers>>;
  }
  template <std::size_t I>
  static constexpr bool absorbed_by_previous() {
    if constexpr (I == 0) return false;
    else return absorbs_next<I - 1>();
  }
  template <std::size_t I>
  Tensor<value_type> step(const Tensor<value_type>& y) {
    if constexpr (absorbed_by_previous<I>()) return y;  // already applied by layer I - 1
    else if constexpr (absorbs_next<I>())
      return std::get<I>(layers).forward(y, std::tuple_element_t<I + 1, Layers>::fused_activation);
    else return std::get<I>(layers).forward(y);
  }

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

/// act.forward(layer.forward(x)), in one pass when the layer applies the activation itself (what a
/// Sequential does with adjacent layers), for blocks that chain their layers by hand.
template <class Layer, class Act>
Tensor<typename Layer::value_type> forward_then(Layer& layer, Act& act, const Tensor<typename Layer::value_type>& x) {
  if constexpr (detail::AbsorbsActivation<Layer, Act>) return layer.forward(x, Act::fused_activation);
  else return act.forward(layer.forward(x));
}

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
