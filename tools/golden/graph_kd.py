# SPDX-License-Identifier: Apache-2.0
"""Graph-contrastive distillation (include/gkd/losses/graph_kd.hpp): the relational KL between the
teacher's and the student's similarity graphs and the teacher-student InfoNCE, written out in PyTorch
as materialised N x N matrices, exactly as the C++ header documents them. The teacher is detached.
Only float64: gkd computes float32 inputs with float64 tiles, so PyTorch's float32 result (errors
~1e-5 from its float32 GEMMs) would be the less accurate side; float32 is checked against gkd's own
naive float64 reference in the C++ tests."""
import torch
import torch.nn.functional as F

from golden._util import randn


def allowed(n, mask, group, infonce):
    """Boolean [n, n]: the columns j of each row i (self-loop only for InfoNCE)."""
    i = torch.arange(n).unsqueeze(1)
    j = torch.arange(n).unsqueeze(0)
    if mask == "full":
        m = torch.ones(n, n, dtype=torch.bool)
    else:
        m = (i // group) == (j // group)
        if mask == "star":
            m = m & (i % group == 0)
    return m if infonce else m & (i != j)


def graph_loss(s, t, tau, mask, group, reduction, infonce):
    n = s.shape[0]
    t = t.detach()
    sh, th = F.normalize(s, dim=1, eps=1e-12), F.normalize(t, dim=1, eps=1e-12)
    m = allowed(n, mask, group, infonce)
    rows = m.any(dim=1)
    neg = torch.finfo(s.dtype).min
    if infonce:
        logits = (sh @ th.T / tau).masked_fill(~m, neg)
        loss = -torch.diagonal(F.log_softmax(logits, dim=1))
    else:
        a = (th @ th.T / tau).masked_fill(~m, neg)
        b = (sh @ sh.T / tau).masked_fill(~m, neg)
        lp, lq = F.log_softmax(a, dim=1), F.log_softmax(b, dim=1)
        loss = torch.where(m, lp.exp() * (lp - lq), torch.zeros_like(lp)).sum(dim=1)
    loss = torch.where(rows, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / rows.sum().clamp(min=1)


def generate(w):
    cases = [  # name, N, C_s, C_t, tau, mask, group, reduction, infonce
        ("kl_full_mean", 12, 6, 9, 0.5, "full", 0, "mean", False),
        ("kl_full_none", 12, 6, 9, 0.1, "full", 0, "none", False),
        ("kl_block_sum", 12, 6, 9, 1.0, "block", 4, "sum", False),
        ("kl_star_mean", 12, 6, 9, 0.2, "star", 4, "mean", False),
        ("kl_star_none", 12, 6, 9, 2.0, "star", 6, "none", False),
        ("nce_full_mean", 12, 8, 8, 0.1, "full", 0, "mean", True),
        ("nce_block_none", 12, 8, 8, 0.5, "block", 3, "none", True),
        ("nce_star_sum", 12, 8, 8, 0.3, "star", 4, "sum", True),
    ]
    for k, (name, n, cs, ct, tau, mask, group, red, nce) in enumerate(cases):
        s, t = randn(n, cs, seed=700 + 2 * k), randn(n, ct, seed=701 + 2 * k)
        w.case(name, lambda a, b, tau=tau, mask=mask, group=group, red=red, nce=nce:
               graph_loss(a, b, tau, mask, group, red, nce), [s, t], grad=[0], seed=720 + k, dtypes=(torch.float64,))
