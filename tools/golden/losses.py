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


def generate(w):
    cross_entropy(w)
