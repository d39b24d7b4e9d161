"""The one resizing kernel of the toolkit.

Every LR input, every bicubic up-sampling and the consistency metric go through these functions, so a
"bicubic" in one place is the same bicubic everywhere: Keys' cubic (a = -0.75, PyTorch's bicubic) with
antialiasing when shrinking (the kernel is stretched by the scale factor, as PIL and MATLAB's `imresize`
do), pixel centres aligned (`align_corners=False`), and the result clamped to [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_image_batch(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [B, C, H, W], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape [B, C, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype} (divide uint8 images by 255)")


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of `x` [B, C, H, W] float in [0, 1] to `size` (int = square), clamped to [0, 1].

    Antialiased when shrinking. Computed in float32 (float64 input stays float64) and returned in the input dtype.
    """
    _check_image_batch(x)
    if isinstance(size, int):
        size = (size, size)
    if tuple(x.shape[-2:]) == tuple(size):
        return x.clamp(0.0, 1.0)
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    out = F.interpolate(work, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0).to(x.dtype)


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Shrink `x` [B, C, H, W] float in [0, 1] by an integer `factor` -> [B, C, H/f, W/f], antialiased bicubic."""
    _check_image_batch(x)
    h, w = x.shape[-2:]
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"downsample: size {h}x{w} is not divisible by factor {factor}")
    return resize(x, (h // factor, w // factor))


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Enlarge `x` [B, C, H, W] float in [0, 1] by an integer `factor` -> [B, C, H*f, W*f], bicubic, clamped."""
    _check_image_batch(x)
    if factor < 1:
        raise ValueError(f"upsample: factor must be a positive integer, got {factor}")
    h, w = x.shape[-2:]
    return resize(x, (h * factor, w * factor))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 levels [.., 0..255] -> float32 in [0, 1]."""
    if x.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got dtype {x.dtype}")
    return x.float().div_(255.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [0, 1] -> uint8 levels, rounded to nearest (values outside [0, 1] are clamped)."""
    return x.clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)
