"""`prsr eval --pred DIR --gt DIR`: score a folder of saved outputs against a folder of ground truth.

Images are matched by file name without extension (any format Pillow reads: PNG, JPEG, BMP, ...).
Each pair must have the same size; RGB and greyscale are scored in their own colour (an RGB image
against a greyscale one is an error). Consistency needs the LR input, which a folder does not hold:
it is computed against `downsample(gt, 4)` quantised to uint8 (the toolkit's own LR), and left empty
when a side is not divisible by 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

import sr_data

GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _index(folder: Path) -> Dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of images")
    files = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            if p.stem in files:
                raise ValueError(f"two images in {folder} share the name {p.stem!r}: {files[p.stem].name} and {p.name}")
            files[p.stem] = p
    return files


def _read(path: Path) -> torch.Tensor:
    """Image file -> float [1, C, H, W] in [0, 1], C = 1 (greyscale) or 3."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L") if im.mode in GREY_MODES else im.convert("RGB")
            arr = np.array(im)  # a writable copy: torch.from_numpy needs one
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return sr_data.to_float(torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))).unsqueeze(0)


def score_folders(pred_dir, gt_dir) -> Tuple[pd.DataFrame, pd.Series]:
    """Per-image metrics (`image_id, psnr, ssim, ms_ssim, consistency`) and their means."""
    import metrics

    pred_files, gt_files = _index(Path(pred_dir)), _index(Path(gt_dir))
    common = sorted(set(pred_files) & set(gt_files))
    if not common:
        raise FileNotFoundError(f"no image names in common between {pred_dir} ({len(pred_files)} images) and {gt_dir} ({len(gt_files)} images)")
    rows = []
    for name in common:
        sr, gt = _read(pred_files[name]), _read(gt_files[name])
        if sr.shape != gt.shape:
            raise ValueError(f"{pred_files[name]} has shape {tuple(sr.shape[1:])} but {gt_files[name]} has {tuple(gt.shape[1:])}")
        row = {
            "image_id": name,
            "psnr": float(metrics.psnr(sr, gt)[0]),
            "ssim": float(metrics.ssim(sr, gt)[0]),
            "ms_ssim": float(metrics.ms_ssim(sr, gt)[0]),
            "consistency": np.nan,
        }
        if gt.shape[-1] % 4 == 0 and gt.shape[-2] % 4 == 0:
            lr = sr_data.to_float(sr_data.to_uint8(sr_data.downsample(gt, 4)))
            row["consistency"] = float(metrics.consistency(lr, sr)[0])
        rows.append(row)
    per_image = pd.DataFrame(rows)
    means = per_image.drop(columns="image_id").mean()
    means["n_images"] = len(per_image)
    means["unmatched_pred"] = len(set(pred_files) - set(gt_files))
    means["unmatched_gt"] = len(set(gt_files) - set(pred_files))
    return per_image, means
