# SPDX-License-Identifier: Apache-2.0
"""Knowledge-distillation baseline losses (include/gkd/losses/attention_transfer.hpp, fsp.hpp, ifvd.hpp,
channel_wise_kd.hpp, region_affinity.hpp), written out in PyTorch exactly as the C++ headers document
them (the teacher is detached; only the student inputs are differentiated). The seeds are picked so that
PyTorch's own float32 result stays within ~3e-6 of its float64 one (tiny losses that are differences of
squares can cancel badly in float32)."""
import torch
import torch.nn.functional as F

from golden._util import rand, randn


def labels(*shape, classes, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, shape, generator=g).to(torch.float64)


def at_map(x, p):
    return F.normalize(x.abs().pow(p).mean(1).view(x.size(0), -1), dim=1)


def attention_transfer(s, t, p=2.0, sum_over_positions=False):
    if s.shape[2:] != t.shape[2:]:
        s = F.interpolate(s, size=t.shape[2:], mode="bilinear", align_corners=False)
    d = (at_map(s, p) - at_map(t.detach(), p)).pow(2)
    return d.sum(1).mean() if sum_over_positions else d.mean()


def fsp_matrix(f1, f2):
    if f2.shape[2:] != f1.shape[2:]:
        f2 = F.adaptive_avg_pool2d(f2, f1.shape[2:])
    b, c1, h, w = f1.shape
    return torch.bmm(f1.reshape(b, c1, h * w), f2.reshape(b, f2.shape[1], h * w).transpose(1, 2)) / (h * w)


def fsp(s1, s2, t1, t2):
    return (fsp_matrix(s1, s2) - fsp_matrix(t1.detach(), t2.detach())).pow(2).mean()


def ifv_map(f, lab, classes, eps=1e-8):
    lab = F.interpolate(lab.unsqueeze(1), size=f.shape[2:], mode="nearest").expand(f.shape)
    center = f.clone()
    for k in range(classes):
        m = (lab == k).to(f.dtype)
        proto = (m * f).sum((2, 3), keepdim=True) / m.sum((2, 3), keepdim=True).clamp(min=1)
        center = (1 - m) * center + m * proto
    return F.cosine_similarity(f, center, dim=1, eps=eps)


def ifvd(s, t, lab, classes):
    if s.shape[2:] != t.shape[2:]:
        s = F.interpolate(s, size=t.shape[2:], mode="bilinear", align_corners=False)
    return (ifv_map(s, lab, classes) - ifv_map(t.detach(), lab, classes)).pow(2).mean()


def cwd(s, t, tau):
    b, c, h, w = s.shape
    pt = F.softmax(t.detach().reshape(-1, h * w) / tau, dim=1)
    kl = pt * F.log_softmax(t.detach().reshape(-1, h * w) / tau, dim=1) - pt * F.log_softmax(s.reshape(-1, h * w) / tau, dim=1)
    return kl.sum() * tau**2 / (b * c)


def region_contrast(f, mask, fg_smooth=1.0, bg_smooth=0.0, eps=1e-8):
    m = F.interpolate(mask.unsqueeze(1), size=f.shape[2:], mode="nearest")
    r1 = (f * m).sum((2, 3)) / (m.sum((2, 3)) + fg_smooth)
    r0 = (f * (1 - m)).sum((2, 3)) / ((1 - m).sum((2, 3)) + bg_smooth)
    return F.cosine_similarity(r0, r1, dim=1, eps=eps)


def rad(s, t, mask, **kw):
    return (region_contrast(s, mask, **kw) - region_contrast(t.detach(), mask, **kw)).pow(2).mean()


def generate(w):
    s, t = randn(2, 2, 3, 4, seed=904), randn(2, 3, 3, 4, seed=905, scale=2.0)
    w.case("at_p2", lambda a, b: attention_transfer(a, b), [s, t], grad=[0])
    w.case("at_p3", lambda a, b: attention_transfer(a, b, p=3.0),
           [randn(2, 2, 3, 4, seed=928), randn(2, 3, 3, 4, seed=929, scale=2.0)], grad=[0])
    w.case("at_resize_p4_sum", lambda a, b: attention_transfer(a, b, p=4.0, sum_over_positions=True),
           [randn(1, 2, 2, 3, seed=803), randn(1, 3, 4, 5, seed=804)], grad=[0])

    w.case("fsp_same_size", fsp, [randn(1, 2, 3, 3, seed=912), randn(1, 3, 3, 3, seed=913),
                                  randn(1, 2, 3, 3, seed=914), randn(1, 3, 3, 3, seed=915)], grad=[0, 1])
    w.case("fsp_pooled", fsp, [randn(1, 2, 3, 3, seed=815), randn(1, 3, 5, 5, seed=816),
                               randn(1, 2, 4, 4, seed=817), randn(1, 3, 2, 2, seed=818)], grad=[0, 1])

    lab = labels(2, 6, 6, classes=3, seed=821)
    lab[1][lab[1] == 2] = 0  # class 2 absent from sample 1
    w.case("ifvd_3_classes", lambda a, b, l: ifvd(a, b, l, 3),
           [randn(2, 2, 3, 3, seed=928), randn(2, 3, 3, 3, seed=929), lab], grad=[0])
    w.case("ifvd_resize", lambda a, b, l: ifvd(a, b, l, 2),
           [randn(1, 2, 3, 3, seed=824), randn(1, 3, 6, 6, seed=825), labels(1, 6, 6, classes=2, seed=826)], grad=[0])

    # logits of scale 6 for τ = 4 (at smaller scales the float32 gradient cancels badly, in PyTorch too)
    w.case("cwd_t4", lambda a, b: cwd(a, b, 4.0), [randn(2, 2, 3, 4, seed=831, scale=6.0), randn(2, 2, 3, 4, seed=832, scale=6.0)],
           grad=[0])
    w.case("cwd_t1", lambda a, b: cwd(a, b, 1.0), [randn(2, 2, 3, 4, seed=831, scale=2.0), randn(2, 2, 3, 4, seed=832, scale=2.0)],
           grad=[0])

    mask = (rand(2, 6, 6, seed=841) > 0.6).to(torch.float64)
    w.case("rad_default", rad, [randn(2, 2, 3, 3, seed=842), randn(2, 3, 6, 6, seed=843), mask], grad=[0])
    w.case("rad_smooth_both", lambda a, b, m: rad(a, b, m, fg_smooth=1.0, bg_smooth=1.0),
           [randn(2, 2, 4, 4, seed=912), randn(2, 2, 2, 2, seed=913), mask], grad=[0])
