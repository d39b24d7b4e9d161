"""Negative log-likelihood in bits per sub-pixel ("bits/dim"), the NLL column of Table 1."""

from __future__ import annotations

import math
import numbers

import torch


def bits_per_dim(nll_nats: torch.Tensor, num_subpixels: int) -> torch.Tensor:
    """nll_nats: [B] -log p(hr | lr) in nats per image -> [B] bits per sub-pixel, float64.

    bits/dim = nll / (num_subpixels · ln 2), with num_subpixels = C·H·W of the high-resolution image
    (3072 for 32x32 RGB, 1024 for grey).
    """
    where = "metrics.bits_per_dim"
    if not isinstance(nll_nats, torch.Tensor):
        raise TypeError(f"{where}: nll_nats must be a torch.Tensor [B] of nats, got {type(nll_nats).__name__}")
    if nll_nats.dim() != 1:
        raise ValueError(f"{where}: nll_nats must have shape [B], got shape {tuple(nll_nats.shape)}")
    if not nll_nats.is_floating_point():
        raise TypeError(f"{where}: nll_nats must be a float tensor of nats, got dtype {nll_nats.dtype}")
    if isinstance(num_subpixels, bool) or not isinstance(num_subpixels, numbers.Integral) or num_subpixels < 1:
        raise ValueError(f"{where}: num_subpixels must be a positive integer (C*H*W), got {num_subpixels!r}")
    return nll_nats.to(torch.float64) / (int(num_subpixels) * math.log(2.0))
