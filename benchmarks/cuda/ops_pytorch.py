# SPDX-License-Identifier: Apache-2.0
"""PyTorch counterpart of benchmarks/cuda/ops.cpp: the same ops and shapes, timed with CUDA events.
Prints one line per case, "<name> <milliseconds>", for the C++ benchmark to read."""
import sys

import torch


def timed(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / reps


def main():
    if not torch.cuda.is_available():
        print("no CUDA in PyTorch", file=sys.stderr)
        return 1
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 16 * 1024 * 1024  # 64 MiB of float32
    a, b = torch.randn(n, device=dev), torch.randn(n, device=dev)
    print("add_64MiB", timed(lambda: a + b, 20))
    print("relu_64MiB", timed(lambda: torch.relu(a), 20))
    print("sum_64MiB", timed(lambda: a.sum(), 20))
    logits = torch.randn(16, 19, 128, 128, device=dev)
    print("softmax_16x19x128x128", timed(lambda: torch.softmax(logits, 1), 20))
    lg = logits.clone().requires_grad_(True)
    target = torch.randint(0, 19, (16, 128, 128), device=dev)

    def ce():
        loss = torch.nn.functional.cross_entropy(lg, target)
        loss.backward()
        lg.grad = None

    print("cross_entropy_fwd_bwd", timed(ce, 20))
    m1, m2 = torch.randn(4096, 4096, device=dev), torch.randn(4096, 4096, device=dev)
    print("matmul_4096_fp32", timed(lambda: m1 @ m2, 10))
    torch.backends.cuda.matmul.allow_tf32 = True
    print("matmul_4096_tf32", timed(lambda: m1 @ m2, 10))
    torch.backends.cuda.matmul.allow_tf32 = False
    x = torch.randn(16, 64, 128, 128, device=dev, requires_grad=True)
    w = (torch.randn(64, 64, 3, 3, device=dev) * 0.05).requires_grad_(True)
    b = torch.zeros(64, device=dev, requires_grad=True)

    def conv_step():
        torch.nn.functional.conv2d(x, w, b, padding=1).sum().backward()

    torch.backends.cudnn.allow_tf32 = False
    print("conv3x3_64_fwd_bwd_fp32", timed(conv_step, 5))
    torch.backends.cudnn.allow_tf32 = True
    print("conv3x3_64_fwd_bwd_tf32", timed(conv_step, 5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
