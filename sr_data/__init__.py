"""Datasets and the LR/HR pair making of the toolkit.

Public names (DESIGN.md): `downsample`, `upsample`, `resize`, `load_pairs`.
"""

from . import corners
from .corners import make_corners
from .datasets import PairDataset
from .resize import downsample, resize, to_float, to_uint8, upsample

__all__ = ["downsample", "upsample", "resize", "to_float", "to_uint8", "load_pairs", "PairDataset", "make_corners"]


def load_pairs(name: str, split: str, root=None):
    """See `sr_data.loaders.load_pairs`."""
    from .loaders import load_pairs as _load_pairs

    return _load_pairs(name, split, root=root)
