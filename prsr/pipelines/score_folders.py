"""`prsr eval --pred DIR --gt DIR`: score a folder of saved outputs against a folder of ground truth.

A thin front to Table 1's scoring: the same per-image code (`metrics.registry.score_images`) and the
same means (`Metric.summarize`, pSNR capped at 100 dB). To put the outputs *in* Table 1 and the study,
use `prsr import NAME --from DIR` and `prsr eval` instead (docs/api.md).

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

import sr_data
from metrics.registry import IMAGE_METRICS, METRICS, score_images
from sr_data.errors import DataError
from sr_data.images import IMAGE_SUFFIXES, read_image


def _index(folder: Path) -> Dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of images")
    files = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            if p.stem in files:
                raise DataError(f"two images in {folder} share the name {p.stem!r}: {files[p.stem].name} and {p.name}")
            files[p.stem] = p
    return files


def _read(path: Path) -> torch.Tensor:
    """Image file -> float [1, C, H, W] in [0, 1], C = 1 (greyscale) or 3."""
    arr = read_image(path)  # uint8 [H, W, 1 or 3], errors name the file
    return sr_data.to_float(torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))).unsqueeze(0)


def score_folders(pred_dir, gt_dir) -> Tuple[pd.DataFrame, pd.Series]:
    """Per-image metrics (`image_id, psnr, ssim, ms_ssim, consistency`) and their means."""
    pred_files, gt_files = _index(Path(pred_dir)), _index(Path(gt_dir))
    common = sorted(set(pred_files) & set(gt_files))
    if not common:
        raise FileNotFoundError(
            f"no image names in common between {pred_dir} ({len(pred_files)} images) "
            f"and {gt_dir} ({len(gt_files)} images)"
        )
    rows = []
    for name in common:
        sr, gt = _read(pred_files[name]), _read(gt_files[name])
        if sr.shape != gt.shape:
            raise DataError(
                f"{pred_files[name]} has shape {tuple(sr.shape[1:])} but {gt_files[name]} has {tuple(gt.shape[1:])}"
            )
        lr = None
        if gt.shape[-1] % 4 == 0 and gt.shape[-2] % 4 == 0:
            lr = sr_data.to_float(sr_data.to_uint8(sr_data.downsample(gt, 4)))
        scores = score_images(sr, gt, lr)
        rows.append({"image_id": name, **{m: float(scores[m][0]) if m in scores else np.nan for m in IMAGE_METRICS}})
    per_image = pd.DataFrame(rows, columns=["image_id", *IMAGE_METRICS])
    # means by Table 1's own code (`Metric.summarize`): pSNR of an identical pair (inf) counts at the
    # metric's cap (100 dB); NaN (no consistency for a side not divisible by 4) is left out first
    means = pd.Series({m: METRICS[m].summarize(per_image[m].dropna().tolist()) for m in IMAGE_METRICS})
    means["n_images"] = len(per_image)
    means["unmatched_pred"] = len(set(pred_files) - set(gt_files))
    means["unmatched_gt"] = len(set(gt_files) - set(pred_files))
    return per_image, means
