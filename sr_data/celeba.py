"""CelebA (aligned and cropped faces) -> 3-channel pairs.

Published layout under the root::

    img_align_celeba/000001.jpg ... 202599.jpg    (178 x 218, width x height)
    list_eval_partition.txt                       (`000001.jpg 0` per line; 0 train, 1 valid, 2 test)

(The Kaggle copy's doubly nested `img_align_celeba/img_align_celeba/` is accepted too.) HR = the
138x138 crop at top 40, left 20 (as Google's tensor2tensor `img2img_celeba` 8->32 task does; the paper
gives no crop), resized to 32x32 with `sr_data.resize`. Ids are the file names. A listed image that is
missing, corrupt or smaller than the crop is skipped with a warning that counts them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import cache
from .datasets import build_cached, fill_from_images, open_cached
from .errors import DataError
from .folder import decode_image
from .splits import read_celeba_partition

NAME = "celeba"
CROP_TOP, CROP_LEFT, CROP_SIZE = 40, 20, 138
LAYOUT = (
    "expected <root>/img_align_celeba/000001.jpg ... and <root>/list_eval_partition.txt (CelebA's "
    "published 'Align&Cropped Images' and its evaluation partition); pass the folder holding both "
    "as --data-root or set PRSR_DATA"
)


def crop_face(image: np.ndarray) -> np.ndarray:
    """uint8 [218, 178, C] -> uint8 [138, 138, C]: rows 40..177, columns 20..157."""
    h, w = image.shape[:2]
    if h < CROP_TOP + CROP_SIZE or w < CROP_LEFT + CROP_SIZE:
        raise DataError(
            f"image is {w}x{h}, smaller than the {CROP_SIZE}x{CROP_SIZE} crop at "
            f"top {CROP_TOP}, left {CROP_LEFT} (expected 178x218 aligned CelebA images)"
        )
    return image[CROP_TOP : CROP_TOP + CROP_SIZE, CROP_LEFT : CROP_LEFT + CROP_SIZE]


def image_folder(root: Path) -> Path:
    """`<root>/img_align_celeba`, or the nested Kaggle `<root>/img_align_celeba/img_align_celeba`."""
    folder = root / "img_align_celeba"
    nested = folder / "img_align_celeba"
    if nested.is_dir() and not (folder / "000001.jpg").exists():
        return nested
    return folder


def load(split: str, root: Path):
    """The CelebA pairs of `split` (official partition); built into the cache on first use."""
    root = Path(root)
    partition = root / "list_eval_partition.txt"
    images = image_folder(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CelebA folder {root} not found: {LAYOUT}")
    if not partition.is_file():
        raise FileNotFoundError(f"CelebA partition file {partition} not found: {LAYOUT}")
    if not images.is_dir():
        raise FileNotFoundError(f"CelebA image folder {images} not found: {LAYOUT}")
    names = read_celeba_partition(partition)[split]
    if not names:
        raise DataError(
            f"{partition} puts no image in the {split} split (label { {'train': 0, 'valid': 1, 'test': 2}[split] })"
        )
    fp = cache.fingerprint(
        [NAME, split, *cache.file_stat_parts(root, [partition.name]), *cache.file_stat_parts(images, names)]
    )
    ds = open_cached(NAME, split, root, fp)
    if ds is not None:
        return ds

    def fill(writer):
        return fill_from_images(
            writer, ((n, images / n) for n in names), len(names), decode_image, crop_face, f"{NAME}/{split}", images
        )

    return build_cached(NAME, split, root, fp, len(names), 3, max(len(n) for n in names), fill)
