"""The two-corners dataset of the paper's Fig. 2: the input says *what*, not *where*.

Each 32x32 target holds one Fashion-MNIST item, resized from 28x28 to 16x16 with `sr_data.resize`, in
the top-left (quadrant 0: rows/cols 0..15) or the bottom-right (quadrant 1: rows/cols 16..31) quadrant,
each with probability 1/2; everything else is 0. The 8x8 input is `downsample` of a 32x32 canvas with
the same 16x16 item in the centre (rows/cols 8..23), so it carries no information about the quadrant:
a model that must put the item in exactly one corner has to make a choice (a multimodal target).
"""

from __future__ import annotations

import numpy as np
import torch

from .datasets import PairDataset, lr_from_hr
from .loaders import load_pairs
from .resize import resize, to_float, to_uint8
from .splits import SPLITS, check_split

ITEM = 16  # side of the item on the 32x32 canvas
QUADRANT_NAMES = ("top-left", "bottom-right")


class CornersDataset(PairDataset):
    """A `PairDataset` (name 'corners', 1 channel, arrays in memory) plus `quadrant` int8 [N]
    (0 = top-left, 1 = bottom-right); `ds[i]` also holds `"quadrant": int`."""

    def __init__(self, lr, hr, ids, split, quadrant):
        super().__init__(lr, hr, ids, "corners", split)
        if quadrant.shape != (len(hr),):
            raise ValueError(f"quadrant must be [N={len(hr)}], got {quadrant.shape}")
        self.quadrant = quadrant

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        item["quadrant"] = int(self.quadrant[i])
        return item


def place(items: np.ndarray, top: np.ndarray, left: np.ndarray) -> np.ndarray:
    """uint8 items [N, 16, 16] -> uint8 canvases [N, 1, 32, 32] with item n at (top[n], left[n])."""
    canvas = np.zeros((len(items), 1, 32, 32), dtype=np.uint8)
    for n, (t, l) in enumerate(zip(top, left)):
        canvas[n, 0, t:t + ITEM, l:l + ITEM] = items[n]
    return canvas


def make_corners(split: str, n: int | None = None, seed: int = 0, root=None) -> CornersDataset:
    """The two-corners set built from the first `n` items (all when None) of Fashion-MNIST's `split`.

    The quadrants are drawn from `numpy.random.default_rng([seed, index of split])`: deterministic,
    and different between splits for the same seed. `root`: Fashion-MNIST's folder (see `load_pairs`).
    """
    check_split(split)
    source = load_pairs("fashion-mnist", split, root=root)
    if n is None:
        n = len(source)
    if not 0 < n <= len(source):
        raise ValueError(f"n must be in 1..{len(source)} (size of fashion-mnist/{split}), got {n}")
    # the HR images are the 28x28 items zero-padded by 2; take the item back out
    items28 = torch.from_numpy(np.ascontiguousarray(source.hr[:n, :, 2:30, 2:30]))
    items = np.concatenate([to_uint8(resize(to_float(items28[s:s + 4096]), ITEM)).numpy()
                            for s in range(0, n, 4096)])[:, 0]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    quadrant = rng.integers(0, 2, size=n).astype(np.int8)
    corner = quadrant.astype(np.int64) * (32 - ITEM)  # 0 for top-left, 16 for bottom-right
    hr = place(items, corner, corner)
    centre = np.full(n, (32 - ITEM) // 2)
    lr = lr_from_hr(place(items, centre, centre))
    return CornersDataset(lr, hr, np.array(source.ids[:n]), split, quadrant)
