// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `Dropout` (elements) and `Dropout2d` (whole channels) modules: active only in training mode; each
/// owns a Generator seeded at construction from the caller's, so a model's masks are reproducible.
/// @code
///   gkd::Generator gen(0);
///   gkd::nn::Dropout2d<float> drop({.p = 0.5}, gen);
///   auto y = drop.forward(x);   // training: channels zeroed with p = 0.5, the rest scaled by 2
/// @endcode
#include "gkd/nn/module.hpp"
#include "gkd/ops/dropout.hpp"

namespace gkd::nn {

struct DropoutSpec {
  double p = 0.5;
};

template <Real T, bool Channels>
struct DropoutModule {
  using value_type = T;
  DropoutSpec spec;
  bool training = true;
  Generator gen;
  DropoutModule(const DropoutSpec& s, Generator& seed_from) : spec(s), gen(seed_from.next()) {
    GKD_CHECK(s.p >= 0 && s.p <= 1, Channels ? "Dropout2d" : "Dropout", "p must be in [0, 1], got " << s.p);
  }
  Tensor<T> forward(const Tensor<T>& x) {
    return Channels ? dropout2d(x, spec.p, training, gen) : dropout(x, spec.p, training, gen);
  }
  template <class V>
  void visit(V&) {}
};

template <Real T>
using Dropout = DropoutModule<T, false>;
template <Real T>
using Dropout2d = DropoutModule<T, true>;

/// Whether `M` is one of the dropout modules (to switch dropout alone off, e.g. for parity tests).
template <class M>
inline constexpr bool is_dropout = false;
template <Real T, bool C>
inline constexpr bool is_dropout<DropoutModule<T, C>> = true;

/// Sets the training flag of the dropout modules only (batch norm keeps its mode).
template <Module M>
void set_dropout_training(M& m, bool on) {
  for_each_module(m, [on](auto& s) {
    if constexpr (is_dropout<std::remove_cvref_t<decltype(s)>>) s.training = on;
  });
}

}  // namespace gkd::nn
