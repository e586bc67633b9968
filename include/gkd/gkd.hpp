// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Umbrella header: the whole public CPU API of gkd.
#include "gkd/autograd/gradcheck.hpp"
#include "gkd/autograd/node.hpp"
#include "gkd/core/device.hpp"
#include "gkd/core/dtype.hpp"
#include "gkd/core/error.hpp"
#include "gkd/core/parallel.hpp"
#include "gkd/core/random.hpp"
#include "gkd/core/shape.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/losses/cross_entropy.hpp"
#include "gkd/losses/reduction.hpp"
#include "gkd/ops/conv.hpp"
#include "gkd/ops/elementwise.hpp"
#include "gkd/ops/index.hpp"
#include "gkd/ops/join.hpp"
#include "gkd/ops/linalg.hpp"
#include "gkd/ops/norm.hpp"
#include "gkd/ops/pad.hpp"
#include "gkd/ops/reduce.hpp"
#include "gkd/ops/similarity.hpp"
