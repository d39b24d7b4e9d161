"""The two-corners dataset of the paper's Fig. 2: the input says *what*, not *where*.

Each `canvas` x `canvas` target (32 by default, the paper's HR size; 16 for the small variant of the
`quick` profile) holds one Fashion-MNIST item, resized from 28x28 to `canvas / 2` with `sr_data.resize`,
in the top-left (quadrant 0) or the bottom-right (quadrant 1) quadrant, each with probability 1/2;
everything else is 0. The `canvas / 4` input is `downsample` (x4) of a canvas with the same item in the
centre, so it carries no information about the quadrant: a model that must put the item in exactly one
corner has to make a choice (a multimodal target).
"""

from __future__ import annotations

import numpy as np
import torch

from .datasets import PairDataset, lr_from_hr
from .loaders import load_pairs
from .resize import resize, to_float, to_uint8
from .splits import SPLITS, check_split

ITEM = 16  # side of the item on the default 32x32 canvas
CANVASES = (16, 32)  # supported canvas sides (items 8x8 / 16x16, inputs 4x4 / 8x8)
QUADRANT_NAMES = ("top-left", "bottom-right")


class CornersDataset(PairDataset):
    """A `PairDataset` (name 'corners', 1 channel, arrays in memory) plus `quadrant` int8 [N]
    (0 = top-left, 1 = bottom-right) and `canvas` (the HR side); `ds[i]` also holds `"quadrant": int`."""

    def __init__(self, lr, hr, ids, split, quadrant):
        super().__init__(lr, hr, ids, "corners", split, hr_size=hr.shape[-1])
        if quadrant.shape != (len(hr),):
            raise ValueError(f"quadrant must be [N={len(hr)}], got {quadrant.shape}")
        self.quadrant = quadrant
        self.canvas = int(hr.shape[-1])

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        item["quadrant"] = int(self.quadrant[i])
        return item


def check_canvas(canvas: int) -> int:
    if canvas not in CANVASES:
        raise ValueError(f"corners canvas must be one of {CANVASES} (HR side in pixels), got {canvas!r}")
    return int(canvas)


def place(items: np.ndarray, top: np.ndarray, left: np.ndarray, canvas: int = 32) -> np.ndarray:
    """uint8 items [N, s, s] -> uint8 canvases [N, 1, canvas, canvas] with item n at (top[n], left[n])."""
    canvas_arr = np.zeros((len(items), 1, canvas, canvas), dtype=np.uint8)
    side = items.shape[-1]
    for n, (t, lft) in enumerate(zip(top, left)):
        canvas_arr[n, 0, t : t + side, lft : lft + side] = items[n]
    return canvas_arr


def make_corners(split: str, n: int | None = None, seed: int = 0, root=None, canvas: int = 32) -> CornersDataset:
    """The two-corners set built from the first `n` items (all when None) of Fashion-MNIST's `split`.

    The quadrants are drawn from `numpy.random.default_rng([seed, index of split])`: deterministic,
    and different between splits for the same seed. `root`: Fashion-MNIST's folder (see `load_pairs`).
    `canvas`: HR side, 32 (items 16x16, input 8x8) or 16 (items 8x8, input 4x4).
    """
    check_split(split)
    canvas = check_canvas(canvas)
    item = canvas // 2
    source = load_pairs("fashion-mnist", split, root=root)
    if n is None:
        n = len(source)
    if not 0 < n <= len(source):
        raise ValueError(f"n must be in 1..{len(source)} (size of fashion-mnist/{split}), got {n}")
    # the HR images are the 28x28 items zero-padded by 2; take the item back out
    items28 = torch.from_numpy(np.ascontiguousarray(source.hr[:n, :, 2:30, 2:30]))
    items = np.concatenate(
        [to_uint8(resize(to_float(items28[s : s + 4096]), item)).numpy() for s in range(0, n, 4096)]
    )[:, 0]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    quadrant = rng.integers(0, 2, size=n).astype(np.int8)
    corner = quadrant.astype(np.int64) * (canvas - item)  # 0 for top-left, canvas/2 for bottom-right
    hr = place(items, corner, corner, canvas)
    centre = np.full(n, (canvas - item) // 2)
    lr = lr_from_hr(place(items, centre, centre, canvas))
    return CornersDataset(lr, hr, np.array(source.ids[:n]), split, quadrant)
