"""The one image reader of the toolkit: image file (or encoded bytes) -> uint8 [H, W, C] numpy array.

Used by every stage that reads image files: the folder / CelebA / LSUN datasets, `prsr upscale`,
`prsr eval --pred/--gt`. Rules:
- suffixes: `IMAGE_SUFFIXES` (case-insensitive) are what a folder listing picks up;
- modes: greyscale sources (`GREY_MODES`) stay one channel with `channels="auto"`, everything else is
  RGB (palettes expanded); `channels="rgb"` repeats a grey channel three times, `"grey"` converts RGB
  with Pillow's ITU-R 601-2 luma;
- 16-bit greyscale (Pillow modes `I;16*`, and `I` holding values above 255) is scaled to 8 bits
  (round(v * 255 / 65535)); Pillow's own conversion would clip everything above 255 to white;
- alpha is dropped (the colour channels are kept as they are, not composited on a background);
- the image is fully decoded: a corrupt or truncated file raises `ImageReadError` naming the file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


class ImageReadError(DataError):
    """An image file that cannot be decoded (corrupt, truncated, not an image)."""


def is_image_file(path: str | Path) -> bool:
    name = Path(path).name
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def _grey_u8(im: Image.Image) -> np.ndarray:
    """A greyscale Pillow image of any depth -> uint8 [H, W]."""
    if im.mode.startswith("I"):
        arr = np.asarray(im, dtype=np.int64)
        if im.mode.startswith("I;16") or arr.max(initial=0) > 255:
            arr = np.rint(np.clip(arr, 0, 65535) * (255.0 / 65535.0))
        return np.clip(arr, 0, 255).astype(np.uint8)
    return np.asarray(im.convert("L"))


def read_image(source, channels: str = "auto", name: str | None = None) -> np.ndarray:
    """`source` (a path, or encoded bytes) -> uint8 [H, W, C], C = 1 or 3 (see the module docstring).

    channels: "auto" (1 for greyscale sources, else 3) | "rgb" (always 3) | "grey" (always 1).
    `name` names the image in errors (default: the path).
    """
    if channels not in ("auto", "rgb", "grey"):
        raise ValueError(f"channels must be 'auto', 'rgb' or 'grey', got {channels!r}")
    label = name or (str(source) if isinstance(source, (str, Path)) else "<bytes>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        with Image.open(source) as im:
            im.load()
            grey = im.mode in GREY_MODES
            if grey:
                arr = _grey_u8(im)[:, :, None]
            elif channels == "grey":
                arr = np.asarray(im.convert("RGB").convert("L"))[:, :, None]
            else:
                arr = np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"cannot read image {label}: {exc}") from exc
    if channels == "rgb" and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.array(arr, dtype=np.uint8, order="C")  # a writable copy (torch.from_numpy needs one)
