# SPDX-License-Identifier: Apache-2.0
"""PyTorch eager counterpart of benchmarks/graph_kd.cpp (CPU) and benchmarks/cuda/graph_kd.cu (GPU): the
graph-contrastive KL of include/gkd/losses/graph_kd.hpp written the way PyTorch users write it, with
materialised N x N similarity matrices (block and star masks: one g x g matrix per group of g nodes, as
batched matmuls over [N / g, g, C], not an N x N matrix that is mostly masked); the mask `infonce` is
graph_infonce_loss on the full graph (cross-entropy of each student row against all teacher rows, the
positive being the same node). Prints one line per case:
    case <N> <C_s> <C_t> <mask> <group> ms <fwd+bwd ms> peak_mib <peak extra memory MiB>
or `... oom` where the device runs out of memory. On the CPU the process's address space is capped at
what the machine has available when it starts (`oom_guard.py`), so a case too large for the machine ends
as an allocation failure reported `oom`, not as swapping. CPU peak memory is the resident-set high-water
mark above the level before the timed loop (Linux /proc/self/clear_refs); GPU peak memory is
torch.cuda.max_memory_allocated above the inputs.

    python3 graph_kd_pytorch.py --threads 1 --reps 3 --cases 1024,128,128,full,0 4096,512,512,full,0
    python3 graph_kd_pytorch.py --device cuda [--compile] [--warmup 2] --cases ...
"""
import argparse
import ctypes
import time

from oom_guard import cap_address_space, is_oom

import torch
import torch.nn.functional as F


def trim_heap():
    """Returns the pages malloc kept after frees to the system (glibc), so that the next peak counts them."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def allowed(n, mask, group, device):
    i = torch.arange(n, device=device).unsqueeze(1)
    j = torch.arange(n, device=device).unsqueeze(0)
    if mask == "full":
        m = i != j
    else:
        m = ((i // group) == (j // group)) & (i != j)
        if mask == "star":
            m = m & (i % group == 0)
    return m


def graph_kd(s, t, m, rows, tau):
    """s, t: [N, C] (one graph) or [B, g, C] (B graphs of g nodes); m: the [N, N] or [g, g] edges."""
    sh = F.normalize(s, dim=-1)
    th = F.normalize(t.detach(), dim=-1)
    neg = torch.finfo(s.dtype).min
    lp = F.log_softmax((th @ th.transpose(-1, -2) / tau).masked_fill(~m, neg), dim=-1)
    lq = F.log_softmax((sh @ sh.transpose(-1, -2) / tau).masked_fill(~m, neg), dim=-1)
    return F.kl_div(lq, lp, reduction="sum", log_target=True) / rows


def graph_infonce(s, t, m, rows, tau):
    """gkd's graph_infonce_loss on the full mask (m and rows unused): the mean over rows i of
    −log softmax_j(ŝ_i · t̂_j / τ)[i]."""
    sh = F.normalize(s, dim=-1)
    th = F.normalize(t.detach(), dim=-1)
    return F.cross_entropy(sh @ th.transpose(-1, -2) / tau, torch.arange(s.shape[0], device=s.device))


def vm_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (at least 1 with --compile)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--cases", nargs="+", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if not cuda:
        cap_address_space()
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # the same TF32 tensor-core GEMMs as gkd's TF32 mode
    forms = {"kd": graph_kd, "infonce": graph_infonce}
    if a.compile:
        forms = {k: torch.compile(f) for k, f in forms.items()}
    print(f"pytorch {torch.__version__} threads {a.threads} device {a.device}{' compile' if a.compile else ''}", flush=True)
    for spec in a.cases:
        n, cs, ct, mask, group = spec.split(",")
        n, cs, ct, group = int(n), int(cs), int(ct), int(group)
        head = f"case {n} {cs} {ct} {mask} {group}"
        try:
            g = torch.Generator().manual_seed(0)
            s = torch.randn(n, cs, generator=g).to(dev).requires_grad_()
            t = torch.randn(n, ct, generator=g).to(dev)
            fn = forms["infonce" if mask == "infonce" else "kd"]
            graphs = 1 if mask in ("full", "infonce") else n // group
            m = allowed(n // graphs, "full" if mask == "infonce" else mask, group, dev)
            rows = float((m.any(dim=1).sum() * graphs).clamp(min=1))
            s_in = s if graphs == 1 else s.view(graphs, group, cs)
            t_in = t if graphs == 1 else t.view(graphs, group, ct)
            for _ in range(max(a.warmup, 1 if a.compile else 0)):  # warm-up (and compilation)
                s.grad = None
                fn(s_in, t_in, m, rows, a.tau).backward()
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            else:
                trim_heap()  # as the gkd side: heap pages kept after the warm-up would hide its peak
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                base = vm_kib("VmRSS") * 1024
            times = []
            for _ in range(a.reps):
                s.grad = None
                if cuda:
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    fn(s_in, t_in, m, rows, a.tau).backward()
                    e1.record()
                    torch.cuda.synchronize()
                    times.append(e0.elapsed_time(e1))
                else:
                    t0 = time.perf_counter()
                    fn(s_in, t_in, m, rows, a.tau).backward()
                    times.append((time.perf_counter() - t0) * 1e3)
            peak = (torch.cuda.max_memory_allocated() if cuda else vm_kib("VmHWM") * 1024) - base
            times.sort()
            print(f"{head} ms {times[len(times) // 2]:.4f} peak_mib {peak / 2**20:.1f}", flush=True)
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not is_oom(e):
                raise
            print(f"{head} oom", flush=True)
        finally:
            s = t = m = s_in = t_in = None
            if cuda:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
