"""Consistency (paper Section 5.2): how well an output, shrunk again, matches the low-resolution input.

consistency = mean over channels and LR pixels of (lr - downsample(sr, factor))², in [0, 1] units, with
`sr_data.downsample`, the same kernel that made the LR inputs.

Rounding (default `quantize=True`, the "after uint8 rounding" rule of every metric): `sr` is rounded to uint8
levels before it is shrunk (as its saved prediction file is), and both `lr` and `downsample(sr)` are rounded to
uint8 levels before the difference. Then the ground truth scores exactly 0 against the dataset's own LR image
(which is `to_uint8(downsample(hr))`), and any other output scores at least one level of difference
somewhere, or 0. With `quantize=False` the float values are used as given; the ground truth then scores
the LR quantisation error, at most (0.5/255)² ≈ 3.8e-6 per sub-pixel.
"""

from __future__ import annotations

import torch

from sr_data import downsample, to_float, to_uint8

from .quality import validate_image


def consistency(lr: torch.Tensor, sr: torch.Tensor, factor: int = 4, quantize: bool = True) -> torch.Tensor:
    """Mean squared error between `lr` and `downsample(sr, factor)` per image, float64 [B].

    lr: [B, C, h, w] float in [0, 1]; sr: [B, C, h*factor, w*factor] float in [0, 1]; C = 1 or 3.
    See the module docstring for the rounding (`quantize`).
    """
    where = "metrics.consistency"
    validate_image(lr, "lr", where)
    validate_image(sr, "sr", where)
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"{where}: factor must be a positive integer, got {factor!r}")
    b, c, h, w = lr.shape
    expected = (b, c, h * factor, w * factor)
    if tuple(sr.shape) != expected:
        raise ValueError(
            f"{where}: sr must have shape {expected} for lr of shape {tuple(lr.shape)} and factor {factor},"
            f" got {tuple(sr.shape)}"
        )
    sr = sr.to(lr.device)
    if quantize:
        shrunk = to_uint8(downsample(to_float(to_uint8(sr)), factor)).to(torch.float64) / 255.0
        target = to_uint8(lr).to(torch.float64) / 255.0
    else:
        shrunk = downsample(sr, factor).to(torch.float64)
        target = lr.to(torch.float64)
    return (target - shrunk).square().flatten(1).mean(dim=1)
