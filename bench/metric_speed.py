"""Speed of the batched metrics against a per-image scikit-image loop, in one run.

    .venv/bin/python bench/metric_speed.py [--pairs 10000]

Pairs: 32x32 RGB crops of scikit-image's bundled photographs (ground truth) and their bicubic 8->32
reconstruction plus a little Gaussian noise (a realistic super-resolution output). The same pairs go to both
sides: the batched `metrics.psnr` + `metrics.ssim` (and `metrics.ms_ssim`, which scikit-image lacks, timed
separately) against scikit-image's `peak_signal_noise_ratio` + `structural_similarity` called once per image.
The bench checks that the values agree and prints the speed ratios.

Threads: scikit-image's loop is single-threaded Python/NumPy/SciPy. The batched side is timed twice, with
`torch.set_num_threads(1)` (the like-for-like ratio) and with torch's default thread count (the machine's
cores; the ratio a user gets). Order: batched 1 thread, scikit-image loop, batched default threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Run as a script, this file's folder comes first on sys.path and this file would shadow the `metrics` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skimage import data as skdata  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402
from tqdm import tqdm  # noqa: E402

import metrics  # noqa: E402  (after the sys.path fix above)
import sr_data  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def make_pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n (ground truth, output) pairs, each [n, 3, 32, 32] float in [0, 1] on uint8 levels."""
    rng = np.random.default_rng(seed)
    photos = [torch.from_numpy(getattr(skdata, name)()).permute(2, 0, 1).float().div(255) for name in PHOTOS]
    crops = []
    for i in range(n):
        img = photos[i % len(photos)]
        side = int(rng.integers(48, 160))
        top = int(rng.integers(0, img.shape[1] - side))
        left = int(rng.integers(0, img.shape[2] - side))
        crops.append(sr_data.resize(img[None, :, top : top + side, left : left + side], 32))
    hr = sr_data.to_float(sr_data.to_uint8(torch.cat(crops)))
    noise = torch.from_numpy(rng.normal(0.0, 0.02, size=hr.shape).astype(np.float32))
    sr = (sr_data.upsample(sr_data.downsample(hr, 4), 4) + noise).clamp(0, 1)
    return hr, sr_data.to_float(sr_data.to_uint8(sr))


def _time_batched(sr: torch.Tensor, hr: torch.Tensor) -> tuple[float, float, tuple[torch.Tensor, ...]]:
    """Seconds for psnr + ssim, seconds for ms_ssim, and the three value tensors."""
    t0 = time.perf_counter()
    p_t = metrics.psnr(sr, hr)
    s_t = metrics.ssim(sr, hr)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    m_t = metrics.ms_ssim(sr, hr)
    return t_batched, time.perf_counter() - t0, (p_t, s_t, m_t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()

    hr, sr = make_pairs(args.pairs)
    print(
        f"{args.pairs} pairs of 32x32 RGB; torch default threads {default_threads}, scikit-image loop single-threaded"
    )

    # Warm-up on a few pairs (imports, caches, first allocations), not timed, for both sides.
    _time_batched(sr[:8], hr[:8])
    structural_similarity(
        sr[0].permute(1, 2, 0).numpy(),
        hr[0].permute(1, 2, 0).numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=-1,
    )
    torch.set_num_threads(1)
    t_1, t_ms_1, (p_t, s_t, m_t) = _time_batched(sr, hr)

    hr_np = sr_data.to_uint8(hr).permute(0, 2, 3, 1).numpy()
    sr_np = sr_data.to_uint8(sr).permute(0, 2, 3, 1).numpy()
    p_s = np.empty(args.pairs)
    s_s = np.empty(args.pairs)
    t0 = time.perf_counter()
    for i in tqdm(range(args.pairs), desc="scikit-image loop", leave=False):
        p_s[i] = peak_signal_noise_ratio(hr_np[i], sr_np[i], data_range=255)
        s_s[i] = structural_similarity(
            sr_np[i] / 255.0,
            hr_np[i] / 255.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=-1,
        )
    t_loop = time.perf_counter() - t0

    torch.set_num_threads(default_threads)
    t_n, t_ms_n, values_n = _time_batched(sr, hr)
    threads_diff = max(float((u - v).abs().max()) for u, v in zip((p_t, s_t, m_t), values_n))

    print(
        f"agreement: max |psnr diff| {np.abs(p_t.numpy() - p_s).max():.2e} dB, "
        f"max |ssim diff| {np.abs(s_t.numpy() - s_s).max():.2e}"
        f" (batched 1 thread vs {default_threads} threads: max diff {threads_diff:.1e})"
    )
    print(f"means: psnr {p_t.mean():.3f} dB, ssim {s_t.mean():.4f}, ms_ssim {m_t.mean():.4f}")
    per = lambda t: f"{t:8.3f} s ({t / args.pairs * 1e6:7.1f} us/pair)"  # noqa: E731
    print(f"scikit-image loop psnr+ssim (1 thread): {per(t_loop)}")
    for label, t_b, t_ms in (("1 thread", t_1, t_ms_1), (f"{default_threads} threads (torch default)", t_n, t_ms_n)):
        print(f"batched, {label}:")
        print(f"  psnr+ssim {per(t_b)}   ms_ssim {per(t_ms)}")
        print(f"  speed ratio psnr+ssim (skimage loop / batched): {t_loop / t_b:.1f}x (goal >= 20x)")
        print(
            "  speed ratio incl. ms_ssim (skimage psnr+ssim loop / batched psnr+ssim+ms_ssim): "
            f"{t_loop / (t_b + t_ms):.1f}x"
        )


if __name__ == "__main__":
    main()
