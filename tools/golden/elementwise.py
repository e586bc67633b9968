# SPDX-License-Identifier: Apache-2.0
"""Elementwise arithmetic and activations (include/gkd/ops/elementwise.hpp)."""
import torch
import torch.nn.functional as F

from golden._util import away_from_zero, rand, randn


def generate(w):
    a, b = randn(2, 3, 4, seed=1), randn(3, 1, seed=2)
    w.case("add", lambda x, y: x + y, [a, b])
    w.case("sub", lambda x, y: x - y, [a, b])
    w.case("mul", lambda x, y: x * y, [a, b])
    w.case("div", lambda x, y: x / y, [a, rand(4, seed=3, lo=0.5, hi=2.0)])
    w.case("neg", lambda x: -x, [a])
    w.case("pow_scalar", lambda x: x ** 3.0, [a])
    w.case("pow", lambda x, y: x ** y, [rand(2, 3, seed=4, lo=0.5, hi=2.0), randn(2, 3, seed=5)])
    w.case("exp", torch.exp, [a])
    w.case("log", torch.log, [rand(2, 3, 4, seed=6, lo=0.1, hi=3.0)])
    w.case("sqrt", torch.sqrt, [rand(2, 3, 4, seed=7, lo=0.1, hi=3.0)])
    k = away_from_zero(randn(2, 3, 4, seed=8) * 4)
    w.case("abs", torch.abs, [k])
    w.case("clamp", lambda x: torch.clamp(x, -1.0, 1.5), [k])
    w.case("relu", F.relu, [k])
    w.case("relu6", F.relu6, [k])
    w.case("leaky_relu", lambda x: F.leaky_relu(x, 0.1), [k])
    w.case("gelu", F.gelu, [a * 2])
    w.case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [a * 2])
    w.case("sigmoid", torch.sigmoid, [a * 3])
    w.case("tanh", torch.tanh, [a * 2])
    w.case("softplus", lambda x: F.softplus(x, beta=2.0, threshold=5.0), [a * 4])
    cond = (randn(2, 3, 4, seed=9) > 0).to(torch.float64)
    w.case("where", lambda x, y: torch.where(cond.bool(), x, y), [a, b], grad=[0, 1])
    w.tensor("where.cond", cond)
