"""Any folder of images -> 3-channel pairs (centre square crop, resize to 32x32).

Files are found recursively by extension (case-insensitive: jpg, jpeg, png, webp, bmp, gif, tif, tiff,
ppm, pgm); ids are paths relative to the root with '/' separators; the split of a file is a hash of that
id (`sr_data.splits.folder_split`, 90/5/5 %). Every image is converted to RGB (grey images get three
equal channels), so a folder dataset always has 3 channels. Files that cannot be decoded are skipped
with a warning that counts them and names a few.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import cache
from .datasets import build_cached, fill_from_images, open_cached
from .errors import DataError
from .images import IMAGE_SUFFIXES, is_image_file, read_image
from .splits import FOLDER_BUCKETS, folder_split

NAME = "folder"
IMAGE_EXTENSIONS = IMAGE_SUFFIXES  # the one list (sr_data.images)


def decode_image(source) -> np.ndarray:
    """Decode an image file (path) or encoded bytes -> uint8 [H, W, 3] RGB.

    Raises `sr_data.images.ImageReadError` (a ValueError) on a corrupt or truncated image: the one
    reader forces a full decode (Pillow refuses truncated files unless told otherwise, which we never do).
    """
    return read_image(source, channels="rgb")


def centre_square(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> the largest centred square [S, S, C], S = min(H, W) (odd excess: the extra
    row/column is dropped at the bottom/right)."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[top : top + s, left : left + s]


def list_images(root: Path) -> list[str]:
    """Image files under `root` (recursive), as sorted relative posix paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root)
        for f in filenames:
            if is_image_file(f):
                found.append((rel_dir / f).as_posix())
    return sorted(found)


def load_image_folder(name: str, split: str, root: Path):
    """Pairs of `split` of the image folder `root`, registered in the cache under dataset `name`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} not found: pass an existing folder as root (--data-root)")
    files = list_images(root)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    chosen = [f for f in files if folder_split(f) == split]
    if not chosen:
        pct = len(FOLDER_BUCKETS[split])
        raise DataError(
            f"the {split} split of {root} is empty: {len(files)} images, of which a file-name hash "
            f"puts about {pct} % in {split}; add images"
        )
    fp = cache.fingerprint([name, split, *cache.file_stat_parts(root, chosen)])
    ds = open_cached(name, split, root, fp)
    if ds is not None:
        return ds

    def fill(writer):
        return fill_from_images(
            writer, ((f, root / f) for f in chosen), len(chosen), decode_image, centre_square, f"{name}/{split}", root
        )

    return build_cached(name, split, root, fp, len(chosen), 3, max(len(f) for f in chosen), fill)


def load(split: str, root: Path):
    """The `folder` dataset: pairs of `split` of the image folder `root`."""
    return load_image_folder(NAME, split, root)
