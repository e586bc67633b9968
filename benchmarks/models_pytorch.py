#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The PyTorch side of benchmarks/models_step: one training step (1-channel 128x128, cross-entropy on the
logits, Adam) of the GKD student MobileNetV2UNet or teacher UnetSKA2, built from the same PyTorch
definitions the golden tests use (tools/golden/models.py), on the CPU or a GPU. Prints one line:
`pytorch <version> net <name> threads <n> ms_per_step <median> params <count> peak_mib <MiB>`
(peak RSS on the CPU; torch.cuda.max_memory_allocated on a GPU, whose steps are timed with CUDA events),
and on a GPU ` step_peak_mib <MiB>`: the peak of the timed steps alone, after the warm-up.

    python3 benchmarks/models_pytorch.py --net student --threads 1 --steps 5 --warmup 2 [--batch 4] [--device cpu]
"""
import argparse
import pathlib
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from golden.models import MobileNetV2UNet, UnetSKA2  # noqa: E402


def timed_ms(device, step):
    if device.type == "cuda":
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop)
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--net", choices=["student", "teacher"], default="student")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--tf32", action="store_true", help="TF32 convolutions and matmuls (default: strict FP32)")
    p.add_argument("--autocast", action="store_true", help="the forward pass under torch.autocast(bfloat16)")
    a = p.parse_args()
    # PyTorch's default allows TF32 in cuDNN convolutions; gkd's float32 is strict FP32 unless told otherwise.
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    model = (MobileNetV2UNet(a.width) if a.net == "student" else UnetSKA2(a.width)).to(device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(a.batch, 1, 128, 128, device=device)
    y = torch.randint(0, 2, (a.batch, 128, 128), device=device)

    def step():
        opt.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.autocast):
            loss = F.cross_entropy(model(x)["logits"], y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        timed_ms(device, step)
    step_peak = ""
    if device.type == "cuda":
        warmup_peak = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    times = [timed_ms(device, step) for _ in range(a.steps)]
    params = sum(q.numel() for q in model.parameters())
    if device.type == "cuda":
        steps_peak = torch.cuda.max_memory_allocated() / 2**20
        peak = max(warmup_peak, steps_peak)
        step_peak = f" step_peak_mib {steps_peak:.1f}"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {torch.__version__} net {a.net} threads {a.threads} ms_per_step {statistics.median(times):.2f} "
          f"params {params} peak_mib {peak:.1f}{step_peak}")


if __name__ == "__main__":
    main()
