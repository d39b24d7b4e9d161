"""Datasets and the LR/HR pair making of the toolkit.

Public names (DESIGN.md): `downsample`, `upsample`, `resize`, `load_pairs`.
"""

from . import corners
from .corners import make_corners
from .datasets import PairDataset
from .loaders import first_pairs, load_pairs
from .resize import downsample, resize, to_float, to_uint8, upsample

__all__ = [
    "downsample",
    "upsample",
    "resize",
    "to_float",
    "to_uint8",
    "load_pairs",
    "first_pairs",
    "PairDataset",
    "make_corners",
    "corners",
]
