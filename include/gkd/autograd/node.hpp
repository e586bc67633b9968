// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The explicit autodiff graph: every differentiable result remembers the node that made it; a node
/// holds the autograd state of its inputs and a closure that maps the output gradient to input
/// gradients. Also the grad-mode switch (`NoGrad`) and the registry of differentiable op names.
#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gkd/core/dtype.hpp"
#include "gkd/core/shape.hpp"

namespace gkd {

template <Real T>
class Tensor;

template <Real T>
struct AutogradMeta;

/// One recorded operation of the graph.
template <Real T>
struct Node {
  /// The op name ("conv2d"); appears in error messages and in gradcheck reports.
  std::string op;
  /// Autograd state of each input; nullptr where that input needs no gradient.
  std::vector<std::shared_ptr<AutogradMeta<T>>> inputs;
  /// Shape of each input; the engine checks every returned gradient against it.
  std::vector<Shape> input_shapes;
  /// Maps the gradient of the output to one gradient per input (an undefined tensor where the
  /// input needs none). Reset after backward unless the graph is retained, freeing saved buffers.
  std::function<std::vector<Tensor<T>>(const Tensor<T>& grad_output)> backward;
  /// True once `backward` was released.
  bool released = false;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  /// Tears the graph down iteratively: a chain of 100k ops must not recurse 100k frames deep.
  ~Node() {
    std::vector<std::shared_ptr<AutogradMeta<T>>> pending = std::move(inputs);
    while (!pending.empty()) {
      std::shared_ptr<AutogradMeta<T>> meta = std::move(pending.back());
      pending.pop_back();
      if (meta && meta.use_count() == 1 && meta->grad_fn && meta->grad_fn.use_count() == 1) {
        for (auto& next : meta->grad_fn->inputs) pending.push_back(std::move(next));
        meta->grad_fn->inputs.clear();
      }
    }  // each meta dies here with a node that no longer owns inputs
  }
};

/// Autograd state of a tensor: whether it requires a gradient, the accumulated gradient (leaves,
/// or any tensor after `retain_grad()`), and the node that produced it (null for leaves).
template <Real T>
struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<Node<T>> grad_fn;
  std::shared_ptr<Tensor<T>> grad;  // allocated on first accumulation
};

namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

/// Whether operations on this thread record the graph.
inline bool grad_enabled() { return detail::grad_mode_flag(); }

/// RAII guard that disables graph recording on this thread (evaluation, optimizer updates).
/// Example: `{ gkd::NoGrad guard; auto y = model(x); }`
class NoGrad {
 public:
  NoGrad() : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
  ~NoGrad() { detail::grad_mode_flag() = previous_; }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

/// The registry of differentiable op names. Each op header registers its names with
/// `GKD_REGISTER_OPS`; the test suite proves that every registered op passes a float64 gradcheck.
class OpRegistry {
 public:
  static OpRegistry& instance() {
    static OpRegistry registry;
    return registry;
  }
  bool add(std::initializer_list<std::string_view> names) {
    std::lock_guard lock(mutex_);
    for (auto n : names) names_.emplace(n);
    return true;
  }
  [[nodiscard]] bool contains(std::string_view name) const {
    std::lock_guard lock(mutex_);
    return names_.count(std::string(name)) != 0;
  }
  [[nodiscard]] std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    return {names_.begin(), names_.end()};
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::string> names_;
};

}  // namespace gkd

/// Registers differentiable op names at static initialisation, once per op header, at global
/// scope with a tag unique to that header: `GKD_REGISTER_OPS(conv, "conv2d", "conv_transpose2d");`
#define GKD_REGISTER_OPS(tag, ...)                 \
  namespace gkd::detail {                          \
  inline const bool registered_ops_##tag =         \
      ::gkd::OpRegistry::instance().add({__VA_ARGS__}); \
  }
