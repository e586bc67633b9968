# SPDX-License-Identifier: Apache-2.0
"""Autocast (include/gkd/core/autocast.hpp): PyTorch's float32 -> bfloat16 / half casts, and the exact
(float64) results of conv2d, conv_transpose2d, matmul and linear on inputs and output gradient cast to
16 bits, which gkd's autocast ops must hit within one 16-bit unit in the last place.

PyTorch's own CPU autocast is not the reference: one element of its bfloat16 conv2d input gradient was
13 or more units in the last place from the exact value (oneDNN, PyTorch 2.15), where gkd's are within one."""
import torch
import torch.nn.functional as F

from golden._util import randn


def generate(w):
    for precision, tag in ((torch.bfloat16, "bf16"), (torch.float16, "f16")):
        # the casts: random values, exact ties of both formats, the edges of half's range
        x = torch.cat([randn(64, seed=20).float() * 100, 1 + torch.arange(16) * 2.0 ** -9,
                       1 + torch.arange(16) * 2.0 ** -11, torch.tensor([65504.0, 65519.0, 65520.0, 2.0 ** -25,
                                                                        3 * 2.0 ** -25, 1e-30, -0.0])]).float()
        w.tensor(f"round_{tag}.in", x)
        w.tensor(f"round_{tag}.out", x.to(precision).float())

        cases = [
            ("conv2d", lambda x, k, b: F.conv2d(x, k, b, stride=2, padding=1),
             [randn(2, 3, 7, 6, seed=1), randn(4, 3, 3, 3, seed=2, scale=0.5), randn(4, seed=3)]),
            ("conv_transpose2d", lambda x, k, b: F.conv_transpose2d(x, k, b, stride=2, padding=1, output_padding=1),
             [randn(2, 3, 4, 3, seed=4), randn(3, 4, 3, 3, seed=5, scale=0.5), randn(4, seed=6)]),
            ("matmul", torch.matmul, [randn(2, 5, 6, seed=7), randn(2, 6, 3, seed=8)]),
            ("linear", F.linear, [randn(5, 6, seed=9), randn(4, 6, seed=10, scale=0.5), randn(4, seed=11)]),
        ]
        for i, (name, fn, inputs) in enumerate(cases):
            key = f"{name}_{tag}"
            xs = [t.float() for t in inputs]
            exact = [t.to(precision).double().requires_grad_() for t in xs]
            out = fn(*exact)
            gout = randn(*out.shape, seed=50 + i).float()
            out.backward(gout.to(precision).double())
            for j, t in enumerate(xs):
                w.tensor(f"{key}.in{j}", t)
                w.tensor(f"{key}.exact_grad{j}", exact[j].grad)
            w.tensor(f"{key}.gout", gout)
            w.tensor(f"{key}.exact_out", out)
