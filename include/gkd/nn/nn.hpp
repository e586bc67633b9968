// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// All of gkd::nn: the Module concept and walkers, layers, composition.
/// @code
///   #include <gkd/nn/nn.hpp>
///   gkd::Generator gen(0);
///   gkd::nn::Conv2d<float> conv({.in = 1, .out = 8, .kernel = 3, .padding = 1}, gen);
/// @endcode
#include "gkd/nn/activation.hpp"
#include "gkd/nn/batch_norm.hpp"
#include "gkd/nn/conv.hpp"
#include "gkd/nn/dropout.hpp"
#include "gkd/nn/init.hpp"
#include "gkd/nn/linear.hpp"
#include "gkd/nn/max_unpool.hpp"
#include "gkd/nn/mlp.hpp"
#include "gkd/nn/module.hpp"
#include "gkd/nn/pooling.hpp"
#include "gkd/nn/sequential.hpp"
