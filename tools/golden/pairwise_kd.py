# SPDX-License-Identifier: Apache-2.0
"""Pair-wise and cross-reconstruction distillation losses (include/gkd/losses/pairwise_kd.hpp,
cross_recon_kd.hpp), written out in PyTorch exactly as SKD's pair-wise loss, CIRKD's mini-batch
cross-image pair loss and the DICD KL are usually implemented (materialised N x N matrices)."""
import torch
import torch.nn.functional as F

from golden._util import randn


def skd(s, t, reduction="mean"):
    hs, ht = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
    d = (hs @ hs.transpose(-1, -2) - ht @ ht.transpose(-1, -2)) ** 2
    return d.mean() if reduction == "mean" else d.sum()


def cirkd(s, t, tau, reduction="mean"):
    hs, ht = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
    b, n = s.shape[0], s.shape[1]
    total = 0
    for i in range(b):
        for j in range(b):
            ls = F.log_softmax(hs[i] @ hs[j].T / tau, dim=1)
            pt = F.softmax(ht[i] @ ht[j].T / tau, dim=1)
            total = total + F.kl_div(ls, pt, reduction="sum")
    return total / (b * b * n) if reduction == "mean" else total


def dicd(t, x1, x2, tau, reduction="mean"):
    pt = F.softmax(t / tau, dim=1)
    kl = lambda x: (F.kl_div(F.log_softmax(x / tau, dim=1), pt, reduction="none")).sum(1) * tau * tau
    m = kl(x1) + kl(x2)
    return m.mean() if reduction == "mean" else (m.sum() if reduction == "sum" else m)


def generate(w):
    s, t = randn(2, 7, 3, seed=701), randn(2, 7, 5, seed=702, scale=2.0)
    w.case("skd_mean", lambda a, b: skd(a, b), [s, t], grad=[0])
    w.case("skd_sum", lambda a, b: skd(a, b, "sum"), [s, t], grad=[0])
    w.case("skd_two_nodes", lambda a, b: skd(a, b), [randn(1, 2, 4, seed=703), randn(1, 2, 2, seed=704)], grad=[0])
    w.case("cirkd_mean_t0.5", lambda a, b: cirkd(a, b, 0.5), [s, t], grad=[0])
    w.case("cirkd_sum_t0.1", lambda a, b: cirkd(a, b, 0.1, "sum"), [s, t], grad=[0])
    w.case("cirkd_t4", lambda a, b: cirkd(a, b, 4.0), [randn(3, 5, 4, seed=705), randn(3, 5, 6, seed=706)], grad=[0])
    lt, l1, l2 = randn(2, 3, 4, 5, seed=707, scale=3.0), randn(2, 3, 4, 5, seed=708, scale=3.0), randn(2, 3, 4, 5, seed=709)
    w.case("dicd_mean_t2", lambda a, b, c: dicd(a, b, c, 2.0), [lt, l1, l2], grad=[1, 2])
    w.case("dicd_sum_t1", lambda a, b, c: dicd(a, b, c, 1.0, "sum"), [lt, l1, l2], grad=[1, 2])
    w.case("dicd_none_t4", lambda a, b, c: dicd(a, b, c, 4.0, "none"), [lt, l1, l2], grad=[1, 2])
