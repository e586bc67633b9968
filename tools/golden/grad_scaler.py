# SPDX-License-Identifier: Apache-2.0
"""Dynamic loss scaling (include/gkd/optim/grad_scaler.hpp) against torch.amp.GradScaler("cpu").

Two parameters, W [3, 2] and b [2], and a scripted gradient per iteration k = 1..STEPS: the loss is

    loss_k = sum(W * G_k) + sum(b * g_k)

so the gradients of scaler.scale(loss_k) are exactly S * G_k and S * g_k. Some iterations hold
non-finite gradients: an inf in G_k, a NaN in g_k, and a finite value (half the dtype's largest)
that overflows only once multiplied by the scale. Each iteration runs
opt.zero_grad(); scaler.scale(loss).backward(); scaler.step(opt); scaler.update(), with a small
growth_interval so that both growth and back-off happen, in float64 and float32.
Keys, with <dt> = float64|float32:
  problem.W0, problem.b0                 initial parameters (float64)
  problem.<dt>.G [STEPS, 3, 2], .g [STEPS, 2]  the scripted gradients (in <dt>; may hold inf/NaN)
  <case>.<dt>.scale [STEPS]              scaler.get_scale() after update() of iteration k
  <case>.<dt>.tracker [STEPS]            the growth tracker after update()
  <case>.<dt>.stepped [STEPS]            1 if the optimizer stepped at iteration k, else 0
  <case>.<dt>.W [STEPS, 3, 2], .b [STEPS, 2]   parameters after iteration k
  <case>.<dt>.opt_step [STEPS]           (Adam) state["step"] of W after iteration k
Options per case are in CASES (the C++ test repeats them).
"""
import torch

from golden._util import randn

STEPS = 12
# iteration (1-based) -> kind of non-finite gradient
BAD = {3: "inf", 4: "nan", 8: "overflow", 9: "inf"}

CASES = {
    # power-of-two scale and factors: unscaling is exact
    "sgd": (dict(init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=3),
            lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)),
    # factors that round: the float32 scale arithmetic must match PyTorch's
    "adam": (dict(init_scale=1000.0, growth_factor=1.5, backoff_factor=0.3, growth_interval=2),
             lambda params: torch.optim.Adam(params, lr=0.05, betas=(0.9, 0.99))),
}


def scripted_gradients(dtype):
    G = randn(STEPS, 3, 2, seed=31).to(dtype)
    g = randn(STEPS, 2, seed=32).to(dtype)
    for k, kind in BAD.items():
        if kind == "inf":
            G[k - 1, 1, 0] = float("inf")
        elif kind == "nan":
            g[k - 1, 1] = float("nan")
        else:
            G[k - 1, 2, 1] = torch.finfo(dtype).max / 2
    return G, g


def generate(w):
    W0, b0 = randn(3, 2, seed=33), randn(2, seed=34)
    w.tensor("problem.W0", W0)
    w.tensor("problem.b0", b0)
    for dtype in (torch.float64, torch.float32):
        G, g = scripted_gradients(dtype)
        w.tensor(f"problem.{'float64' if dtype == torch.float64 else 'float32'}.G", G)
        w.tensor(f"problem.{'float64' if dtype == torch.float64 else 'float32'}.g", g)
    for name, (options, make_opt) in CASES.items():
        for dtype in (torch.float64, torch.float32):
            tag = f"{name}.{'float64' if dtype == torch.float64 else 'float32'}"
            G, g = scripted_gradients(dtype)
            W = W0.to(dtype).clone().requires_grad_()
            b = b0.to(dtype).clone().requires_grad_()
            opt = make_opt([W, b])
            scaler = torch.amp.GradScaler("cpu", **options)
            rows = {key: [] for key in ("scale", "tracker", "stepped", "W", "b", "opt_step")}
            for k in range(STEPS):
                opt.zero_grad()
                scaler.scale((W * G[k]).sum() + (b * g[k]).sum()).backward()
                before = W.detach().clone()
                scaler.step(opt)
                scaler.update()
                rows["scale"].append(scaler.get_scale())
                rows["tracker"].append(scaler.state_dict()["_growth_tracker"])
                rows["stepped"].append(0 if torch.equal(before, W.detach()) else 1)
                rows["W"].append(W.detach().clone())
                rows["b"].append(b.detach().clone())
                rows["opt_step"].append(float(opt.state[W]["step"]) if "step" in opt.state.get(W, {}) else 0.0)
            assert rows["stepped"] == [0 if k + 1 in BAD else 1 for k in range(STEPS)], rows["stepped"]
            for key in ("scale", "tracker", "stepped", "opt_step"):
                if key == "opt_step" and name != "adam":
                    continue
                w.tensor(f"{tag}.{key}", torch.tensor(rows[key], dtype=torch.float64))
            w.tensor(f"{tag}.W", torch.stack(rows["W"]))
            w.tensor(f"{tag}.b", torch.stack(rows["b"]))
