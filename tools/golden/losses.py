# SPDX-License-Identifier: Apache-2.0
"""Losses (include/gkd/losses/*.hpp). Dice and focal loss are not in PyTorch core: their reference
formulas are written out below in PyTorch, exactly as the C++ headers document them."""
import torch
import torch.nn.functional as F

from golden._util import rand, randn

def labels(*shape, classes, seed, ignore=None, every=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, classes, shape, generator=g).to(torch.float64)
    if every:
        t.view(-1)[::every] = ignore
    return t


def cross_entropy(w):
    x = randn(2, 4, 2, 3, seed=201, scale=2.0)
    t = labels(2, 2, 3, classes=4, seed=202)
    ti = labels(2, 2, 3, classes=4, seed=203, ignore=255, every=4)
    wt = torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64)
    w.tensor("ce.weight", wt)
    ce = lambda **kw: (lambda a, b: F.cross_entropy(a, b.long(), **kw))
    w.case("ce_mean", ce(), [x, t], grad=[0])
    w.case("ce_sum", ce(reduction="sum"), [x, t], grad=[0])
    w.case("ce_none", ce(reduction="none"), [x, t], grad=[0])
    w.case("ce_weight_mean", lambda a, b: F.cross_entropy(a, b.long(), weight=wt.to(a.dtype)), [x, t], grad=[0])
    w.case("ce_weight_sum", lambda a, b: F.cross_entropy(a, b.long(), weight=wt.to(a.dtype), reduction="sum"), [x, t], grad=[0])
    w.case("ce_ignore_mean", ce(ignore_index=255), [x, ti], grad=[0])
    w.case("ce_weight_ignore_mean", lambda a, b: F.cross_entropy(a, b.long(), weight=wt.to(a.dtype), ignore_index=255),
           [x, ti], grad=[0])
    w.case("ce_weight_ignore_none",
           lambda a, b: F.cross_entropy(a, b.long(), weight=wt.to(a.dtype), ignore_index=255, reduction="none"),
           [x, ti], grad=[0])
    w.case("ce_ignore_class", ce(ignore_index=0), [x, t], grad=[0])
    w.case("ce_2d", ce(), [randn(5, 3, seed=204, scale=2.0), labels(5, classes=3, seed=205)], grad=[0])
    w.case("ce_3d", ce(reduction="sum"), [randn(2, 3, 2, 2, 2, seed=206), labels(2, 2, 2, 2, classes=3, seed=207)], grad=[0])
    lp = F.log_softmax(x, 1)
    nll = lambda **kw: (lambda a, b: F.nll_loss(a, b.long(), **kw))
    w.case("nll_mean", nll(), [lp, t], grad=[0])
    w.case("nll_weight_ignore_mean", lambda a, b: F.nll_loss(a, b.long(), weight=wt.to(a.dtype), ignore_index=255),
           [lp, ti], grad=[0])
    w.case("nll_weight_ignore_none",
           lambda a, b: F.nll_loss(a, b.long(), weight=wt.to(a.dtype), ignore_index=255, reduction="none"),
           [lp, ti], grad=[0])
    w.case("nll_sum", nll(reduction="sum"), [lp, t], grad=[0])


def bce(w):
    x = randn(2, 3, 4, seed=211, scale=3.0)
    soft = rand(2, 3, 4, seed=212)
    binary = (rand(2, 3, 4, seed=213) > 0.5).to(torch.float64)
    pw = torch.tensor([[0.5], [2.0], [3.0]], dtype=torch.float64)
    wt = rand(4, seed=214, lo=0.2, hi=1.5)
    w.tensor("bce.pos_weight", pw)
    w.tensor("bce.weight", wt)
    bce = F.binary_cross_entropy_with_logits
    w.case("bce_mean", lambda a, b: bce(a, b), [x, soft], grad=[0])
    w.case("bce_sum", lambda a, b: bce(a, b, reduction="sum"), [x, binary], grad=[0])
    w.case("bce_none", lambda a, b: bce(a, b, reduction="none"), [x, soft], grad=[0])
    w.case("bce_pos_weight", lambda a, b: bce(a, b, pos_weight=pw.to(a.dtype)), [x, binary], grad=[0])
    w.case("bce_pos_weight_weight_none",
           lambda a, b: bce(a, b, weight=wt.to(a.dtype), pos_weight=pw.to(a.dtype), reduction="none"), [x, soft], grad=[0])
    w.case("bce_large", lambda a, b: bce(a, b, reduction="sum"), [randn(6, seed=215, scale=60.0), rand(6, seed=216)], grad=[0])


def regression(w):
    x, y = randn(2, 3, 4, seed=221), randn(2, 3, 4, seed=222)
    w.case("mse_mean", F.mse_loss, [x, y])
    w.case("mse_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"), [x, y])
    w.case("mse_none", lambda a, b: F.mse_loss(a, b, reduction="none"), [x, y])
    w.case("l1_mean", F.l1_loss, [x, y])
    w.case("l1_none", lambda a, b: F.l1_loss(a, b, reduction="none"), [x, y])
    w.case("smooth_l1_mean", F.smooth_l1_loss, [x * 2, y])
    w.case("smooth_l1_beta_none", lambda a, b: F.smooth_l1_loss(a, b, reduction="none", beta=0.5), [x, y])
    w.case("smooth_l1_beta0_sum", lambda a, b: F.smooth_l1_loss(a, b, reduction="sum", beta=0.0), [x, y])


def kl(w):
    lq = F.log_softmax(randn(3, 4, 2, seed=231), 1)
    p = F.softmax(randn(3, 4, 2, seed=232, scale=2.0), 1)
    p[0, :, 0] = torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64)  # zero targets: xlogy(0, 0) = 0
    w.case("kl_mean", lambda a, b: F.kl_div(a, b, reduction="mean"), [lq, p], grad=[0])
    w.case("kl_sum", lambda a, b: F.kl_div(a, b, reduction="sum"), [lq, p], grad=[0])
    w.case("kl_none", lambda a, b: F.kl_div(a, b, reduction="none"), [lq, p], grad=[0])
    w.case("kl_batchmean", lambda a, b: F.kl_div(a, b, reduction="batchmean"), [lq, p], grad=[0])
    w.case("kl_log_target", lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=True),
           [lq, F.log_softmax(randn(3, 4, 2, seed=233), 1)], grad=[0])

    def distill(T, dim=1, reduction="mean"):
        # Hinton KD: T^2 * sum over classes of KL(softmax(t/T) || softmax(s/T)), mean over the other positions
        def f(s, t):
            per_pos = F.kl_div(F.log_softmax(s / T, dim), F.log_softmax(t / T, dim), reduction="none",
                               log_target=True).sum(dim) * (T * T)
            return {"mean": per_pos.mean(), "sum": per_pos.sum(), "none": per_pos}[reduction]
        return f

    s2, t2 = randn(4, 5, seed=234, scale=2.0), randn(4, 5, seed=235, scale=2.0)
    w.case("kd_2d_t1", distill(1.0), [s2, t2], grad=[0])
    w.case("kd_2d_t4", distill(4.0), [s2, t2], grad=[0])
    # [N, C] check of the documented equivalence with batchmean
    T = 4.0
    bm = F.kl_div(F.log_softmax(s2 / T, 1), F.softmax(t2 / T, 1), reduction="batchmean") * T * T
    assert torch.allclose(bm, distill(T)(s2, t2), rtol=1e-12, atol=0)
    s4, t4 = randn(2, 3, 2, 3, seed=236, scale=2.0), randn(2, 3, 2, 3, seed=237, scale=2.0)
    w.case("kd_seg_t2", distill(2.0), [s4, t4])
    w.case("kd_seg_t4_sum", distill(4.0, reduction="sum"), [s4, t4], grad=[0])
    w.case("kd_seg_t3_none", distill(3.0, reduction="none"), [s4, t4])
    w.case("kd_last_t05", distill(0.5, dim=-1), [randn(2, 3, 4, seed=238), randn(2, 3, 4, seed=239)], grad=[0])


def generate(w):
    cross_entropy(w)
    bce(w)
    regression(w)
    kl(w)
