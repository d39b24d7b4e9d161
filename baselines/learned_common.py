"""Small pieces shared by the learned baselines (ResNet-L2, GAN, per-pixel CE): input checks and per-image
PSNR for validation logs (eval-mode switching: `sr_models.modes.eval_mode`).
"""

from __future__ import annotations

import torch


def check_hr_size(hr_size: int, who: str) -> int:
    """`hr_size` (the output side; 32 for the paper's 8 -> 32 task) as an int, or a clear error: the 4x
    up-sampling networks need a multiple of 4 that is at least 8."""
    if isinstance(hr_size, bool) or int(hr_size) != hr_size or hr_size < 8 or hr_size % 4:
        raise ValueError(f"{who}: hr_size must be a multiple of 4 and >= 8 (32 for 8x8 -> 32x32), got {hr_size!r}")
    return int(hr_size)


def check_lr(lr: torch.Tensor, channels: int, who: str, size: int = 8) -> None:
    """Raise a clear error unless `lr` is float [B, channels, size, size] (size 8 for the paper's task)."""
    if not isinstance(lr, torch.Tensor):
        raise TypeError(f"{who}: lr must be a torch.Tensor [B, {channels}, {size}, {size}], got {type(lr).__name__}")
    if lr.dim() != 4 or lr.shape[1] != channels or tuple(lr.shape[-2:]) != (size, size):
        raise ValueError(f"{who}: lr must have shape [B, {channels}, {size}, {size}], got {tuple(lr.shape)}")
    if not lr.is_floating_point():
        raise TypeError(f"{who}: lr must be float in [0, 1], got dtype {lr.dtype} (divide uint8 images by 255)")


def check_hr_uint8(hr: torch.Tensor, channels: int, who: str, size: int = 32) -> None:
    """Raise a clear error unless `hr` is uint8 [B, channels, size, size] (the 256-way targets)."""
    if not isinstance(hr, torch.Tensor) or hr.dtype != torch.uint8:
        got = hr.dtype if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise TypeError(f"{who}: hr must be a uint8 tensor [B, {channels}, {size}, {size}] (levels 0..255), got {got}")
    if hr.dim() != 4 or hr.shape[1] != channels or tuple(hr.shape[-2:]) != (size, size):
        raise ValueError(f"{who}: hr must have shape [B, {channels}, {size}, {size}], got {tuple(hr.shape)}")


def psnr_per_image(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of float [B, C, H, W] images in [0, 1] (peak 1), one value per image -> [B].

    Only for validation logs during training; Table 1 uses `metrics.psnr`.
    """
    mse = (sr.float() - hr.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)
