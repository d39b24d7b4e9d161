"""`prsr upscale`: super-resolve your own images with a trained pixel-recursive run.

Each input becomes the model's 8x8 low-resolution input:
- an 8x8 image is used as it is;
- any other image is centre-cropped to a square (the shorter side), resized to 32x32 and then shrunk
  by 4 with `sr_data.downsample` — exactly how the datasets make their LR inputs from a 32x32 HR image;
- colours are converted to the model's channels: RGB -> grey with MATLAB's rgb2gray weights,
  grey -> RGB by repeating the channel (alpha is dropped, palettes are expanded).
Writes, per input `NAME`: `NAME_input.png` (the 8x8 input), `NAME_sample<k>.png` (32x32 samples at the
chosen temperature) and `NAME_sheet.png` (the input enlarged to 32x32 by pixel repetition, then the
samples, side by side, all shown 4x larger).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from baselines.registry import load_method
from metrics.quality import GRAY_WEIGHTS
from sr_data import downsample, resize, to_uint8
from sr_data.errors import DataError
from sr_data.images import IMAGE_SUFFIXES, read_image

HELP = (
    "super-resolve your own images (8x8, or larger: centre-cropped and shrunk to 8x8) "
    "with a trained pixel_recursive run"
)
SHEET_ZOOM = 4
SHEET_GAP = 2


def add_arguments(p):
    p.add_argument("--run", required=True, help="trained run folder, e.g. runs/fashion-mnist/pixel_recursive")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature tau > 0 (default 0.8)")
    p.add_argument("--greedy", action="store_true", help="argmax decoding instead of sampling")
    p.add_argument("--samples", type=int, default=4, help="samples per input (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")


def list_images(path: Path) -> list[Path]:
    """The image files named by `path` (one file, or the image files of a folder, sorted)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return files
    raise FileNotFoundError(f"input {path} not found")


def load_lr(path: Path, channels: int):
    """Image file -> the model's input, float [1, channels, 8, 8] in [0, 1] (see the module docstring)."""
    arr = read_image(path).astype(np.float32) / 255.0  # [H, W, 1 or 3]; errors name the file
    x = torch.from_numpy(arr).permute(2, 0, 1)[None]  # [1, c, H, W]
    if channels == 1 and x.shape[1] == 3:
        w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype).view(1, 3, 1, 1)
        x = (x * w).sum(1, keepdim=True)
    elif channels == 3 and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    h, w_ = x.shape[-2:]
    if (h, w_) == (8, 8):
        return x.clamp(0.0, 1.0)
    side = min(h, w_)
    top, left = (h - side) // 2, (w_ - side) // 2
    x = x[..., top : top + side, left : left + side]
    return downsample(resize(x, 32), 4)


def sheet(lr, samples):
    """lr [1, C, 8, 8], samples [S, C, 32, 32] (float in [0, 1]) -> uint8 HxWxC (or HxW) image array."""
    enlarged = lr.repeat_interleave(4, dim=-1).repeat_interleave(4, dim=-2)  # pixel repetition: shows the input as is
    tiles = [enlarged[0]] + list(samples)
    c = tiles[0].shape[0]
    gap = torch.ones(c, 32, SHEET_GAP)
    row = torch.cat([t if i == 0 else torch.cat([gap, t], dim=-1) for i, t in enumerate(tiles)], dim=-1)
    row = row.repeat_interleave(SHEET_ZOOM, dim=-1).repeat_interleave(SHEET_ZOOM, dim=-2)
    arr = to_uint8(row).permute(1, 2, 0).numpy()
    return arr[..., 0] if c == 1 else arr


def _save(arr, path: Path) -> None:
    Image.fromarray(arr).save(path)


def _to_array(x):
    arr = to_uint8(x).permute(1, 2, 0).numpy()
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def run(args) -> int:
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    if not args.greedy and not args.temperature > 0:
        raise ValueError(f"--temperature must be > 0, got {args.temperature}")
    run_dir = Path(args.run)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"run folder {run_dir} has no config.json; train it first with "
            f"`prsr train --method pixel_recursive` (or pass its folder to --run)"
        )
    images = list_images(Path(args.input))
    device = torch.device(args.device) if args.device else None
    model = load_method(run_dir, device=device)
    if not hasattr(model, "sample"):
        raise ValueError(f"run {run_dir} holds method {model.name!r}; upscale needs a pixel_recursive run")
    device = next(model.parameters()).device
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    for path in images:
        lr = load_lr(path, model.channels)
        batch = lr.repeat(args.samples, 1, 1, 1).to(device)
        sr = model.sample(batch, temperature=args.temperature, greedy=args.greedy, generator=generator).cpu()
        stem = path.stem
        _save(_to_array(lr[0]), out / f"{stem}_input.png")
        for k, s in enumerate(sr):
            _save(_to_array(s), out / f"{stem}_sample{k}.png")
        _save(sheet(lr, sr), out / f"{stem}_sheet.png")
        print(f"{path} -> {out / (stem + '_sheet.png')} (+ {stem}_input.png, {args.samples} x {stem}_sample<k>.png)")
    setting = "greedy" if args.greedy else f"tau = {args.temperature}"
    print(f"wrote {len(images)} sheet(s) and {len(images) * args.samples} sample(s) ({setting}) to {out}")
    return 0
