"""`load_pairs`: the one entry to every dataset's pairs (each loader module is imported on first use).

Kept apart from `sr_data.datasets` (which the loaders build on) so that no two files import each other.
"""

from __future__ import annotations

from types import SimpleNamespace

from .datasets import DATASETS, PairDataset, resolve_root
from .splits import check_split


def load_pairs(name: str, split: str, root=None) -> PairDataset:
    """The (LR 8x8, HR 32x32) uint8 pairs of `split` ('train' | 'valid' | 'test') of dataset `name`.

    name: 'fashion-mnist' (1 channel), 'celeba', 'lsun-bedroom', 'folder' (3 channels; for 'folder',
    `root` is the image folder). Raw data: `root`, else $PRSR_DATA, else the dataset's default folder.
    Splits: see `sr_data.splits`. Missing data -> FileNotFoundError; wrong layout -> ValueError.
    """
    check_split(split)
    if name == "fashion-mnist":
        from .fashion_mnist import load  # noqa: PLC0415  only the chosen dataset's reader loads (lsun needs lmdb)
    elif name == "celeba":
        from .celeba import load  # noqa: PLC0415  only the chosen dataset's reader loads (lsun needs lmdb)
    elif name == "lsun-bedroom":
        from .lsun import load  # noqa: PLC0415  only the chosen dataset's reader loads (lsun needs lmdb)
    elif name == "folder":
        from .folder import load  # noqa: PLC0415  only the chosen dataset's reader loads (lsun needs lmdb)
    else:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return load(split, resolve_root(name, root))


def first_pairs(data, limit):
    """The first `limit` pairs of `data` (views of its arrays), or `data` itself when limit is None or covers it:
    the profile's `data.train_limit`, which both training and the nearest-neighbour search apply."""
    if limit is None:
        return data
    if isinstance(limit, bool) or int(limit) != limit or limit < 1:
        raise ValueError(f"profile data.train_limit must be a positive integer or null, got {limit!r}")
    if limit >= len(data.lr):
        return data
    ids = getattr(data, "ids", None)
    return SimpleNamespace(
        lr=data.lr[:limit], hr=data.hr[:limit], ids=None if ids is None else ids[:limit], channels=data.channels
    )
