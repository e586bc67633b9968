#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The PyTorch side of benchmarks/models_step: one training step (batch 4, 1-channel 128x128,
cross-entropy on the logits, Adam) of the GKD student MobileNetV2UNet or teacher UnetSKA2, built from the
same PyTorch definitions the golden tests use (tools/golden/models.py). Prints one line:
`pytorch <version> net <name> threads <n> ms_per_step <median> params <count> peak_rss_mib <MiB>`.

    python3 benchmarks/models_pytorch.py --net student --threads 1 --steps 5 --warmup 2
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--net", choices=["student", "teacher"], default="student")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--width", type=float, default=1.0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = MobileNetV2UNet(a.width) if a.net == "student" else UnetSKA2(a.width)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(4, 1, 128, 128)
    y = torch.randint(0, 2, (4, 128, 128))
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x)["logits"], y)
        loss.backward()
        opt.step()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    params = sum(q.numel() for q in model.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {torch.__version__} net {a.net} threads {a.threads} ms_per_step {statistics.median(times):.2f} "
          f"params {params} peak_rss_mib {rss:.1f}")


if __name__ == "__main__":
    main()
