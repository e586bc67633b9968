# SPDX-License-Identifier: Apache-2.0
"""Max, average and adaptive average pooling (include/gkd/ops/pool.hpp)."""
import torch.nn.functional as F

from golden._util import randn


def generate(w):
    w.case("max_k2", lambda x: F.max_pool2d(x, 2), [randn(1, 2, 6, 5, seed=1)])
    w.case("max_k3_s2_p1_ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [randn(1, 2, 7, 5, seed=2)])
    w.case("max_dilated", lambda x: F.max_pool2d(x, (3, 2), (2, 1), (1, 0), dilation=(2, 1)),
           [randn(1, 2, 7, 5, seed=3)])
    w.case("max_3d_ceil", lambda x: F.max_pool2d(x, 2, 2, 0, ceil_mode=True), [randn(2, 5, 5, seed=4)])
    w.case("avg_k2", lambda x: F.avg_pool2d(x, 2), [randn(1, 2, 5, 6, seed=5)])
    w.case("avg_k3_s2_p1_ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [randn(1, 2, 5, 6, seed=6)])
    w.case("avg_k3_s2_p1_ceil_nopad", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
           [randn(1, 2, 5, 6, seed=6)])
    w.case("avg_rect", lambda x: F.avg_pool2d(x, (3, 2), (1, 2), (1, 1)), [randn(1, 2, 5, 5, seed=7)])
    w.case("avg_3d_nopad", lambda x: F.avg_pool2d(x, 2, 1, 1, count_include_pad=False), [randn(2, 3, 4, seed=8)])
    w.case("adaptive_down", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [randn(1, 1, 7, 5, seed=9)])
    w.case("adaptive_up", lambda x: F.adaptive_avg_pool2d(x, (5, 7)), [randn(1, 2, 3, 4, seed=10)])
    w.case("adaptive_global", lambda x: F.adaptive_avg_pool2d(x, 1), [randn(2, 3, 4, 3, seed=11)])
