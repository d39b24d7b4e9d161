"""Small pieces shared by the learned baselines (ResNet-L2, GAN, per-pixel CE): input checks, eval-mode
switching and per-image PSNR for validation logs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def check_lr(lr: torch.Tensor, channels: int, who: str) -> None:
    """Raise a clear error unless `lr` is float [B, channels, 8, 8]."""
    if not isinstance(lr, torch.Tensor):
        raise TypeError(f"{who}: lr must be a torch.Tensor [B, {channels}, 8, 8], got {type(lr).__name__}")
    if lr.dim() != 4 or lr.shape[1] != channels or tuple(lr.shape[-2:]) != (8, 8):
        raise ValueError(f"{who}: lr must have shape [B, {channels}, 8, 8], got {tuple(lr.shape)}")
    if not lr.is_floating_point():
        raise TypeError(f"{who}: lr must be float in [0, 1], got dtype {lr.dtype} (divide uint8 images by 255)")


def check_hr_uint8(hr: torch.Tensor, channels: int, who: str) -> None:
    """Raise a clear error unless `hr` is uint8 [B, channels, 32, 32] (the 256-way targets)."""
    if not isinstance(hr, torch.Tensor) or hr.dtype != torch.uint8:
        got = hr.dtype if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise TypeError(f"{who}: hr must be a uint8 tensor [B, {channels}, 32, 32] (levels 0..255), got {got}")
    if hr.dim() != 4 or hr.shape[1] != channels or tuple(hr.shape[-2:]) != (32, 32):
        raise ValueError(f"{who}: hr must have shape [B, {channels}, 32, 32], got {tuple(hr.shape)}")


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put `module` in eval mode (batch norm uses its running statistics) and restore its mode afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def psnr_per_image(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of float [B, C, H, W] images in [0, 1] (peak 1), one value per image -> [B].

    Only for validation logs during training; Table 1 uses `metrics.psnr`.
    """
    mse = (sr.float() - hr.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)

