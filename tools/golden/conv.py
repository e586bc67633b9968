# SPDX-License-Identifier: Apache-2.0
"""2-D convolution and transposed convolution (include/gkd/ops/conv.hpp)."""
import torch.nn.functional as F

from golden._util import randn


def generate(w):
    # conv2d: name, x shape, w shape, bias?, stride, padding, dilation, groups
    convs = [
        ("conv_basic", (2, 2, 4, 4), (2, 2, 3, 3), True, 1, 1, 1, 1),
        ("conv_strided", (1, 2, 7, 5), (3, 2, 3, 2), False, 2, (1, 2), (2, 1), 1),
        ("conv_groups", (1, 4, 4, 4), (4, 2, 3, 3), True, (1, 2), 1, 1, 2),
        ("conv_depthwise", (2, 2, 4, 5), (4, 1, 3, 3), True, 2, 1, 1, 2),
        ("conv_depthwise_dilated", (1, 3, 5, 6), (3, 1, 3, 2), False, 1, (2, 1), (2, 3), 3),
        ("conv_pointwise", (1, 4, 3, 3), (3, 4, 1, 1), True, 1, 0, 1, 1),
        ("conv_pointwise_groups", (1, 4, 2, 3), (4, 2, 1, 1), False, 1, 0, 1, 2),
        ("conv_1x1_strided", (1, 3, 4, 4), (2, 3, 1, 1), True, 2, 0, 1, 1),
    ]
    for i, (name, xs, ws, bias, stride, padding, dilation, groups) in enumerate(convs):
        inputs = [randn(*xs, seed=10 * i + 1), randn(*ws, seed=10 * i + 2, scale=0.5)]
        if bias:
            inputs.append(randn(ws[0], seed=10 * i + 3))
        w.case(name, lambda x, k, b=None, s=stride, p=padding, d=dilation, g=groups:
               F.conv2d(x, k, b, stride=s, padding=p, dilation=d, groups=g), inputs, seed=i)

    # conv_transpose2d: name, x shape, w shape, bias?, stride, padding, output_padding, groups, dilation
    transposes = [
        ("convt_basic", (2, 2, 2, 3), (2, 2, 3, 3), True, 2, 1, 1, 1, 1),
        ("convt_groups_dilated", (1, 4, 3, 3), (4, 2, 3, 2), False, (2, 1), (1, 0), (1, 0), 2, (2, 1)),
        ("convt_depthwise", (1, 6, 3, 3), (6, 1, 3, 3), True, 2, 1, 0, 3, 1),
        ("convt_pointwise", (1, 4, 3, 3), (4, 3, 1, 1), True, 1, 0, 0, 1, 1),
        ("convt_outpad_dilation", (1, 2, 3, 3), (2, 2, 2, 3), True, 1, 0, (1, 1), 1, 2),
        ("convt_up2", (2, 3, 2, 2), (3, 2, 2, 2), True, 2, 0, 0, 1, 1),
    ]
    for i, (name, xs, ws, bias, stride, padding, out_pad, groups, dilation) in enumerate(transposes):
        inputs = [randn(*xs, seed=100 + 10 * i + 1), randn(*ws, seed=100 + 10 * i + 2, scale=0.5)]
        if bias:
            inputs.append(randn(ws[1] * groups, seed=100 + 10 * i + 3))
        w.case(name, lambda x, k, b=None, s=stride, p=padding, o=out_pad, g=groups, d=dilation:
               F.conv_transpose2d(x, k, b, stride=s, padding=p, output_padding=o, groups=g, dilation=d),
               inputs, seed=100 + i)
