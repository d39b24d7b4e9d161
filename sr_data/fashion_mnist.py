"""Fashion-MNIST (the embedded default dataset): IDX files -> 1-channel pairs.

Raw files (gzipped or not), as Debian's `dataset-fashion-mnist` installs them in
/usr/share/datasets/fashion-mnist: `train-images-idx3-ubyte[.gz]` (60,000 x 28 x 28) and
`t10k-images-idx3-ubyte[.gz]` (10,000 x 28 x 28); the label files are not needed. HR = the 28x28 item
zero-padded by 2 pixels on each side to 32x32 (no resampling); ids are `train/000123` / `t10k/000123`
(the index in the official file). Splits: `sr_data.splits`.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from . import cache
from .datasets import build_cached, lr_from_hr, open_cached
from .errors import DataError
from .splits import fashion_mnist_range

NAME = "fashion-mnist"
PAD = 2
_IDX_UBYTE = 0x08
HOW_TO_FIX = (
    "run `make data` (installs Debian's dataset-fashion-mnist) or point --data-root/PRSR_DATA at a "
    "folder with the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; gzipped or not)"
)


def find_images_file(root: Path, prefix: str) -> Path:
    """`<root>/<prefix>-images-idx3-ubyte.gz` or the same without `.gz`; FileNotFoundError otherwise."""
    for name in (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"Fashion-MNIST file {root / (prefix + '-images-idx3-ubyte.gz')} not found: {HOW_TO_FIX}")


def read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX3 ubyte image file (gzipped or not) -> uint8 [N, H, W].

    IDX header: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions (3), then
    one big-endian uint32 per dimension. ValueError naming the file when the header or length is wrong.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable (gzipped) IDX file ({exc}); re-download it. {HOW_TO_FIX}") from exc
    if len(raw) < 16:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX3 header (16 bytes)")
    zeros, dtype_code, ndim = raw[:2], raw[2], raw[3]
    if zeros != b"\x00\x00" or dtype_code != _IDX_UBYTE or ndim != 3:
        raise DataError(
            f"{path}: header bytes 0-3 are {raw[:4].hex()}, expected 00000803 "
            f"(IDX magic number of a 3-d unsigned-byte image file)"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(3))
    expected = 16 + dims[0] * dims[1] * dims[2]
    if len(raw) != expected:
        raise DataError(
            f"{path}: header says {dims[0]} images of {dims[1]}x{dims[2]} ({expected} bytes) "
            f"but the file holds {len(raw)} bytes (truncated or garbled)"
        )
    if dims[1:] != (28, 28):
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28 (Fashion-MNIST)")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(dims)


def _idx_count(path: Path) -> int:
    """Number of images from the header only (to size a split without decoding the whole file)."""
    try:
        with open(path, "rb") as f:
            opener = gzip.open if f.read(2) == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            head = f.read(8)
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable (gzipped) IDX file ({exc}). {HOW_TO_FIX}") from exc
    if len(head) < 8 or head[:4] != b"\x00\x00\x08\x03":
        raise DataError(
            f"{path}: header bytes 0-3 are {head[:4].hex()}, expected 00000803 "
            f"(IDX magic number of a 3-d unsigned-byte image file)"
        )
    return int.from_bytes(head[4:8], "big")


def pad_to_hr(items: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> uint8 [N, 1, 32, 32], zero-padded by 2 on every side."""
    return np.pad(items, ((0, 0), (PAD, PAD), (PAD, PAD)))[:, None]


def load(split: str, root: Path):
    """The Fashion-MNIST pairs of `split` (see module docstring); built into the cache on first use."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST folder {root} not found: {HOW_TO_FIX}")
    train_file, test_file = find_images_file(root, "train"), find_images_file(root, "t10k")
    which = "t10k" if split == "test" else "train"
    path = test_file if split == "test" else train_file
    fp = cache.fingerprint([NAME, split, *cache.file_stat_parts(root, [path.name])])
    ds = open_cached(NAME, split, root, fp)
    if ds is not None:
        return ds
    n_file = _idx_count(path)
    _, start, end = fashion_mnist_range(split, n_file if which == "train" else 0, n_file)

    def fill(writer):
        items = read_idx_images(path)
        if len(items) != n_file:
            raise DataError(f"{path}: header count changed while reading")
        for s in range(start, end, 8192):
            e = min(end, s + 8192)
            hr = pad_to_hr(items[s:e])
            writer.add(lr_from_hr(hr), hr, [f"{which}/{i:06d}" for i in range(s, e)])
        return {"source": str(path)}

    return build_cached(NAME, split, root, fp, end - start, 1, len(which) + 7, fill)
