"""Image grids like the paper's Fig. 6 (input, ground truth, one column per method) and Fig. 5
(several samples per input, each labelled with its NLL under the model). Plain Pillow, PNG output."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import sr_data

from .likelihood import bits_per_dim

TILE = 96  # 32x32 images are shown 3x enlarged, nearest neighbour
PAD = 4
LABEL_H = 14


def _tile(img: np.ndarray, size: int = TILE) -> Image.Image:
    """uint8 [C,H,W] (C = 1 or 3) -> RGB PIL image of size x size, nearest-neighbour enlarged."""
    arr = np.transpose(img, (1, 2, 0))
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB").resize((size, size), Image.NEAREST)


def image_sheet(
    columns: Sequence[str], cells: List[List[np.ndarray]], footers: List[List[str]] | None = None
) -> Image.Image:
    """A grid with one header label per column; `cells[r][c]` uint8 [C,H,W]; optional footer text per cell."""
    font = ImageFont.load_default()
    foot_h = LABEL_H if footers else 0
    n_rows, n_cols = len(cells), len(columns)
    width = PAD + n_cols * (TILE + PAD)
    height = LABEL_H + PAD + n_rows * (TILE + foot_h + PAD)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns):
        draw.text((PAD + c * (TILE + PAD), 1), name[:16], fill="black", font=font)
    for r, row in enumerate(cells):
        y = LABEL_H + PAD + r * (TILE + foot_h + PAD)
        for c, img in enumerate(row):
            x = PAD + c * (TILE + PAD)
            sheet.paste(_tile(img), (x, y))
            if footers:
                draw.text((x, y + TILE), footers[r][c], fill="black", font=font)
    return sheet


def write_method_grid(
    path: Path,
    truth: Dict[str, np.ndarray],
    predictions: Dict[str, np.ndarray],
    n: int = 8,
    labels: Optional[Mapping[str, str]] = None,
) -> Path:
    """Fig. 6-style grid: rows = the first `n` evaluation images; columns = input, truth, each method's output.

    `labels`: row name -> column heading short enough for a 96-px tile (the default bitmap font is ~6 px
    per character; the registry's short labels); a row without one is headed by its name."""
    n = min(n, len(truth["hr"]))
    columns = ["input 8x8", "ground truth", *[(labels or {}).get(row, row) for row in predictions]]
    cells = [[truth["lr"][i], truth["hr"][i], *[p[i] for p in predictions.values()]] for i in range(n)]
    path = Path(path)
    image_sheet(columns, cells).save(path)
    return path


@torch.no_grad()
def write_diversity_grid(
    path: Path,
    model,
    truth,
    n_inputs: int = 8,
    n_samples: int = 4,
    temperature: float = 1.0,
    seed: int = 0,
    device=None,
) -> Path:
    """Fig. 5-style grid: per input, `n_samples` samples at `temperature`, each labelled with its NLL (bits/dim)."""
    device = device or torch.device("cpu")
    n = min(n_inputs, len(truth["lr"]))
    lr = sr_data.to_float(torch.from_numpy(np.ascontiguousarray(truth["lr"][:n]))).to(device)
    hr = torch.from_numpy(np.ascontiguousarray(truth["hr"][:n])).to(device)
    n_sub = int(np.prod(hr.shape[1:]))
    to_bpd = lambda logp: bits_per_dim(-logp, n_sub).cpu().numpy()  # noqa: E731
    gen = torch.Generator(device=device).manual_seed(seed)
    lr_rep = lr.repeat_interleave(n_samples, dim=0)
    samples = sr_data.to_uint8(model.sample(lr_rep, temperature=temperature, generator=gen))
    sample_bpd = to_bpd(model.log_prob(lr_rep, samples))
    truth_bpd = to_bpd(model.log_prob(lr, hr))
    samples = samples.cpu().numpy()
    columns = ["input 8x8", "ground truth", *[f"sample {k + 1} t={temperature:g}" for k in range(n_samples)]]
    cells, footers = [], []
    for i in range(n):
        s = samples[i * n_samples : (i + 1) * n_samples]
        cells.append([truth["lr"][i], truth["hr"][i], *s])
        footers.append(
            ["", f"{truth_bpd[i]:.2f} b/d", *[f"{v:.2f} b/d" for v in sample_bpd[i * n_samples : (i + 1) * n_samples]]]
        )
    path = Path(path)
    image_sheet(columns, cells, footers).save(path)
    return path
