#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The PyTorch side of benchmarks/conv_paths: for each shape N,C,H,W,O,K (stride 1, padding K // 2, no
bias), the best of `reps` mean times of `iters` float32 conv2d forwards, and of as many input-gradient
backwards (weight not requiring grad) and weight-gradient backwards (input not requiring grad). Prints
one line per shape:
`pytorch <version> shape <N,C,H,W,O,K> forward_ms <t> input_grad_ms <t> weight_grad_ms <t>`.

    python3 benchmarks/conv_pytorch.py --threads 1 --shapes 4,16,128,128,16,3 4,32,64,64,32,3
"""
import argparse
import time

import torch
import torch.nn.functional as F


def best_ms(fn, iters, reps):
    best = float("inf")
    for _ in range(reps):
        total = 0.0
        for _ in range(iters):
            total += fn()
        best = min(best, total / iters)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--shapes", nargs="+", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(1)
    for spec in a.shapes:
        n, c, h, w, o, k = (int(v) for v in spec.split(","))
        x = torch.randn(n, c, h, w, generator=g).requires_grad_()
        wt = torch.randn(o, c, k, k, generator=g)

        def forward():
            t0 = time.perf_counter()
            with torch.no_grad():
                F.conv2d(x, wt, padding=k // 2)
            return (time.perf_counter() - t0) * 1e3

        def gradient(inp, weight, wrt):
            y = F.conv2d(inp, weight, padding=k // 2)
            gy = torch.ones_like(y)
            t0 = time.perf_counter()
            torch.autograd.grad(y, wrt, gy)
            return (time.perf_counter() - t0) * 1e3

        wt_grad = wt.detach().requires_grad_()
        x_const = x.detach()
        fwd = best_ms(forward, a.iters, a.reps)
        dx = best_ms(lambda: gradient(x, wt, x), a.iters, a.reps)
        dw = best_ms(lambda: gradient(x_const, wt_grad, wt_grad), a.iters, a.reps)
        print(f"pytorch {torch.__version__} shape {spec} forward_ms {fwd:.4f} input_grad_ms {dx:.4f} "
              f"weight_grad_ms {dw:.4f}", flush=True)


if __name__ == "__main__":
    main()
