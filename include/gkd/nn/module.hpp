// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The `Module` concept and the structural walkers over modules: named parameters and buffers with
/// PyTorch `state_dict` keys, train/eval, freeze and parameter counting — with no registration.
///
/// Contract: a module is any class with `using value_type = T` (float or double) and a member
/// template `visit(v)` that names, in PyTorch's registration order, its own parameters
/// (`v.parameter("weight", weight)`), its own buffers (`v.buffer("running_mean", running_mean)`) and its
/// children (`v.child("conv1", conv1)`). Walkers call `visit` twice per level — own tensors first, then
/// children — so keys come out in exactly `state_dict()`'s order: `conv1.0.weight`, `conv1.1.running_mean`.
/// A module whose behaviour depends on the mode has a `bool training` member; `train`/`eval` set it.
///
/// @code
///   template <gkd::Real T> struct Affine {
///     using value_type = T;
///     gkd::nn::Linear<T> fc;
///     gkd::nn::BatchNorm2d<T> bn;
///     template <class V> void visit(V& v) { v.child("fc", fc); v.child("bn", bn); }
///   };
///   auto state = gkd::nn::state_dict(model);          // {"fc.weight", ...}, {"bn.num_batches_tracked", ...}
///   gkd::nn::eval(model);
///   std::int64_t n = gkd::nn::parameter_count(model);
/// @endcode
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "gkd/core/named_tensor.hpp"
#include "gkd/core/tensor.hpp"

namespace gkd::nn {

namespace detail {

/// A visitor that accepts everything: the archetype the Module concept checks `visit` against.
struct ArchetypeVisitor {
  template <Real T>
  void parameter(const std::string&, Tensor<T>&) {}
  template <Real T>
  void buffer(const std::string&, Tensor<T>&) {}
  template <class M>
  void child(const std::string&, M&) {}
};

}  // namespace detail

/// A module names its tensors and children through `visit` and declares its scalar type.
template <class M>
concept Module = requires(M& m, detail::ArchetypeVisitor& v) {
  typename M::value_type;
  requires Real<typename M::value_type>;
  m.visit(v);
};

/// A module usable as one stage of a chain: `forward(const Tensor<T>&)` returns a `Tensor<T>`.
template <class M, class T>
concept LayerOf = Module<M> && requires(M& m, const Tensor<T>& x) {
  { m.forward(x) } -> std::same_as<Tensor<T>>;
};

namespace detail {

template <Real T>
struct TensorCollector {
  std::string prefix;
  NamedTensors<T>* out;
  bool want_parameters, want_buffers;
  bool own = true;  // first pass: this level's tensors; second pass: children
  void parameter(const std::string& name, Tensor<T>& t) {
    if (own && want_parameters) out->push_back({prefix + name, t});
  }
  void buffer(const std::string& name, Tensor<T>& t) {
    if (own && want_buffers) out->push_back({prefix + name, t});
  }
  template <class C>
  void child(const std::string& name, C& c);
};

template <Real T, Module M>
void collect(M& m, const std::string& prefix, NamedTensors<T>& out, bool parameters, bool buffers) {
  static_assert(std::same_as<typename M::value_type, T>,
                "A module's children must all use the scalar type of their parent.");
  TensorCollector<T> v{prefix, &out, parameters, buffers, true};
  m.visit(v);
  v.own = false;
  m.visit(v);
}

template <Real T>
template <class C>
void TensorCollector<T>::child(const std::string& name, C& c) {
  static_assert(Module<C>, "Every child passed to visit() must itself be a Module with value_type and visit().");
  if (!own) collect<T>(c, prefix + name + ".", *out, want_parameters, want_buffers);
}

template <class F>
struct ModuleWalker {
  F* f;
  template <Real T>
  void parameter(const std::string&, Tensor<T>&) {}
  template <Real T>
  void buffer(const std::string&, Tensor<T>&) {}
  template <class C>
  void child(const std::string&, C& c) {
    (*f)(c);
    c.visit(*this);
  }
};

/// Replaces every parameter and buffer it meets by a copy on `device`.
struct DeviceMover {
  Device device;
  template <Real T>
  void parameter(const std::string&, Tensor<T>& t) {
    if (t.defined() && t.device() != device) t = t.detach().to(device).requires_grad(t.requires_grad_flag());
  }
  template <Real T>
  void buffer(const std::string&, Tensor<T>& t) {
    if (t.defined() && t.device() != device) t = t.detach().to(device);
  }
  template <class C>
  void child(const std::string&, C& c) {
    c.visit(*this);
  }
};

}  // namespace detail

/// Calls `f(sub)` on `m` and then on every submodule, depth first in registration order.
template <Module M, class F>
void for_each_module(M& m, F&& f) {
  f(m);
  detail::ModuleWalker<std::remove_reference_t<F>> w{&f};
  m.visit(w);
}

/// Parameters with hierarchical names, as PyTorch's `named_parameters()`.
template <Module M>
NamedTensors<typename M::value_type> named_parameters(M& m) {
  NamedTensors<typename M::value_type> out;
  detail::collect<typename M::value_type>(m, "", out, true, false);
  return out;
}

/// Buffers (running statistics) with hierarchical names, as PyTorch's `named_buffers()`.
template <Module M>
NamedTensors<typename M::value_type> named_buffers(M& m) {
  NamedTensors<typename M::value_type> out;
  detail::collect<typename M::value_type>(m, "", out, false, true);
  return out;
}

/// Parameters and buffers under PyTorch's `state_dict()` keys and order. The tensors share storage
/// with the module, so writing into them loads a checkpoint in place. `num_batches_tracked` is held in
/// the module's scalar type (PyTorch stores it as int64).
template <Module M>
NamedTensors<typename M::value_type> state_dict(M& m) {
  NamedTensors<typename M::value_type> out;
  detail::collect<typename M::value_type>(m, "", out, true, true);
  return out;
}

/// The parameter tensors (shared handles), e.g. for an optimizer.
template <Module M>
std::vector<Tensor<typename M::value_type>> parameters(M& m) {
  std::vector<Tensor<typename M::value_type>> out;
  for (auto& p : named_parameters(m)) out.push_back(p.tensor);
  return out;
}

/// Number of scalar parameters (trainable or frozen).
template <Module M>
std::int64_t parameter_count(M& m) {
  std::int64_t n = 0;
  for (auto& p : named_parameters(m)) n += p.tensor.numel();
  return n;
}

/// Sets training mode (batch statistics, active dropout) on every submodule with a `training` flag.
template <Module M>
void train(M& m, bool on = true) {
  for_each_module(m, [on](auto& s) {
    if constexpr (requires { s.training = on; }) s.training = on;
  });
}

/// Sets evaluation mode (running statistics, no dropout).
template <Module M>
void eval(M& m) {
  train(m, false);
}

/// Stops gradients to every parameter (frozen teachers, MSAN); `unfreeze` undoes it.
template <Module M>
void freeze(M& m, bool frozen = true) {
  for (auto& p : named_parameters(m)) p.tensor.requires_grad(!frozen);
}
template <Module M>
void unfreeze(M& m) {
  freeze(m, false);
}

/// Moves every parameter and buffer to `device` (PyTorch's `module.to(device)`): each becomes a copy on
/// the device that keeps its requires_grad flag; accumulated gradients are dropped. Optimizers built
/// before hold the old tensors, so build them after moving. Needs `gkd::cuda` linked for a GPU.
/// @code
///   gkd::nn::to(student, gkd::cuda_device());
///   gkd::Adam<float> opt(gkd::nn::parameters(student), {.lr = 1e-3});
/// @endcode
template <Module M>
void to(M& m, Device device) {
  detail::DeviceMover mover{device};
  m.visit(mover);
}

/// Drops the accumulated gradient of every parameter.
template <Module M>
void zero_grad(M& m) {
  for (auto& p : named_parameters(m)) p.tensor.zero_grad();
}

/// Channel scaling by a width multiplier: round(c * width), at least 1. `width` = 1 keeps c.
inline std::int64_t scaled(std::int64_t channels, double width) {
  GKD_CHECK(width > 0, "scaled", "width multiplier must be positive, got " << width);
  const auto c = static_cast<std::int64_t>(static_cast<double>(channels) * width + 0.5);
  return c < 1 ? 1 : c;
}

}  // namespace gkd::nn
