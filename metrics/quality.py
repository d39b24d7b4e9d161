"""Full-reference image quality: pSNR, SSIM and MS-SSIM, one value per image.

Every function takes two batches `a, b` of shape [B, C, H, W], float in [0, 1], C = 1 (grey) or 3 (RGB),
any size with H, W >= 11 for the SSIMs, and returns a float64 tensor [B] (one value per image; averaging is
left to the caller). The steps are always, in this order:

1. validate the inputs (tensor, 4 dimensions, float dtype, equal shapes, C in {1, 3}, finite, values in
   [0, 1] within half a uint8 level);
2. round to uint8 levels with `sr_data.to_uint8` (the same rounding that stores predictions on disk, so a
   metric on a float prediction equals the metric on its saved uint8 file);
3. colour conversion: `color="rgb"` keeps every channel (for C = 1 the grey channel); `color="gray"` maps RGB
   to MATLAB's `rgb2gray` levels, round(0.298936021293775 R + 0.587043074451121 G + 0.114020904255103 B),
   and is the identity for C = 1;
4. float64 arithmetic on the levels 0..255 with data range L = 255 (the same numbers as [0, 1] images with
   data range 1).

SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances,
the statistics filtered over the 'valid' region only (no padding) and the SSIM map averaged over it. This is
scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)` (which filters the padded image and then crops (11 - 1) / 2 = 5 pixels from each side before
averaging, i.e. keeps exactly the valid region) and Wang's MATLAB `ssim.m` without its automatic
down-scaling. RGB: the mean over channels of the per-channel SSIM (as scikit-image with `channel_axis`).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from sr_data import to_uint8

#: MATLAB `rgb2gray` weights (R, G, B).
GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Wang, Simoncelli, Bovik (2003) scale weights, finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Values may leave [0, 1] by less than half a uint8 level (they round into 0..255 anyway).
RANGE_TOLERANCE = 0.5 / 255.0
_LEVELS = 255.0
_COLORS = ("rgb", "gray")
# Images per batch chunk: about this many sub-pixels per chunk, so one chunk's float64 statistics (4 maps,
# ~4 MB) and temporaries stay in the CPU cache between the steps (larger chunks measured slower).
_CHUNK_SUBPIXELS = 1 << 17
# Outputs per banded-matrix block in the Gaussian filtering (22: a 32-pixel side is one block of 32 inputs).
_BAND_BLOCK = 22


# ----------------------------------------------------------------------------------------- input checks


def validate_image(x, name: str, where: str) -> None:
    """Raise a clear error unless `x` is a float tensor [B, C, H, W], C in {1, 3}, finite, in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor [B, C, H, W] float in [0, 1], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{where}: {name} must have shape [B, C, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"{where}: {name} must be a float tensor in [0, 1], got dtype {x.dtype} "
            "(convert uint8 with sr_data.to_float)"
        )
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"{where}: {name} must have 1 (grey) or 3 (RGB) channels, got C = {x.shape[1]} in shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{where}: {name} is empty (shape {tuple(x.shape)})")
    lo, hi = (float(v) for v in torch.aminmax(x))  # NaN propagates into min/max, inf shows as an extreme
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{where}: {name} contains NaN or infinite values")
    if lo < -RANGE_TOLERANCE or hi > 1.0 + RANGE_TOLERANCE:
        raise ValueError(
            f"{where}: {name} has values outside [0, 1] (min {lo:.6g}, max {hi:.6g}); expected float images in [0, 1]"
            f" (uint8 images: divide by 255)"
        )


def validate_pair(a, b, where: str, min_side: int = 1) -> None:
    """Check both images (see `validate_image`), that their shapes match and that H, W >= `min_side`."""
    validate_image(a, "a", where)
    validate_image(b, "b", where)
    if a.shape != b.shape:
        raise ValueError(f"{where}: a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    h, w = a.shape[-2:]
    if min(h, w) < min_side:
        raise ValueError(f"{where}: images are {h}x{w}; this metric needs both sides >= {min_side}")


def _check_color(color: str, where: str) -> None:
    if color not in _COLORS:
        raise ValueError(f"{where}: color must be one of {_COLORS}, got {color!r}")


# ----------------------------------------------------------------------------------------- conversion


def to_levels(x: torch.Tensor, color: str = "rgb") -> torch.Tensor:
    """[B, C, H, W] float in [0, 1] -> float64 uint8 levels 0..255, [B, C, H, W] ("rgb") or [B, 1, H, W] ("gray").

    Rounds with `sr_data.to_uint8` first; "gray" on RGB applies MATLAB's `rgb2gray` to the uint8 levels and
    rounds half away from zero as MATLAB does (the levels are non-negative, so floor(v + 0.5)).
    """
    _check_color(color, "metrics.to_levels")
    levels = to_uint8(x).to(torch.float64)
    if color == "gray" and levels.shape[1] == 3:
        r, g, b = levels.unbind(dim=1)
        gray = GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b
        levels = torch.floor(gray + 0.5).unsqueeze(1)
    return levels


def _chunks(batch: int, subpixels_per_image: int):
    step = max(1, _CHUNK_SUBPIXELS // max(1, subpixels_per_image))
    for start in range(0, batch, step):
        yield slice(start, min(batch, start + step))


def _channel_levels(x: torch.Tensor, color: str) -> torch.Tensor:
    """Levels of the channels the metrics compare: uint8 [B, C, H, W], or float64 [B, 1, H, W] for "gray" on RGB.

    Both hold exact integers 0..255 (the same numbers as `to_levels`); uint8 is kept where possible because
    copying it straight into the float64 buffers is cheaper than a float64 intermediate.
    """
    if color == "gray" and x.shape[1] == 3:
        return to_levels(x, color)
    return to_uint8(x)


# ----------------------------------------------------------------------------------------- pSNR


def psnr(a: torch.Tensor, b: torch.Tensor, color: str = "rgb", max_db: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: 10 log10(255² / MSE), MSE over channels and pixels.

    a, b: [B, C, H, W] float in [0, 1] (C = 1 or 3). Returns float64 [B]. Identical images (MSE = 0) give
    `inf`; pass `max_db` (e.g. 100.0) to cap every value at that many dB instead. Equals scikit-image's
    `peak_signal_noise_ratio(a_uint8, b_uint8, data_range=255)` per image.
    """
    where = "metrics.psnr"
    validate_pair(a, b, where)
    _check_color(color, where)
    if max_db is not None and not max_db > 0:
        raise ValueError(f"{where}: max_db must be a positive number of dB or None, got {max_db!r}")
    values = torch.empty(a.shape[0], dtype=torch.float64, device=a.device)
    for part in _chunks(a.shape[0], a[0].numel()):
        x, y = _channel_levels(a[part], color), _channel_levels(b[part], color)
        # Level differences and their squares (<= 255² = 65025) are exact in float32, and the float64 sum of
        # these integers is exact (below 2^53), so the MSE is exact whatever the summation order.
        diff = x.to(torch.float32) - y.to(torch.float32)
        mse = diff.square_().flatten(1).sum(dim=1, dtype=torch.float64) / diff[0].numel()
        # mse == 0 -> log10(inf) = inf, which is the documented value for identical images.
        values[part] = 10.0 * torch.log10(_LEVELS**2 / mse)
    if max_db is not None:
        values = values.clamp(max=float(max_db))
    return values


# ----------------------------------------------------------------------------------------- SSIM


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian, 11 taps, sigma 1.5, float64 (its outer product is MATLAB's fspecial window)."""
    r = (SSIM_WINDOW - 1) // 2
    t = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    g = torch.exp(-(t * t) / (2.0 * SSIM_SIGMA**2))
    return g / g.sum()


@functools.lru_cache(maxsize=32)
def _band(outputs: int, device: torch.device) -> torch.Tensor:
    """[outputs, outputs + 10] float64 matrix G with (G @ v)[i] = sum_k g[k] v[i + k]: 'valid' Gaussian filtering.

    For many small images a banded matrix product is much faster than conv2d or shifted sums in float64
    (it runs in BLAS at close to the core's peak).
    """
    g = _gaussian_taps(device)
    i = torch.arange(outputs, device=device).view(-1, 1)
    j = torch.arange(outputs + SSIM_WINDOW - 1, device=device).view(1, -1)
    k = j - i
    inside = (k >= 0) & (k < SSIM_WINDOW)
    return torch.where(inside, g[k.clamp(0, SSIM_WINDOW - 1)], torch.zeros((), dtype=torch.float64, device=device))


def _filter_valid(s: torch.Tensor) -> torch.Tensor:
    """Separable 11x11 Gaussian filtering over the 'valid' region of many planes at once.

    s: [H, M, W] float64, contiguous, row-major over planes ("row h of every plane, then row h + 1"), so each
    pass is one large BLAS product with all planes in a matrix dimension: the vertical pass is G_h @ s viewed as
    [H, M * W], the horizontal pass s' viewed as [(H - 10) * M, W] @ G_w^T. Returns [H - 10, M, W - 10] float64.
    Sides longer than `_BAND_BLOCK` + 10 are done in blocks of `_BAND_BLOCK` outputs, so a product never
    multiplies more than `_BAND_BLOCK` + 10 inputs per output (most of a full band matrix would be zeros).
    """
    h, m, w = s.shape
    ho, wo = h - SSIM_WINDOW + 1, w - SSIM_WINDOW + 1
    rows = s.view(h, m * w)
    vert = s.new_empty(ho, m, w)
    vert_rows = vert.view(ho, m * w)
    for o in range(0, ho, _BAND_BLOCK):
        b = min(_BAND_BLOCK, ho - o)
        torch.mm(_band(b, s.device), rows[o : o + b + SSIM_WINDOW - 1], out=vert_rows[o : o + b])
    out = s.new_empty(ho, m, wo)
    cols, out_cols = vert.view(ho * m, w), out.view(ho * m, wo)
    for o in range(0, wo, _BAND_BLOCK):
        b = min(_BAND_BLOCK, wo - o)
        # Column slices are strided views with a row stride, which BLAS takes as they are (no copies).
        torch.mm(cols[:, o : o + b + SSIM_WINDOW - 1], _band(b, s.device).t(), out=out_cols[:, o : o + b])
    return out


def _ssim_means(x: torch.Tensor, y: torch.Tensor, want_cs: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean SSIM map and (if `want_cs`) mean contrast-structure map of each plane over the valid region.

    x, y: [N, H, W] levels 0..255 of any real dtype (uint8 or float64), H, W >= 11. Returns float64 [N] and
    float64 [N] or None. All arithmetic is float64.
    """
    n, h, w = x.shape
    # The four statistics the SSIM needs (the variances only enter as var_x + var_y, so x² + y² is filtered
    # once), stacked row-major over planes so both filtering passes are single BLAS products.
    stats = torch.empty(h, 4, n, w, dtype=torch.float64, device=x.device)
    sx, sy, sq, sxy = stats.unbind(1)
    sx.copy_(x.transpose(0, 1))
    sy.copy_(y.transpose(0, 1))
    torch.mul(sx, sx, out=sq).addcmul_(sy, sy)
    torch.mul(sx, sy, out=sxy)
    filtered = _filter_valid(stats.view(h, 4 * n, w)).view(h - SSIM_WINDOW + 1, 4, n, w - SSIM_WINDOW + 1)
    mu_x, mu_y, e_sq, e_xy = filtered.unbind(1)  # each [H - 10, N, W - 10]
    c1 = (SSIM_K1 * _LEVELS) ** 2
    c2 = (SSIM_K2 * _LEVELS) ** 2
    # SSIM map = (2 mu_x mu_y + c1) / (mu_x² + mu_y² + c1)  *  (2 cov_xy + c2) / (var_x + var_y + c2),
    # computed in place to keep the temporaries few (they all stay in cache for one chunk).
    mu_xy = mu_x * mu_y
    mu_sq = (mu_x * mu_x).addcmul_(mu_y, mu_y)
    cs = (e_xy - mu_xy).mul_(2.0).add_(c2).div_((e_sq - mu_sq).add_(c2))
    pixels = mu_xy.shape[0] * mu_xy.shape[2]
    cs_mean = cs.sum(dim=(0, 2)).div_(pixels) if want_cs else None
    ssim_map = mu_xy.mul_(2.0).add_(c1).div_(mu_sq.add_(c1)).mul_(cs)
    return ssim_map.sum(dim=(0, 2)).div_(pixels), cs_mean


def ssim(a: torch.Tensor, b: torch.Tensor, color: str = "rgb") -> torch.Tensor:
    """Structural similarity per image (Gaussian 11x11, sigma 1.5, 'valid' region), float64 [B].

    a, b: [B, C, H, W] float in [0, 1], C = 1 or 3, H, W >= 11. RGB with color="rgb": mean of the three
    per-channel SSIMs. See the module docstring for the exact definition; `color="gray"` reproduces MATLAB
    `ssim.m` on `rgb2gray` images.
    """
    where = "metrics.ssim"
    validate_pair(a, b, where, min_side=SSIM_WINDOW)
    _check_color(color, where)
    out = torch.empty(a.shape[0], dtype=torch.float64, device=a.device)
    for part in _chunks(a.shape[0], a[0].numel()):
        x, y = _channel_levels(a[part], color), _channel_levels(b[part], color)
        bsz, ch, h, w = x.shape
        per_plane, _ = _ssim_means(x.reshape(bsz * ch, h, w), y.reshape(bsz * ch, h, w))
        out[part] = per_plane.view(bsz, ch).mean(dim=1)
    return out


# ----------------------------------------------------------------------------------------- MS-SSIM


def ms_ssim_scales(height: int, width: int, max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Number of MS-SSIM scales used for an image of this size: as many as fit, at most `max_scales`.

    Scale 1 is the image; each next scale halves the sides (rounding up). A scale fits when both its sides
    are >= the 11-pixel window, so a side s holds M scales when s >= 10 * 2**(M-1) + 1: 2 scales from 21 px,
    3 from 41, 4 from 81, 5 (the standard) from 161 (pytorch-msssim's "> 160"). 32x32 -> 2 scales (32, 16).
    """
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"MS-SSIM needs both sides >= {SSIM_WINDOW} pixels, got {height}x{width}")
    scales, h, w = 1, height, width
    while scales < max_scales:
        h, w = (h + 1) // 2, (w + 1) // 2
        if min(h, w) < SSIM_WINDOW:
            break
        scales += 1
    return scales


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2x2 mean down-sampling starting at the top-left pixel, as `msssim.m` (imfilter 'symmetric' + 1:2:end).

    An odd side repeats its last row/column (MATLAB's symmetric padding by one), so the result has ceil(H/2) rows.
    """
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(x, kernel_size=2, stride=2)


def ms_ssim(
    a: torch.Tensor, b: torch.Tensor, color: str = "rgb", weights: Sequence[float] = MS_SSIM_WEIGHTS
) -> torch.Tensor:
    """Multi-scale SSIM per image, float64 [B].

    a, b: [B, C, H, W] float in [0, 1], C = 1 or 3, H, W >= 11. With M scales (see `ms_ssim_scales`):

        MS-SSIM = prod_{j < M} cs_j ** w_j  *  ssim_M ** w_M

    where cs_j is the mean contrast-structure map and ssim_M the mean SSIM map (l * cs) over the valid region
    at scale j (same window as `ssim`), scale j + 1 is the 2x2 block mean of scale j (blocks start at the
    top-left pixel; an odd side repeats its last row/column), and w are the first M of `weights`,
    renormalised to sum to 1 when M < len(weights) and used as given otherwise.

    - Images with both sides >= 161 px get M = 5 and the standard weights as given (they sum to 1.0001):
      Wang's MATLAB `msssim.m`. The paper's 32x32 images get M = 2 (32 and 16 px; an 8 px scale cannot hold the
      11-px window) with weights (0.0448, 0.2856) / 0.3304 = (0.1356, 0.8644).
    - A negative mean cs or SSIM (anti-correlated images) is clamped to 0 before the fractional power (as
      pytorch-msssim does), so the value is 0 rather than undefined.
    - RGB with color="rgb": the mean over channels of the per-channel MS-SSIM.
    """
    where = "metrics.ms_ssim"
    validate_pair(a, b, where, min_side=SSIM_WINDOW)
    _check_color(color, where)
    weights = [float(v) for v in weights]
    if not weights or any(v < 0 for v in weights) or sum(weights) <= 0:
        raise ValueError(f"{where}: weights must be non-negative with a positive sum, got {weights}")
    m = ms_ssim_scales(a.shape[-2], a.shape[-1], max_scales=len(weights))
    w = torch.tensor(weights[:m], dtype=torch.float64, device=a.device)
    if m < len(weights):
        if float(w.sum()) <= 0:
            raise ValueError(
                f"{where}: the weights of the {m} scales that fit {tuple(a.shape[-2:])} images sum to 0: {weights[:m]}"
            )
        w = w / w.sum()
    out = torch.empty(a.shape[0], dtype=torch.float64, device=a.device)
    for part in _chunks(a.shape[0], a[0].numel()):
        x, y = _channel_levels(a[part], color), _channel_levels(b[part], color)
        bsz, ch, h, wd = x.shape
        x, y = x.reshape(bsz * ch, h, wd), y.reshape(bsz * ch, h, wd)
        terms = []
        for j in range(m):
            last = j == m - 1
            ssim_mean, cs_mean = _ssim_means(x, y, want_cs=not last)
            terms.append((ssim_mean if last else cs_mean).clamp(min=0.0))
            if not last:
                x, y = _halve(x.to(torch.float64)), _halve(y.to(torch.float64))
        per_channel = torch.prod(torch.stack(terms, dim=1) ** w, dim=1).view(bsz, ch)
        out[part] = per_channel.mean(dim=1)
    return out


__all__ = [
    "psnr",
    "ssim",
    "ms_ssim",
    "ms_ssim_scales",
    "to_levels",
    "validate_image",
    "validate_pair",
    "GRAY_WEIGHTS",
    "MS_SSIM_WEIGHTS",
    "RANGE_TOLERANCE",
]
