#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PyTorch eager (and torch.compile) counterpart of gkd_bench_pairwise_kd and the CUDA benchmark: the
same formulas as include/gkd/losses/pairwise_kd.hpp and cross_recon_kd.hpp, written the way SKD,
CIRKD and DICD implementations write them (materialised N x N similarity matrices), timed forward +
backward (gradient w.r.t. the student) on the same inputs shape.

    python3 pairwise_kd_pytorch.py --device cpu --threads 2 --reps 3 --cases skd:1:1024:128:128:1,dicd:16:2:16384:0:4

Case syntax: kind:B:N:Cs:Ct:tau (for dicd: dicd:B:K:pixels:0:tau). Prints one line per case:
    case <spec> mode <eager|compile> ms <time> peak_mib <extra memory>     or    case <spec> mode <m> OOM
On the CPU the address space is capped at what the machine has available (`oom_guard.py`), so a case too
large for the machine is reported OOM instead of swapping. CPU peak memory: growth of the resident set high-water mark (VmHWM, reset through /proc/self/clear_refs)
over the resident set before the step; CUDA: torch.cuda.max_memory_allocated over the allocation
before the step.
"""
import argparse
import ctypes
import time

import torch
import torch.nn.functional as F

from oom_guard import cap_address_space, is_oom


def trim_heap():
    """Returns the pages malloc kept after frees to the system (glibc), so that the next peak counts them."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def skd(s, t, tau):
    hs, ht = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
    return ((hs @ hs.transpose(-1, -2) - ht @ ht.transpose(-1, -2)) ** 2).mean()


def cirkd(s, t, tau):
    hs, ht = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
    b, n = s.shape[0], s.shape[1]
    total = 0
    for i in range(b):
        for j in range(b):
            ls = F.log_softmax(hs[i] @ hs[j].T / tau, dim=1)
            pt = F.softmax(ht[i] @ ht[j].T / tau, dim=1)
            total = total + F.kl_div(ls, pt, reduction="sum")
    return total / (b * b * n)


def dicd(t, x1, x2, tau):
    pt = F.softmax(t / tau, dim=1)
    kl = lambda x: F.kl_div(F.log_softmax(x / tau, dim=1), pt, reduction="none").sum(1)
    return (kl(x1) + kl(x2)).mean() * tau * tau


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def run_case(spec, device, reps, warmup, mode):
    kind, b, n, cs, ct, tau = spec.split(":")
    b, n, cs, ct, tau = int(b), int(n), int(cs), int(ct), float(tau)
    g = torch.Generator(device="cpu").manual_seed(0)
    if kind == "dicd":
        shape = (b, n, cs)  # B, K, pixels
        t = torch.randn(shape, generator=g).to(device)
        x1 = torch.randn(shape, generator=g).to(device).requires_grad_()
        x2 = torch.randn(shape, generator=g).to(device).requires_grad_()
        fn = dicd
        args, grads = (t, x1, x2, tau), [x1, x2]
    else:
        s = torch.randn(b, n, cs, generator=g).to(device).requires_grad_()
        t = torch.randn(b, n, ct, generator=g).to(device)
        fn = skd if kind == "skd" else cirkd
        args, grads = (s, t, tau), [s]
    if mode == "compile":
        fn = torch.compile(fn)

    def step():
        for x in grads:
            x.grad = None
        fn(*args).backward()

    cuda = device == "cuda"
    try:
        for _ in range(max(warmup, 1 if mode == "compile" else 0)):  # warm-up (and compilation)
            step()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            trim_heap()  # as the gkd side: heap pages kept after the warm-up would hide its peak
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            base = rss_kib("VmRSS") * 1024
        times = []
        for _ in range(reps):
            if cuda:
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                step()
                stop.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(stop))
            else:
                t0 = time.perf_counter()
                step()
                times.append((time.perf_counter() - t0) * 1e3)
        peak = (torch.cuda.max_memory_allocated() if cuda else rss_kib("VmHWM") * 1024) - base
        print(f"case {spec} mode {mode} ms {min(times):.4f} peak_mib {peak / 2**20:.1f}", flush=True)
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if not is_oom(e):
            raise
        print(f"case {spec} mode {mode} OOM", flush=True)
    finally:
        for x in grads:
            x.grad = None
        del args, grads
        if cuda:
            torch.cuda.empty_cache()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (at least 1 for compile)")
    p.add_argument("--cases", required=True)
    p.add_argument("--compile-cases", default="", help="cases also run through torch.compile")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.device == "cpu":
        cap_address_space()
    print(f"pytorch {torch.__version__} threads {torch.get_num_threads()} device {a.device}", flush=True)
    for spec in a.cases.split(","):
        run_case(spec, a.device, a.reps, a.warmup, "eager")
    for spec in filter(None, a.compile_cases.split(",")):
        try:
            run_case(spec, a.device, a.reps, a.warmup, "compile")
        except Exception as e:  # a compiler failure is reported, not fatal
            print(f"case {spec} mode compile FAILED {type(e).__name__}", flush=True)


if __name__ == "__main__":
    main()
