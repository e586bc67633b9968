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


def in_float64(f):
    """Evaluates a hand-written reference formula in float64 and rounds to the case's dtype, so the
    float32 goldens hold the correctly rounded values rather than one float32 evaluation order."""
    return lambda *args: f(*[a.double() for a in args]).to(args[0].dtype)


def focal_ref(gamma, alpha=None, ignore_index=-100, reduction="mean"):
    """Softmax focal loss (Lin et al. 2017) as include/gkd/losses/focal.hpp documents it:
    l = -alpha[t] (1 - p_t)^gamma log p_t at non-ignored positions; mean = sum / count."""
    def f(x, t):
        valid = t != ignore_index
        k = torch.where(valid, t, torch.zeros_like(t)).long()
        log_pt = F.log_softmax(x, 1).gather(1, k.unsqueeze(1)).squeeze(1)
        a = alpha.to(x.dtype)[k] if alpha is not None else 1.0
        loss = -a * (-torch.expm1(log_pt)) ** gamma * log_pt
        loss = torch.where(valid, loss, torch.zeros_like(loss))
        return {"mean": loss.sum() / valid.sum(), "sum": loss.sum(), "none": loss}[reduction]
    return in_float64(f)


def focal(w):
    x = randn(2, 4, 2, 3, seed=241, scale=2.0)
    t = labels(2, 2, 3, classes=4, seed=242)
    ti = labels(2, 2, 3, classes=4, seed=243, ignore=255, every=4)
    alpha = torch.tensor([0.25, 0.75, 0.5, 1.0], dtype=torch.float64)
    w.tensor("focal.alpha", alpha)
    w.case("focal_mean", focal_ref(2.0), [x, t], grad=[0])
    w.case("focal_gamma0", lambda a, b: F.cross_entropy(a, b.long()), [x, t], grad=[0])  # gamma = 0: cross-entropy
    w.case("focal_alpha_ignore_none", focal_ref(1.5, alpha, 255, "none"), [x, ti], grad=[0])
    w.case("focal_alpha_ignore_mean", focal_ref(2.0, alpha, 255), [x, ti], grad=[0])
    w.case("focal_sum_gamma05", focal_ref(0.5, reduction="sum"), [x, t], grad=[0])
    w.case("focal_2d", focal_ref(2.0), [randn(5, 3, seed=244, scale=3.0), labels(5, classes=3, seed=245)], grad=[0])


def dice_ref(smooth, activation=None, reduction="mean", indices=False):
    """Soft Dice as include/gkd/losses/dice.hpp documents it: per class c, summing over batch and
    space, loss_c = 1 - (2 sum p t + smooth) / (sum p + sum t + smooth); mean/sum over classes."""
    def f(x, t):
        p = {"softmax": lambda v: F.softmax(v, 1), "sigmoid": torch.sigmoid, None: lambda v: v}[activation](x)
        if indices:
            t = F.one_hot(t.long(), p.shape[1]).movedim(-1, 1).to(p.dtype)
        dims = [0] + list(range(2, p.dim()))
        loss = 1 - (2 * (p * t).sum(dims) + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
        return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]
    return in_float64(f)


def dice(w):
    x = randn(2, 3, 3, 4, seed=251)
    t = labels(2, 3, 4, classes=3, seed=252)
    onehot = F.one_hot(t.long(), 3).movedim(-1, 1).to(torch.float64)
    w.case("dice_probs_onehot", dice_ref(1.0), [F.softmax(x, 1), onehot], grad=[0])
    w.case("dice_softmax_indices", dice_ref(1.0, "softmax", indices=True), [x, t], grad=[0])
    binary = (rand(2, 1, 3, 4, seed=253) > 0.5).to(torch.float64)
    w.case("dice_sigmoid_binary_sum", dice_ref(0.5, "sigmoid", "sum"), [randn(2, 1, 3, 4, seed=254), binary], grad=[0])
    w.case("dice_softmax_none_smooth0", dice_ref(0.0, "softmax", "none"), [x, onehot], grad=[0])


def generate(w):
    cross_entropy(w)
    bce(w)
    regression(w)
    kl(w)
    focal(w)
    dice(w)
