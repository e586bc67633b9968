# SPDX-License-Identifier: Apache-2.0
"""Bilinear and nearest resizing (include/gkd/ops/upsample.hpp), by size and by scale factor."""
import torch.nn.functional as F

from golden._util import randn


def generate(w):
    def bilinear(name, x, align, size=None, scale=None, seed=0):
        w.case(name, lambda t: F.interpolate(t, size=size, scale_factor=scale, mode="bilinear",
                                             align_corners=align), [x], seed=seed)

    def nearest(name, x, size=None, scale=None):
        w.case(name, lambda t: F.interpolate(t, size=size, scale_factor=scale, mode="nearest"), [x])

    a, b = randn(1, 1, 4, 5, seed=1), randn(1, 2, 3, 3, seed=2)
    bilinear("bilinear_size", a, False, size=(6, 7))
    bilinear("bilinear_size_align", a, True, size=(6, 7))
    bilinear("bilinear_scale2", b, False, scale=2.0)
    bilinear("bilinear_scale2_align", b, True, scale=2.0)
    # PyTorch's float build fuses the source-index arithmetic into FMAs, so its float32 weights can
    # differ from a plain evaluation by one ulp; the output gradient of seed 0 happens to cancel to
    # ~1e-3 of its maximum at one element, which turns that ulp into a 1.5e-5 relative difference.
    bilinear("bilinear_scale_frac", randn(1, 2, 5, 6, seed=3), False, scale=(1.7, 0.6), seed=1)
    bilinear("bilinear_down", randn(1, 2, 6, 5, seed=4), False, size=(3, 2))
    bilinear("bilinear_down_align", randn(1, 2, 6, 5, seed=4), True, size=(3, 1))
    bilinear("bilinear_same_height", randn(1, 1, 4, 5, seed=5), False, size=(4, 7))
    nearest("nearest_size", a, size=(6, 7))
    nearest("nearest_scale2", b, scale=2.0)
    nearest("nearest_scale_frac", randn(1, 2, 4, 6, seed=6), scale=(1.5, 0.75))
    nearest("nearest_down", randn(1, 2, 7, 5, seed=7), size=(3, 2))
