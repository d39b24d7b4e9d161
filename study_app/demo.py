"""Small synthetic prediction folders (the `runs/<dataset>/predictions` layout) for tests and benchmarks.

The images are structured rather than pure noise — a smooth gradient plus a bright square at a
random place — so PNG round trips, golden images and screenshots look like images; each method's
`sr` is the truth with method-specific noise, so pairs differ visibly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_demo_predictions(
    folder: str | Path,
    n: int = 64,
    channels: int = 1,
    methods: tuple[str, ...] = ("resnet_l2", "gan", "pixel_recursive_t1.0"),
    seed: int = 0,
    shuffle_method_ids: bool = True,
) -> Path:
    """Write `truth.npz` (lr uint8 [n,C,8,8], hr uint8 [n,C,32,32], ids "img0000"...) and one
    `<method>.npz` (sr uint8 [n,C,32,32], ids) per method into `folder`; returns the folder.

    With `shuffle_method_ids` the method files list the images in another order than truth.npz,
    so a reader that pairs by position instead of by id would mismatch (and a test would see it).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    hr = np.empty((n, channels, 32, 32), np.uint8)
    for k in range(n):
        a, b = rng.uniform(-1, 1, 2)
        base = 128 + 60 * (a * xx + b * yy)
        r, c = rng.integers(0, 24, 2)
        img = np.repeat(base[None], channels, 0) + rng.normal(0, 6, (channels, 32, 32))
        img[:, r : r + 8, c : c + 8] += rng.uniform(40, 90, (channels, 1, 1))
        hr[k] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    lr = np.round(hr.reshape(n, channels, 8, 4, 8, 4).mean(axis=(3, 5))).astype(np.uint8)
    ids = np.array([f"img{k:04d}" for k in range(n)])
    np.savez(folder / "truth.npz", lr=lr, hr=hr, ids=ids)
    for j, m in enumerate(methods):
        sr = np.clip(hr.astype(np.int16) + rng.normal(0, 10 + 10 * j, hr.shape).round().astype(np.int16), 0, 255)
        order = rng.permutation(n) if shuffle_method_ids else np.arange(n)
        np.savez(folder / f"{m}.npz", sr=sr.astype(np.uint8)[order], ids=ids[order])
    return folder
