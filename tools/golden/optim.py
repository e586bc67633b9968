# SPDX-License-Identifier: Apache-2.0
"""Optimizers, LR schedules, gradient clipping and init constants (include/gkd/optim/*.hpp,
include/gkd/nn/init.hpp).

Trajectories: a small deterministic problem with two parameter tensors, W [5, 4] and b [4],

    U = W - A, V = b - c
    loss(W, b) = sum(0.5 * D * U^2 + 0.1 * U^4) + sum(0.5 * V^2 + 0.3 * V * tanh(V))

is optimized for STEPS steps by each optimizer with a schedule, in float64 and float32:
opt.zero_grad(); loss.backward(); opt.step(); sched.step(). Every term of a gradient has the sign
of U (or V), so gradients never cancel and float32 runs stay within a few ulps of each other (a
loss whose terms compete, e.g. a fit plus a regularizer, makes float32 gradients lose 1e-5
relative near its optimum in PyTorch and gkd alike, which would swamp the optimizer's own
arithmetic). |A|, |c| >= 1 and |W0 - A|, |b0 - c| <= 0.6 keep the parameters away from zero.
Keys, with <dt> = float64|float32:
  problem.A, problem.c, problem.D, problem.W0, problem.b0   data and initial parameters (float64)
  <case>.<dt>.lr                 [STEPS, groups] lr that optimizer step k used
  <case>.<dt>.step<k>.W / .b     parameters after step k (k = 1..STEPS)
  <case>.<dt>.grad<k>.W / .b     the gradient PyTorch used at step k
Schedules alone (two groups, base lrs 0.1 and 0.037):
  sched.<name>.lr      [N + 1, 2] group lrs after construction (row 0) and after each step()
  sched.<name>.closed  [N + 1, 2] PyTorch's closed form (_get_closed_form_lr) at each epoch
"""
import math

import torch
from torch.optim import lr_scheduler as S

from golden._util import rand, randn

STEPS = 25


def problem():
    def away(t):  # magnitudes in [1.5, 2), random signs
        return torch.where(t >= 0.5, 1.0 + t, -2.0 + t)
    A, c = away(rand(5, 4, seed=11)), away(rand(4, seed=12))
    return dict(A=A, c=c, D=rand(5, 4, seed=13, lo=0.5, hi=2.0),
                W0=A + rand(5, 4, seed=14, lo=-0.6, hi=0.6), b0=c + rand(4, seed=15, lo=-0.6, hi=0.6))


def loss_fn(W, b, p):
    U, V = W - p["A"], b - p["c"]
    return (0.5 * p["D"] * U ** 2 + 0.1 * U ** 4).sum() + (0.5 * V ** 2 + 0.3 * V * torch.tanh(V)).sum()


def warmup_cosine(opt, warmup, total, start_factor, eta_min):
    return S.SequentialLR(opt, [S.LinearLR(opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup),
                                S.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)],
                          milestones=[warmup])


# name -> (optimizer factory taking W, b; scheduler factory or None)
CASES = {
    "sgd_momentum": (
        lambda W, b: torch.optim.SGD([{"params": [W]}, {"params": [b], "lr": 0.05}], lr=0.1, momentum=0.9,
                                     dampening=0.1),
        lambda o: S.StepLR(o, step_size=7, gamma=0.5)),
    "sgd_nesterov_wd": (
        lambda W, b: torch.optim.SGD([{"params": [W], "weight_decay": 0.02}, {"params": [b]}], lr=0.08,
                                     momentum=0.8, nesterov=True, weight_decay=0.0),
        lambda o: S.MultiStepLR(o, milestones=[4, 10, 10, 17], gamma=0.3)),
    "sgd_plain_wd": (
        lambda W, b: torch.optim.SGD([W, b], lr=0.2, weight_decay=0.05),
        None),
    "adam": (
        lambda W, b: torch.optim.Adam([W, b], lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-3),
        lambda o: S.PolynomialLR(o, total_iters=20, power=0.9)),
    "adam_amsgrad": (
        lambda W, b: torch.optim.Adam([{"params": [W]}, {"params": [b], "lr": 0.1}], lr=0.03, betas=(0.8, 0.95),
                                      eps=1e-6, amsgrad=True),
        lambda o: S.CosineAnnealingLR(o, T_max=15, eta_min=1e-3)),
    "adamw": (
        lambda W, b: torch.optim.AdamW([{"params": [W], "weight_decay": 0.1}, {"params": [b], "lr": 0.02}],
                                       lr=0.05, weight_decay=0.01),
        lambda o: warmup_cosine(o, warmup=5, total=STEPS, start_factor=0.1, eta_min=1e-4)),
    "adamw_amsgrad": (
        lambda W, b: torch.optim.AdamW([W, b], lr=0.04, betas=(0.85, 0.9), weight_decay=0.3, amsgrad=True),
        None),
}


def trajectories(w):
    p = problem()
    for k, v in p.items():
        w.tensor(f"problem.{k}", v)
    for name, (make_opt, make_sched) in CASES.items():
        for dtype in (torch.float64, torch.float32):
            tag = f"{name}.{'float64' if dtype == torch.float64 else 'float32'}"
            data = {k: v.to(dtype) for k, v in p.items()}
            W = p["W0"].to(dtype).clone().requires_grad_()
            b = p["b0"].to(dtype).clone().requires_grad_()
            opt = make_opt(W, b)
            sched = make_sched(opt) if make_sched else None
            lrs = []
            for k in range(1, STEPS + 1):
                opt.zero_grad()
                loss_fn(W, b, data).backward()
                w.tensor(f"{tag}.grad{k}.W", W.grad)
                w.tensor(f"{tag}.grad{k}.b", b.grad)
                lrs.append([g["lr"] for g in opt.param_groups])
                opt.step()
                if sched:
                    sched.step()
                w.tensor(f"{tag}.step{k}.W", W)
                w.tensor(f"{tag}.step{k}.b", b)
            w.tensor(f"{tag}.lr", torch.tensor(lrs, dtype=torch.float64))


SCHEDULES = {
    "step": (40, lambda o: S.StepLR(o, step_size=3, gamma=0.7)),
    "multistep": (40, lambda o: S.MultiStepLR(o, milestones=[12, 5, 12, 30], gamma=0.4)),
    "poly": (40, lambda o: S.PolynomialLR(o, total_iters=30, power=0.9)),
    "cosine": (45, lambda o: S.CosineAnnealingLR(o, T_max=17, eta_min=0.002)),
    "warmup_cosine": (40, lambda o: warmup_cosine(o, warmup=8, total=30, start_factor=0.05, eta_min=0.001)),
}


def closed_form(sched, epoch):
    """PyTorch's own closed form at `epoch` (for SequentialLR: that of the active child)."""
    if isinstance(sched, S.SequentialLR):
        idx = sum(1 for m in sched._milestones if m <= epoch)
        child = sched._schedulers[idx]
        start = sched._milestones[idx - 1] if idx > 0 else 0
        return closed_form(child, epoch - start)
    saved = sched.last_epoch
    sched.last_epoch = epoch
    values = sched._get_closed_form_lr()
    sched.last_epoch = saved
    return values


def schedules(w):
    for name, (n, make) in SCHEDULES.items():
        opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                               {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.037}], lr=0.1)
        sched = make(opt)
        lrs = [[g["lr"] for g in opt.param_groups]]
        closed = [closed_form(sched, 0)]
        for t in range(1, n + 1):
            opt.step()
            sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
            closed.append(closed_form(sched, t))
        w.tensor(f"sched.{name}.lr", torch.tensor(lrs, dtype=torch.float64))
        w.tensor(f"sched.{name}.closed", torch.tensor(closed, dtype=torch.float64))


def clipping(w):
    """clip_grad_norm_ / clip_grad_value_ on three gradients (one parameter has none)."""
    grads = [randn(3, 4, seed=21), randn(5, seed=22, scale=3.0), randn(2, 2, 2, seed=23, scale=0.1)]
    for i, g in enumerate(grads):
        w.tensor(f"clip.grad{i}", g)
    for norm_type, tag in ((2.0, "2"), (1.0, "1"), (3.0, "3"), (math.inf, "inf")):
        for max_norm in (0.5, 1e3):
            ps = [torch.zeros_like(g, requires_grad=True) for g in grads] + [torch.zeros(2, requires_grad=True)]
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
            key = f"clip.norm{tag}.max{max_norm:g}"
            w.tensor(f"{key}.total", total)
            for i, p in enumerate(ps[:3]):
                w.tensor(f"{key}.out{i}", p.grad)
    ps = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(ps, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_value_(ps, 0.7)
    for i, p in enumerate(ps):
        w.tensor(f"clip.value0.7.out{i}", p.grad)


def init_constants(w):
    """torch.nn.init's gains and fans, and the std/bound its initializers use, for exact checks."""
    init = torch.nn.init
    for nl in ("linear", "conv2d", "sigmoid", "tanh", "relu", "selu"):
        w.scalar(f"init.gain.{nl}", init.calculate_gain(nl))
    for slope in (None, 0.0, 0.2, 0.01, math.sqrt(5)):
        w.scalar(f"init.gain.leaky_relu.{slope}", init.calculate_gain("leaky_relu", slope))
    shapes = {"linear": (7, 3), "conv": (16, 8, 3, 5), "conv3d": (4, 2, 3, 3, 3), "vector2": (1, 9)}
    for name, shape in shapes.items():
        t = torch.empty(shape)
        fan_in, fan_out = init._calculate_fan_in_and_fan_out(t)
        w.tensor(f"init.fans.{name}", torch.tensor([fan_in, fan_out], dtype=torch.float64))
        # The formulas of torch.nn.init (std / bound), evaluated exactly as it does in Python floats.
        gain = init.calculate_gain("leaky_relu", math.sqrt(5))
        w.scalar(f"init.kaiming_uniform_bound.{name}", math.sqrt(3.0) * (gain / math.sqrt(fan_in)))
        gain = init.calculate_gain("relu")
        w.scalar(f"init.kaiming_normal_std_fan_out.{name}", gain / math.sqrt(fan_out))
        gain = init.calculate_gain("tanh")
        std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
        w.scalar(f"init.xavier_uniform_bound.{name}", math.sqrt(3.0) * std)
        w.scalar(f"init.xavier_normal_std.{name}", std)


def generate(w):
    trajectories(w)
    schedules(w)
    clipping(w)
    init_constants(w)
