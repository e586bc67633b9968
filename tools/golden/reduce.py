# SPDX-License-Identifier: Apache-2.0
"""Reductions, softmax and matrix products (include/gkd/ops/reduce.hpp, linalg.hpp)."""
import torch
import torch.nn.functional as F

from golden._util import randn


def generate(w):
    x = randn(2, 3, 4, 5, seed=11)
    w.case("sum_all", lambda t: t.sum(), [x])
    w.case("sum_dims", lambda t: t.sum(dim=(1, 3), keepdim=True), [x])
    w.case("mean_dims", lambda t: t.mean(dim=(0, 2)), [x])
    w.case("var_dims", lambda t: t.var(dim=(2, 3), keepdim=False), [x])
    w.case("max_dim", lambda t: t.max(dim=2).values, [x])
    w.case("min_dim", lambda t: t.min(dim=-1, keepdim=True).values, [x])
    w.case("softmax", lambda t: F.softmax(t, dim=1), [x])
    w.case("log_softmax", lambda t: F.log_softmax(t, dim=-1), [x])
    w.case("matmul", torch.matmul, [randn(2, 3, 4, seed=12), randn(2, 4, 5, seed=13)])
    w.case("linear", F.linear, [randn(6, 7, seed=14), randn(3, 7, seed=15), randn(3, seed=16)])
