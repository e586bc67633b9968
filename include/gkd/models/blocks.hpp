// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Small chains shared by the networks: conv + BN (+ ReLU / ReLU6 / PReLU) as `nn.Sequential`s
/// (children "0", "1", "2" as PyTorch), and model-wide initialisers.
/// @code
///   gkd::Generator gen(0);
///   auto block = gkd::models::conv_bn_act<float, gkd::nn::ReLU<float>>({.in = 8, .out = 8, .kernel = 3, .padding = 1}, gen);
/// @endcode
#include <cmath>
#include <type_traits>

#include "gkd/nn/nn.hpp"

namespace gkd::models {

template <Real T>
using ConvBn = nn::Sequential<nn::Conv2d<T>, nn::BatchNorm2d<T>>;
template <Real T, class Act>
using ConvBnAct = nn::Sequential<nn::Conv2d<T>, nn::BatchNorm2d<T>, Act>;
template <Real T>
using ConvBnRelu = ConvBnAct<T, nn::ReLU<T>>;

template <Real T>
ConvBn<T> conv_bn(const nn::Conv2dSpec& s, Generator& gen, double eps = 1e-5) {
  return ConvBn<T>(nn::Conv2d<T>(s, gen), nn::BatchNorm2d<T>({.channels = s.out, .eps = eps}));
}
template <Real T, class Act = nn::ReLU<T>>
ConvBnAct<T, Act> conv_bn_act(const nn::Conv2dSpec& s, Generator& gen, double eps = 1e-5) {
  return ConvBnAct<T, Act>(nn::Conv2d<T>(s, gen), nn::BatchNorm2d<T>({.channels = s.out, .eps = eps}), Act{});
}

template <class M>
inline constexpr bool is_conv2d = false;
template <Real T>
inline constexpr bool is_conv2d<nn::Conv2d<T>> = true;
template <class M>
inline constexpr bool is_conv_transpose2d = false;
template <Real T>
inline constexpr bool is_conv_transpose2d<nn::ConvTranspose2d<T>> = true;

/// Xavier-uniform (gain 1) on every Conv2d weight (not transposed convs), as UnetSKA2 and LatentNet do.
template <nn::Module M>
void xavier_conv_init(M& m, Generator& gen) {
  nn::for_each_module(m, [&](auto& s) {
    if constexpr (is_conv2d<std::remove_cvref_t<decltype(s)>>) nn::init::xavier_uniform_(s.weight, gen);
  });
}

}  // namespace gkd::models
