# SPDX-License-Identifier: Apache-2.0
"""Batch normalisation (include/gkd/ops/norm.hpp), including the in-place running-statistics update."""
import torch
import torch.nn.functional as F

from golden._util import rand, randn

DTYPES = {torch.float64: "float64", torch.float32: "float32"}


ACTIVATIONS = {None: lambda y: y, "relu": F.relu, "relu6": F.relu6}


def _case(w, name, x, weight, bias, training, momentum=0.1, eps=1e-5, running=True, seed=0, activation=None):
    c = x.shape[1]
    rm0, rv0 = randn(c, seed=seed + 1, scale=0.5), rand(c, seed=seed + 2, lo=0.5, hi=2.0)
    if running:
        w.tensor(f"{name}.running_mean0", rm0)
        w.tensor(f"{name}.running_var0", rv0)
    stats = {}

    def fn(x, *affine):
        rm = rm0.to(x.dtype).clone() if running else None
        rv = rv0.to(x.dtype).clone() if running else None
        wt, b = (affine + (None, None))[:2] if affine else (None, None)
        y = F.batch_norm(x, rm, rv, wt, b, training=training, momentum=momentum, eps=eps)
        stats[x.dtype] = (rm, rv)
        return ACTIVATIONS[activation](y)

    inputs = [x] + ([weight, bias] if weight is not None else [])
    w.case(name, fn, inputs, seed=seed)
    if running and training:
        for dtype, tag in DTYPES.items():
            w.tensor(f"{name}.{tag}.running_mean", stats[dtype][0])
            w.tensor(f"{name}.{tag}.running_var", stats[dtype][1])


def generate(w):
    x = randn(2, 3, 4, 3, seed=1, scale=2.0) + 1.5
    weight, bias = randn(3, seed=2), randn(3, seed=3)
    _case(w, "bn_train", x, weight, bias, training=True, seed=10)
    _case(w, "bn_train_plain", randn(2, 3, 4, 3, seed=4) - 0.5, None, None, training=True, momentum=0.3, eps=1e-3,
          seed=20)
    _case(w, "bn_train_no_running", randn(2, 3, 3, 3, seed=5), randn(3, seed=6), randn(3, seed=7), training=True,
          running=False, seed=30)
    _case(w, "bn_eval", x, weight, bias, training=False, seed=40)
    _case(w, "bn_eval_plain", randn(2, 3, 3, 4, seed=8), None, None, training=False, eps=1e-3, seed=50)
    _case(w, "bn_single_image", randn(1, 2, 3, 2, seed=9), randn(2, seed=11), randn(2, seed=12), training=True,
          momentum=0.5, seed=60)
    # batch_norm2d with a fused activation: F.relu / F.relu6 after F.batch_norm. The weights are scaled so
    # that relu6 also clips at 6.
    _case(w, "bn_relu_train", x, weight, bias, training=True, seed=70, activation="relu")
    _case(w, "bn_relu6_train", randn(2, 3, 4, 3, seed=13), randn(3, seed=14, scale=6.0), randn(3, seed=15, scale=3.0),
          training=True, seed=80, activation="relu6")
    _case(w, "bn_relu_eval", x, weight, bias, training=False, seed=90, activation="relu")
    _case(w, "bn_relu6_eval_plain", randn(2, 3, 3, 4, seed=16, scale=5.0), None, None, training=False, seed=100,
          activation="relu6")
