"""The fixed train/valid/test splits of every dataset (documented here, used by the loaders).

- fashion-mnist: the official 60,000-image training file gives train = its first 55,000 images and
  valid = its last 5,000; test = the official 10,000-image test file.
- celeba: the official `list_eval_partition.txt` (0 = train, 1 = valid, 2 = test), i.e. 162,770 /
  19,867 / 19,962 images.
- lsun-bedroom (lmdb export): test = `bedroom_val_lmdb` (the published 300-image validation set, the
  only held-out LSUN data with known images); train = `bedroom_train_lmdb` minus valid; valid = the
  keys of `bedroom_train_lmdb` whose hash bucket (below) is < `LSUN_VALID_PER_MILLE` per mille (1 %,
  about 30,000 images).
- folder, and lsun-bedroom given as a folder of images: by the hash bucket of the file's path relative
  to the root: buckets 0-89 train, 90-94 valid, 95-99 test (90/5/5 %).

A hash bucket is `int(sha1(key as UTF-8).hexdigest(), 16) % modulus`: it depends on the key alone, so
adding or removing other files never moves an image to another split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SPLITS = ("train", "valid", "test")

FASHION_MNIST_VALID = 5000  # the last 5,000 images of the official training file

CELEBA_PARTITION = {"0": "train", "1": "valid", "2": "test"}

FOLDER_BUCKETS = {"train": range(0, 90), "valid": range(90, 95), "test": range(95, 100)}  # percent

LSUN_VALID_PER_MILLE = 10


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def hash_bucket(key: str | bytes, modulus: int = 100) -> int:
    """Deterministic bucket in [0, modulus) of a key (a relative file name or an lmdb key)."""
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogateescape")
    return int(hashlib.sha1(key).hexdigest(), 16) % modulus


def folder_split(relative_name: str) -> str:
    """Split of a file in a folder dataset from its path relative to the root (posix separators)."""
    bucket = hash_bucket(relative_name, 100)
    for split, buckets in FOLDER_BUCKETS.items():
        if bucket in buckets:
            return split
    raise AssertionError(bucket)  # the ranges cover 0..99


def lsun_train_key_split(key: str | bytes) -> str:
    """'valid' or 'train' for a key of `bedroom_train_lmdb`."""
    return "valid" if hash_bucket(key, 1000) < LSUN_VALID_PER_MILLE else "train"


def fashion_mnist_range(split: str, n_train_file: int, n_test_file: int) -> tuple[str, int, int]:
    """(which file: 'train' or 't10k', first index, end index) of a Fashion-MNIST split."""
    check_split(split)
    if split == "test":
        return "t10k", 0, n_test_file
    if n_train_file <= FASHION_MNIST_VALID:
        raise ValueError(
            f"the Fashion-MNIST training file holds {n_train_file} images; at least "
            f"{FASHION_MNIST_VALID + 1} are needed (the last {FASHION_MNIST_VALID} form the valid split)"
        )
    cut = n_train_file - FASHION_MNIST_VALID
    return ("train", 0, cut) if split == "train" else ("train", cut, n_train_file)


def read_celeba_partition(path: Path) -> dict[str, list[str]]:
    """Parse CelebA's `list_eval_partition.txt` -> {split: [file names in file order]}.

    Each non-empty line is `<image file name> <0|1|2>`. A malformed line raises ValueError naming the
    file and the line number.
    """
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in CELEBA_PARTITION:
                raise ValueError(f"{path}, line {lineno}: expected '<image name> <0|1|2>', got {line.strip()!r}")
            name = fields[0]
            if name in seen:
                raise ValueError(f"{path}, line {lineno}: image {name!r} is listed twice")
            seen.add(name)
            out[CELEBA_PARTITION[fields[1]]].append(name)
    if not seen:
        raise ValueError(f"{path}: the partition file lists no images")
    return out
