"""Metrics of Table 1: pSNR, SSIM, MS-SSIM, consistency (per image) and NLL in bits/dim;
the machine observer's cross-validated 2AFC fool rate.

Public names (DESIGN.md): `psnr`, `ssim`, `ms_ssim`, `consistency`, `bits_per_dim`, `machine_fool_rate`; their metadata
(direction, format) in `METRICS`.
"""

from .consistency import consistency
from .likelihood import bits_per_dim
from .observer import OBSERVER_DEFAULTS, Observer, machine_fool_rate
from .quality import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_scales, psnr, ssim, to_levels
from .registry import IMAGE_METRICS, METRICS, PSNR_CAP_DB, TABLE_METRICS, MetricSpec, get_metric, score_images

__all__ = [
    "psnr",
    "ssim",
    "ms_ssim",
    "ms_ssim_scales",
    "consistency",
    "bits_per_dim",
    "machine_fool_rate",
    "Observer",
    "OBSERVER_DEFAULTS",
    "to_levels",
    "MS_SSIM_WEIGHTS",
    "METRICS",
    "TABLE_METRICS",
    "IMAGE_METRICS",
    "score_images",
    "PSNR_CAP_DB",
    "MetricSpec",
    "get_metric",
]
