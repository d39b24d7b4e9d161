"""The `PairDataset` every consumer reads (LR 8x8 / HR 32x32 uint8 pairs); `load_pairs` is in `sr_data.loaders`.

Pair making, the same for every dataset: an HR image is the dataset's crop of the source resized with
`sr_data.resize` to 32x32 and rounded to uint8 (`sr_data.to_uint8`); its LR image is
`to_uint8(downsample(to_float(hr), 4))`. So LR is made from the *quantised* HR image: a perfect
super-resolver's shrunk output differs from LR only by that quantisation (at most half a level per LR
sub-pixel), which `metrics.consistency` removes by comparing both at uint8 levels (ground truth: exactly 0).

Pairs are decoded once per (dataset, source, split) into the cache (`sr_data.cache`) and memory-mapped
from there on.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from . import cache
from .errors import DataError
from .paths import home
from .resize import downsample, resize, to_float, to_uint8

DATASETS = ("fashion-mnist", "celeba", "lsun-bedroom", "folder")

# Where each dataset's raw files are looked for when neither `root` nor $PRSR_DATA is given.
# Relative entries are under `paths.home()` ($PRSR_HOME or the working directory), resolved when used.
DEFAULT_ROOTS = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),  # Debian's dataset-fashion-mnist
    "celeba": Path("data") / "celeba",
    "lsun-bedroom": Path("data") / "lsun-bedroom",
}

_BATCH = 256  # images resized / downsampled per call


class PairDataset(Dataset):
    """(LR, HR) uint8 pairs of one dataset split.

    Attributes: `lr` uint8 [N, C, 8, 8] and `hr` uint8 [N, C, 32, 32] (numpy, memory-mapped from the
    cache when loaded from it), `ids` numpy str [N] (stable image ids), `channels` (1 or 3), `name`,
    `split`. `ds[i]` -> {"lr": uint8 tensor [C, 8, 8], "hr": uint8 tensor [C, 32, 32], "id": str}.
    Safe to send to DataLoader worker processes: a memory-mapped dataset re-opens its files there
    instead of pickling the arrays.
    """

    def __init__(
        self,
        lr: np.ndarray,
        hr: np.ndarray,
        ids: np.ndarray,
        name: str,
        split: str,
        cache_dir: Path | None = None,
        hr_size: int = 32,
    ):
        # hr_size: 32 for every real dataset; the small two-corners variant uses 16 (lr 4x4)
        s = hr_size // 4
        if lr.ndim != 4 or hr.ndim != 4 or lr.shape[2:] != (s, s) or hr.shape[2:] != (hr_size, hr_size):
            raise ValueError(
                f"expected lr [N,C,{s},{s}] and hr [N,C,{hr_size},{hr_size}], got {lr.shape} and {hr.shape}"
            )
        if not (len(lr) == len(hr) == len(ids)) or lr.shape[1] != hr.shape[1]:
            raise ValueError(f"lr {lr.shape}, hr {hr.shape} and ids ({len(ids)}) do not match")
        if lr.dtype != np.uint8 or hr.dtype != np.uint8:
            raise TypeError(f"lr and hr must be uint8, got {lr.dtype} and {hr.dtype}")
        self.lr, self.hr, self.ids = lr, hr, ids
        self.name, self.split = name, split
        self.channels = int(hr.shape[1])
        self.cache_dir = cache_dir

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> dict:
        return {
            "lr": torch.from_numpy(np.array(self.lr[i])),  # copy: memory maps are read-only
            "hr": torch.from_numpy(np.array(self.hr[i])),
            "id": str(self.ids[i]),
        }

    def __repr__(self) -> str:
        where = f", cache={self.cache_dir}" if self.cache_dir else ""
        return f"PairDataset({self.name!r}, {self.split!r}, n={len(self)}, channels={self.channels}{where})"

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.cache_dir is not None:
            state.pop("lr"), state.pop("hr"), state.pop("ids")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "hr" not in state:
            entry = cache.read_entry(Path(self.cache_dir))
            if entry is None:
                raise FileNotFoundError(f"the cache entry {self.cache_dir} disappeared")
            self.lr, self.hr, self.ids, _ = entry


def resolve_root(name: str, root) -> Path:
    """Raw-data folder of a dataset: `root`, else $PRSR_DATA, else the dataset's default."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("PRSR_DATA")
    if env:
        return Path(env).expanduser()
    if name not in DEFAULT_ROOTS:
        raise FileNotFoundError(f"the {name!r} dataset needs a folder: pass root= (--data-root DIR) or set PRSR_DATA")
    root = DEFAULT_ROOTS[name]
    return root if root.is_absolute() else home() / root


def lr_from_hr(hr: np.ndarray) -> np.ndarray:
    """uint8 [N, C, 32, 32] -> uint8 [N, C, 8, 8]: `to_uint8(downsample(to_float(hr), 4))`."""
    out = np.empty(hr.shape[:2] + (hr.shape[2] // 4, hr.shape[3] // 4), dtype=np.uint8)
    for start in range(0, len(hr), 4096):
        chunk = torch.from_numpy(np.ascontiguousarray(hr[start : start + 4096]))
        out[start : start + len(chunk)] = to_uint8(downsample(to_float(chunk), 4)).numpy()
    return out


def hr_from_crops(crops: Sequence[np.ndarray], size: int = cache.HR_SIZE) -> np.ndarray:
    """Crops uint8 [H, W, C] (any sizes) -> uint8 [N, C, size, size] through `sr_data.resize`.

    Crops of equal shape are resized in one call (CelebA's are all 138x138).
    """
    out = np.empty((len(crops), crops[0].shape[2], size, size), dtype=np.uint8)
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(crops):
        groups.setdefault(c.shape, []).append(i)
    for idx in groups.values():
        batch = torch.from_numpy(np.stack([crops[i] for i in idx])).permute(0, 3, 1, 2)
        out[idx] = to_uint8(resize(to_float(batch.contiguous()), size)).numpy()
    return out


def open_cached(name: str, split: str, root: Path, fp: str) -> PairDataset | None:
    """The cached dataset for this fingerprint, or None. Repeats the build's skipped-image warning."""
    directory = cache.entry_dir(name, root, split, fp)
    entry = cache.read_entry(directory)
    if entry is None:
        return None
    lr, hr, ids, meta = entry
    if meta.get("skipped"):
        warnings.warn(
            f"{name}/{split}: {meta['skipped']} unreadable image(s) under {root} were skipped when "
            f"the cache was built (e.g. {', '.join(meta.get('skipped_examples', []))})",
            stacklevel=3,
        )
    return PairDataset(lr, hr, ids, name, split, cache_dir=directory)


def build_cached(
    name: str,
    split: str,
    root: Path,
    fp: str,
    capacity: int,
    channels: int,
    id_width: int,
    fill: Callable[[cache.PairWriter], dict],
) -> PairDataset:
    """Create the cache entry with `fill(writer) -> meta` and return the memory-mapped dataset."""
    directory = cache.entry_dir(name, root, split, fp)
    writer = cache.PairWriter(directory, capacity, channels, id_width)
    try:
        meta = fill(writer)
        writer.finish(dict(meta, name=name, split=split, root=str(Path(root).resolve())))
    except BaseException:
        writer.abort()
        raise
    lr, hr, ids, _ = cache.read_entry(directory)
    return PairDataset(lr, hr, ids, name, split, cache_dir=directory)


def fill_from_images(
    writer: cache.PairWriter,
    items: Iterable[tuple[str, object]],
    total: int,
    decode: Callable[[object], np.ndarray],
    crop: Callable[[np.ndarray], np.ndarray],
    desc: str,
    where: Path,
) -> dict:
    """Decode, crop and resize images into `writer`; unreadable ones are skipped and warned about.

    `items` yields (image id, handle); `decode(handle)` -> uint8 [H, W, C] (raises on a bad image);
    `crop(image)` -> uint8 [h, w, C] (raises ValueError when the image does not fit the crop).
    Returns meta for the cache (`skipped`, `skipped_examples`). Zero usable images -> ValueError.
    """
    skipped: list[str] = []
    crops: list[np.ndarray] = []
    names: list[str] = []

    def flush():
        if names:
            hr = hr_from_crops(crops)
            writer.add(lr_from_hr(hr), hr, names)
            crops.clear()
            names.clear()

    for image_id, handle in tqdm(items, total=total, desc=desc, unit="img", disable=total < 2000, leave=False):
        try:
            crops.append(crop(decode(handle)))
        except Exception as exc:  # any decoder failure: corrupt, truncated, wrong size, unreadable
            skipped.append(f"{image_id} ({type(exc).__name__}: {exc})")
            continue
        names.append(image_id)
        if len(names) >= _BATCH:
            flush()
    flush()
    if writer.count == 0:
        raise DataError(
            f"none of the {total} image(s) for {desc} under {where} could be decoded; "
            f"first failures: {'; '.join(skipped[:5])}"
        )
    if skipped:
        warnings.warn(
            f"{desc}: skipped {len(skipped)} of {total} image(s) under {where} that could not be "
            f"used (corrupt, truncated, missing or unreadable): {'; '.join(skipped[:5])}"
            + (" ..." if len(skipped) > 5 else ""),
            stacklevel=3,
        )
    return {"skipped": len(skipped), "skipped_examples": [s.split(" (")[0] for s in skipped[:5]]}
