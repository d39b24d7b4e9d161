"""pSNR / SSIM / MS-SSIM / consistency / bits-per-dim against scikit-image, an independent NumPy MS-SSIM and
hand computations; the input checks; the metric registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import metrics
import sr_data

# ----------------------------------------------------------------------------------------- real images


def _photo(name: str) -> torch.Tensor:
    """A scikit-image photograph as [1, C, H, W] float in [0, 1]."""
    arr = getattr(skdata, name)()
    t = torch.from_numpy(arr).float().div(255.0)
    return (t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)).unsqueeze(0)


def _pairs(name: str, size: tuple[int, int], n: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n (ground truth, distorted) crops of a photo resized to `size`, on uint8 levels.

    Distortions: bicubic 4x reconstruction + noise (a super-resolution output) and a neighbouring crop.
    """
    g = torch.Generator().manual_seed(seed)
    img = _photo(name)
    _, _, h, w = img.shape
    hr, sr = [], []
    for i in range(n):
        side = int(torch.randint(60, 200, (1,), generator=g))
        top = int(torch.randint(0, h - side - 8, (1,), generator=g))
        left = int(torch.randint(0, w - side - 8, (1,), generator=g))
        crop = sr_data.resize(img[:, :, top : top + side, left : left + side], size)
        if i % 2 == 0:
            small = sr_data.resize(crop, (max(1, size[0] // 4), max(1, size[1] // 4)))
            out = sr_data.resize(small, size) + 0.03 * torch.randn(crop.shape, generator=g)
        else:
            out = sr_data.resize(img[:, :, top + 6 : top + side + 6, left + 4 : left + side + 4], size)
        hr.append(crop)
        sr.append(out.clamp(0, 1))
    q = lambda x: sr_data.to_float(sr_data.to_uint8(torch.cat(x)))  # noqa: E731
    return q(hr), q(sr)


def _np_images(x: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] float -> uint8 [B, H, W, C]."""
    return sr_data.to_uint8(x).permute(0, 2, 3, 1).numpy()


CASES = [
    ("astronaut", (32, 32)),
    ("coffee", (32, 32)),
    ("camera", (32, 32)),
    ("chelsea", (48, 40)),
    ("moon", (64, 64)),
    ("rocket", (77, 100)),
]


@pytest.mark.parametrize("name,size", CASES, ids=[f"{n}-{s[0]}x{s[1]}" for n, s in CASES])
def test_psnr_ssim_equal_scikit_image_on_photos(name, size):
    hr, sr = _pairs(name, size)
    got_p = metrics.psnr(sr, hr)
    got_s = metrics.ssim(sr, hr)
    assert got_p.dtype == torch.float64 and got_p.shape == (hr.shape[0],)
    a, b = _np_images(sr), _np_images(hr)
    channel_axis = -1 if hr.shape[1] == 3 else None
    for i in range(hr.shape[0]):
        x, y = (a[i], b[i]) if channel_axis is not None else (a[i, ..., 0], b[i, ..., 0])
        ref_p = peak_signal_noise_ratio(y, x, data_range=255)
        ref_s = structural_similarity(
            x / 255.0,
            y / 255.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=channel_axis,
        )
        assert abs(float(got_p[i]) - ref_p) < 1e-4, (name, i, float(got_p[i]), ref_p)
        assert abs(float(got_s[i]) - ref_s) < 1e-4, (name, i, float(got_s[i]), ref_s)
    # the pairs are not identical and mostly similar, so the comparison above is not vacuous
    assert (got_s < 0.99).all() and (got_s > 0.3).sum() >= 2


def test_gray_is_matlab_rgb2gray_on_uint8_levels():
    hr, sr = _pairs("coffee", (32, 32), n=2)

    def gray(x):  # noqa: E306
        v = _np_images(x).astype(np.float64)
        return np.floor(v @ np.array(metrics.quality.GRAY_WEIGHTS) + 0.5)

    ga, gb = gray(sr), gray(hr)
    assert np.array_equal(metrics.to_levels(sr, "gray")[:, 0].numpy(), ga)
    for i in range(2):
        ref_s = structural_similarity(
            ga[i] / 255, gb[i] / 255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1
        )
        assert abs(float(metrics.ssim(sr, hr, color="gray")[i]) - ref_s) < 1e-4
        assert (
            abs(float(metrics.psnr(sr, hr, color="gray")[i]) - peak_signal_noise_ratio(gb[i], ga[i], data_range=255))
            < 1e-4
        )
    # grey input: "gray" is the identity
    g1 = hr[:, :1]
    assert torch.equal(metrics.ssim(sr[:, :1], g1, color="gray"), metrics.ssim(sr[:, :1], g1, color="rgb"))


def test_psnr_by_hand_and_rounding_first():
    a = torch.zeros(1, 3, 32, 32)
    b = a.clone()
    b[0, 1, 5, 7] = 10 / 255
    # MSE = 10² / 3072 levels²
    assert float(metrics.psnr(a, b)[0]) == pytest.approx(10 * math.log10(255**2 * 3072 / 100), abs=1e-9)
    # values are rounded to uint8 levels first: a shift of 0.3 levels changes nothing
    c = sr_data.to_float(torch.randint(0, 250, (2, 3, 16, 16), dtype=torch.uint8))
    assert torch.isinf(metrics.psnr(c, c + 0.3 / 255)).all()
    assert torch.equal(metrics.ssim(c, c + 0.3 / 255), torch.ones(2, dtype=torch.float64))


def test_ground_truth_against_itself():
    hr, _ = _pairs("astronaut", (32, 32), n=3)
    assert torch.isinf(metrics.psnr(hr, hr)).all()
    assert torch.equal(metrics.psnr(hr, hr, max_db=100.0), torch.full((3,), 100.0, dtype=torch.float64))
    assert torch.allclose(metrics.ssim(hr, hr), torch.ones(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(metrics.ms_ssim(hr, hr), torch.ones(3, dtype=torch.float64), atol=1e-12)


# ----------------------------------------------------------------------------------------- MS-SSIM reference


def _np_ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean cs, mean ssim) over the valid region of one grey image pair of levels (float64)."""
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()

    def filt(z):
        return np.einsum("ijkl,kl->ij", sliding_window_view(z, (11, 11)), win)

    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    cs = (2 * cxy + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    return cs.mean(), (lum * cs).mean()


def _np_halve(z: np.ndarray) -> np.ndarray:
    """MATLAB imfilter(z, ones(2)/4, 'symmetric', 'same') followed by z(1:2:end, 1:2:end)."""
    z = np.pad(z, ((0, 1), (0, 1)), mode="symmetric")
    f = (z[:-1, :-1] + z[1:, :-1] + z[:-1, 1:] + z[1:, 1:]) / 4
    return f[::2, ::2]


def _np_ms_ssim(x: np.ndarray, y: np.ndarray, scales: int) -> float:
    w = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])[:scales]
    if scales < 5:
        w = w / w.sum()
    value = 1.0
    for j in range(scales):
        cs, s = _np_ssim_terms(x, y)
        value *= (s if j == scales - 1 else cs) ** w[j]
        x, y = _np_halve(x), _np_halve(y)
    return value


@pytest.mark.parametrize(
    "name,size,scales",
    [
        ("astronaut", (32, 32), 2),
        ("camera", (32, 32), 2),
        ("chelsea", (45, 37), 2),
        ("coffee", (70, 90), 3),
        ("rocket", (180, 190), 5),
    ],
)
def test_ms_ssim_equals_numpy_reference(name, size, scales):
    hr, sr = _pairs(name, size, n=2)
    assert metrics.ms_ssim_scales(*size) == scales
    got = metrics.ms_ssim(sr, hr)
    a, b = metrics.to_levels(sr).numpy(), metrics.to_levels(hr).numpy()
    for i in range(2):
        ref = np.mean([_np_ms_ssim(a[i, c], b[i, c], scales) for c in range(a.shape[1])])
        assert abs(float(got[i]) - ref) < 1e-6, (name, i, float(got[i]), ref)
    assert (got > 0.1).all() and (got < 0.99).all()


def test_ms_ssim_scale_rule():
    assert [metrics.ms_ssim_scales(s, s) for s in (11, 20, 21, 32, 40, 41, 64, 80, 81, 160, 161, 512)] == [
        1,
        1,
        2,
        2,
        2,
        3,
        3,
        3,
        4,
        4,
        5,
        5,
    ]
    assert metrics.ms_ssim_scales(384, 512) == 5 and metrics.ms_ssim_scales(32, 300) == 2
    with pytest.raises(ValueError, match="11"):
        metrics.ms_ssim_scales(10, 64)


def test_ms_ssim_anticorrelated_is_zero_not_nan():
    a = sr_data.to_float(
        torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    )
    v = metrics.ms_ssim(a, 1.0 - a)
    assert torch.equal(v, torch.zeros(2, dtype=torch.float64))


# ----------------------------------------------------------------------------------------- consistency


def test_consistency_ground_truth_is_zero():
    hr, sr = _pairs("astronaut", (32, 32), n=3)
    lr_float = sr_data.downsample(hr, 4)
    lr_uint8 = sr_data.to_float(sr_data.to_uint8(lr_float))  # how the datasets store LR images
    zeros = torch.zeros(3, dtype=torch.float64)
    assert torch.equal(metrics.consistency(lr_float, hr), zeros)
    assert torch.equal(metrics.consistency(lr_uint8, hr), zeros)
    # without rounding, the ground truth scores the LR quantisation error: at most half a level per value
    raw = metrics.consistency(lr_uint8, hr, quantize=False)
    assert (raw > 0).all() and (raw <= (0.5 / 255) ** 2).all()
    assert torch.equal(metrics.consistency(lr_float, hr, quantize=False), zeros)
    # another output is inconsistent
    assert (metrics.consistency(lr_uint8, sr) > 1e-4).all()


def test_consistency_by_hand():
    lr = torch.full((2, 3, 8, 8), 0.2)
    sr = torch.full((2, 3, 32, 32), 0.6)
    # constant images stay constant under the antialiased bicubic; levels 51 and 153
    assert torch.allclose(
        metrics.consistency(lr, sr), torch.full((2,), (102 / 255) ** 2, dtype=torch.float64), atol=1e-15
    )
    assert torch.allclose(
        metrics.consistency(lr, sr, quantize=False), torch.full((2,), 0.16, dtype=torch.float64), atol=1e-7
    )
    with pytest.raises(ValueError, match=r"sr must have shape \(2, 3, 32, 32\)"):
        metrics.consistency(lr, sr[:, :, :16, :16])


# ----------------------------------------------------------------------------------------- likelihood, registry


def test_bits_per_dim():
    nll = torch.tensor([1024 * math.log(2), 3072 * 2 * math.log(2)])
    assert torch.allclose(metrics.bits_per_dim(nll, 1024), torch.tensor([1.0, 6.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="num_subpixels"):
        metrics.bits_per_dim(nll, 0)
    with pytest.raises(ValueError, match=r"shape \[B\]"):
        metrics.bits_per_dim(nll.view(1, 2), 1024)


def test_registry_directions_and_summaries():
    m = metrics.METRICS
    assert metrics.TABLE_METRICS == ("psnr", "ssim", "ms_ssim", "consistency", "nll_bpd")
    assert [m[k].higher_better for k in metrics.TABLE_METRICS] == [True, True, True, False, False]
    assert m["psnr"].function is metrics.psnr and m["consistency"].inputs == ("lr", "sr")
    assert m["consistency"].best_index([0.006, float("nan"), 0.004, 0.004]) == 2
    assert m["ssim"].best_index([0.7, 0.9, 0.8]) == 1
    assert m["nll_bpd"].best_index([float("nan")] * 2) is None
    assert m["psnr"].summarize([20.0, float("inf")]) == (20.0 + metrics.PSNR_CAP_DB) / 2
    assert math.isnan(m["nll_bpd"].summarize([float("nan"), float("nan")]))
    with pytest.raises(ValueError, match="1 of 2"):
        m["ssim"].summarize([0.5, float("nan")])
    assert m["psnr"].format(28.923) == "28.92" and m["consistency"].format(float("nan")) == ""
    with pytest.raises(ValueError, match="known metrics"):
        metrics.get_metric("lpips")


# ----------------------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim, metrics.ms_ssim])
def test_input_validation(fn):
    good = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\].*\(3, 32, 32\)"):
        fn(good[0], good[0])
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3, 32, 32\).*\(2, 3, 32, 16\)"):
        fn(good, good[..., :16])
    high = good.clone()
    high[1, 2, 4, 4] = 1.5
    with pytest.raises(ValueError, match=r"b has values outside \[0, 1\].*max 1.5\)"):
        fn(good, high)
    with pytest.raises(TypeError, match="uint8"):
        fn(sr_data.to_uint8(good), good)
    with pytest.raises(ValueError, match="C = 2"):
        fn(good[:, :2], good[:, :2])
    bad = good.clone()
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fn(good, bad)
    with pytest.raises(ValueError, match="color"):
        fn(good, good, color="yuv")
    # half a level outside [0, 1] is tolerated (it rounds into 0..255)
    assert torch.isfinite(fn(good, (good + 0.001).clamp(max=1.001))).all()


def test_small_images_rejected_by_ssims_but_not_psnr():
    x = torch.rand(1, 1, 8, 8)
    assert torch.isinf(metrics.psnr(x, x)).all()
    for fn in (metrics.ssim, metrics.ms_ssim):
        with pytest.raises(ValueError, match="8x8.*>= 11"):
            fn(x, x)
    with pytest.raises(ValueError, match="max_db"):
        metrics.psnr(x, x, max_db=-1)
