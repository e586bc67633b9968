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
    x = randn(1, 2, 4, 5, seed=111)
    w.case("pad_zero", lambda t: F.pad(t, (1, 2, 2, 1)), [x])
    w.case("pad_value", lambda t: F.pad(t, (0, 3), value=-1.5), [randn(3, 4, seed=112)])
    w.case("pad_crop", lambda t: F.pad(t, (-1, 2, 1, -2)), [x])
    w.case("pad_reflect", lambda t: F.pad(t, (3, 1, 2, 3), mode="reflect"), [x])
    w.case("pad_reflect_1d", lambda t: F.pad(t, (2, 4), mode="reflect"), [randn(2, 3, 5, seed=113)])
    w.case("pad_reflect_3d", lambda t: F.pad(t, (1, 2, 2, 1, 1, 1), mode="reflect"), [randn(1, 1, 3, 4, 3, seed=114)])
    w.case("pad_replicate", lambda t: F.pad(t, (2, 3, 1, 2), mode="replicate"), [x])


def generate(w):
    join(w)
    pad(w)
