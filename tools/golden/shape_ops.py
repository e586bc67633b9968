# SPDX-License-Identifier: Apache-2.0
"""Joining, padding, indexing and similarity ops (include/gkd/ops/join.hpp, pad.hpp, index.hpp,
similarity.hpp)."""
import torch
import torch.nn.functional as F

from golden._util import randn


def join(w):
    a, b, c = randn(2, 3, 4, seed=101), randn(2, 1, 4, seed=102), randn(2, 2, 4, seed=103)
    w.case("concat_dim1", lambda *x: torch.cat(x, 1), [a, b, c])
    w.case("concat_last", lambda *x: torch.cat(x, -1), [randn(3, 2, seed=104), randn(3, 5, seed=105)])
    w.case("stack_dim0", lambda *x: torch.stack(x, 0), [randn(2, 3, seed=106), randn(2, 3, seed=107)])
    w.case("stack_dim2", lambda *x: torch.stack(x, 2), [a, randn(2, 3, 4, seed=108), a * 2])

    def split_sizes(x):
        p = torch.split(x, [1, 3, 1], 2)
        return torch.cat([p[2] * 3, p[0], torch.exp(p[1])], 2)

    w.case("split_sizes", split_sizes, [randn(2, 3, 5, seed=109)])

    def split_size(x):
        p = torch.split(x, 2, 1)
        return torch.stack([p[0], p[1] * p[1]], 0)

    w.case("split_size", split_size, [randn(3, 4, 2, seed=110)])


def pad(w):
    x = randn(1, 1, 4, 5, seed=111)
    w.case("pad_zero", lambda t: F.pad(t, (1, 2, 2, 1)), [x])
    w.case("pad_value", lambda t: F.pad(t, (0, 3), value=-1.5), [randn(3, 4, seed=112)])
    w.case("pad_crop", lambda t: F.pad(t, (-1, 2, 1, -2)), [x])
    w.case("pad_reflect", lambda t: F.pad(t, (3, 1, 2, 3), mode="reflect"), [x])
    w.case("pad_reflect_1d", lambda t: F.pad(t, (2, 4), mode="reflect"), [randn(2, 3, 5, seed=113)])
    w.case("pad_reflect_3d", lambda t: F.pad(t, (1, 2, 2, 1, 1, 1), mode="reflect"), [randn(1, 1, 2, 3, 3, seed=114)])
    w.case("pad_replicate", lambda t: F.pad(t, (2, 3, 1, 2), mode="replicate"), [x])


def index(w):
    x = randn(2, 4, 3, seed=115)
    idx = torch.tensor([3, 0, 3, 1, 2], dtype=torch.float64)
    w.tensor("index_select.index", idx)
    w.case("index_select", lambda t: torch.index_select(t, 1, idx.long()), [x])
    g = torch.Generator().manual_seed(116)
    gidx = torch.randint(0, 4, (2, 5, 2), generator=g).to(torch.float64)
    w.case("gather_dim1", lambda t, i: torch.gather(t, 1, i.long()), [x, gidx], grad=[0])
    gidx = torch.randint(0, 3, (2, 3, 4), generator=g).to(torch.float64)
    w.case("gather_last", lambda t, i: torch.gather(t, -1, i.long()), [x, gidx], grad=[0])
    labels = torch.randint(0, 4, (2, 3, 3), generator=g)
    w.tensor("one_hot.labels", labels.to(torch.float64))
    w.tensor("one_hot.out", F.one_hot(labels, 4).permute(0, 3, 1, 2).to(torch.float64))


def similarity(w):
    x = randn(2, 3, 2, 2, seed=117)
    w.case("normalize_dim1", lambda t: F.normalize(t), [x])
    w.case("normalize_last", lambda t: F.normalize(t, dim=-1), [randn(4, 5, seed=118)])
    # some slices have norm < eps: divided by eps, no gradient through the norm
    w.case("normalize_eps", lambda t: F.normalize(t, dim=1, eps=0.8), [randn(5, 3, seed=119, scale=0.5)])
    w.case("cosine_dim1", lambda a, b: F.cosine_similarity(a, b), [x, randn(2, 3, 2, 2, seed=120)])
    w.case("cosine_broadcast", lambda a, b: F.cosine_similarity(a, b, dim=-1), [randn(3, 1, 4, seed=121), randn(2, 4, seed=122)])
    w.case("cosine_eps", lambda a, b: F.cosine_similarity(a, b, dim=1, eps=0.6),
           [randn(5, 3, seed=123, scale=0.4), randn(5, 3, seed=124)])


def generate(w):
    join(w)
    pad(w)
    index(w)
    similarity(w)
