# SPDX-License-Identifier: Apache-2.0
"""Seeded float64 input helpers shared by the golden modules."""
import torch


def randn(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def rand(*shape, seed=0, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)


def away_from_zero(t, margin=0.1):
    """Moves values away from 0 (kinks of relu/abs) keeping their sign."""
    return torch.where(t >= 0, t + margin, t - margin)
