"""Metadata of every Table-1 metric: what computes it, which direction is better, how it is printed.

The Table-1 builder reads this instead of hard-coding directions (pyiqa's `lower_better`, BasicSR's
`better:`): `METRICS[name].best_index(row_means)` marks the best row, `.format(v)` prints a mean and
`.summarize(per_image)` turns the per-image values of `metrics.csv` into the table's mean.

`inputs` names the arguments of `function`, in order:
- ("sr", "hr"): output and ground truth, [B, C, 32, 32] float in [0, 1];
- ("lr", "sr"): LR input [B, C, 8, 8] and output, float in [0, 1];
- ("nll_nats", "num_subpixels"): -log p(hr | lr) in nats [B] and C·H·W.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Tuple

from .consistency import consistency
from .likelihood import bits_per_dim
from .quality import ms_ssim, psnr, ssim

#: Identical images have pSNR = inf; Table-1 means count them at this value (the "return 100 if mse == 0"
#: convention of many SR code bases; above the 83.0 dB that two different 32x32 RGB uint8 images can reach).
PSNR_CAP_DB = 100.0


@dataclass(frozen=True)
class MetricSpec:
    name: str  # column name in metrics.csv / table1.csv
    function: Callable
    inputs: Tuple[str, ...]
    higher_better: bool
    fmt: str  # format of a mean in table1.md / .tex
    label: str  # column heading for people
    description: str
    cap: Optional[float] = field(default=None)  # per-image values above it count as `cap` in means

    def format(self, value: float) -> str:
        """A mean as printed in Table 1; NaN (metric not defined for the method) -> empty string."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return self.fmt.format(value)

    def summarize(self, values: Sequence[float]) -> float:
        """Mean of per-image values (inf capped at `cap`). All NaN or empty -> NaN (not defined).

        Some but not all NaN is an error: a metric that failed on a few images must not silently shrink
        the average.
        """
        vals = [float(v) for v in values]
        finite_or_inf = [v for v in vals if not math.isnan(v)]
        if not finite_or_inf:
            return math.nan
        if len(finite_or_inf) != len(vals):
            raise ValueError(
                f"metric {self.name}: {len(vals) - len(finite_or_inf)} of {len(vals)} per-image values are NaN;"
                " expected all or none"
            )
        if self.cap is not None:
            finite_or_inf = [min(v, self.cap) for v in finite_or_inf]
        return sum(finite_or_inf) / len(finite_or_inf)

    def best_index(self, values: Sequence[float]) -> Optional[int]:
        """Index of the best value (NaN ignored; ties -> the first), or None when nothing is defined."""
        best = None
        for i, v in enumerate(values):
            if v is None or math.isnan(float(v)):
                continue
            if best is None or (v > values[best] if self.higher_better else v < values[best]):
                best = i
        return best


METRICS = {
    spec.name: spec
    for spec in [
        MetricSpec(
            "psnr",
            psnr,
            ("sr", "hr"),
            True,
            "{:.2f}",
            "pSNR (dB)",
            "peak signal-to-noise ratio on uint8 RGB/grey levels",
            cap=PSNR_CAP_DB,
        ),
        MetricSpec(
            "ssim",
            ssim,
            ("sr", "hr"),
            True,
            "{:.3f}",
            "SSIM",
            "structural similarity, Gaussian 11x11 window, sigma 1.5, mean over channels",
        ),
        MetricSpec(
            "ms_ssim",
            ms_ssim,
            ("sr", "hr"),
            True,
            "{:.3f}",
            "MS-SSIM",
            "multi-scale SSIM, as many scales as fit the 11-px window (2 at 32x32), weights renormalised",
        ),
        MetricSpec(
            "consistency",
            consistency,
            ("lr", "sr"),
            False,
            "{:.5f}",
            "consistency",
            "MSE between the LR input and the bicubically down-sampled output, [0, 1] units",
        ),
        MetricSpec(
            "nll_bpd",
            bits_per_dim,
            ("nll_nats", "num_subpixels"),
            False,
            "{:.3f}",
            "NLL (bits/dim)",
            "negative log-likelihood of the ground truth in bits per sub-pixel",
        ),
    ]
}

#: Column order of metrics.csv and Table 1 (DESIGN.md "Files the stages write").
TABLE_METRICS = tuple(METRICS)

#: The per-image metrics computed from images alone (output, ground truth, LR input), in table order.
IMAGE_METRICS = tuple(n for n, s in METRICS.items() if set(s.inputs) <= {"sr", "hr", "lr"})


def score_images(sr, hr, lr=None, names: Sequence[str] = IMAGE_METRICS) -> dict:
    """Every metric of `names` on one batch -> {name: Tensor[B]}; sr, hr [B, C, H, W], lr [B, C, H/4, W/4],
    float in [0, 1]. A metric that needs `lr` is left out when `lr` is None."""
    given = {"sr": sr, "hr": hr, "lr": lr}
    out = {}
    for name in names:
        spec = METRICS[name]
        if any(given[k] is None for k in spec.inputs):
            continue
        out[name] = spec.function(*(given[k] for k in spec.inputs))
    return out


def get_metric(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}") from None
